"""What the core hands a target without knowing its vocabulary: the bundle folder of a target that says it
writes bundles (``TargetSpec.writes_bundle``) and a ``StageContext`` for its compile and run stages."""
from __future__ import annotations

import json

import pytest

from porter.errors import EXIT_USAGE

# A recipe-local plugin: a target that records what the core handed its compile and run stages.
RECORDER = '''
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort

from porter.api import CompiledModel, OutputSet, TargetSpec, Timing, hookimpl, write_sample


@hookimpl
def porter_register_targets():
    return [TargetSpec("recorder", writes_bundle=True)]


def _note(workdir, target, context):
    seen = {"stage": context.stage, "workspace": str(context.workspace), "recipe": str(context.recipe_path),
            "variant": context.variant, "bundle": str(target.bundle) if target.bundle else None}
    (Path(workdir) / "seen.json").write_text(json.dumps(seen))
    return seen


@hookimpl
def porter_compile(target, model, workdir, context):
    if target.name != "recorder":
        return None
    seen = _note(workdir, target, context)
    return CompiledModel("recorder", model.path, model.path, model.inputs, model.outputs, details=seen)


@hookimpl
def porter_run(target, compiled, inputs, workdir, context):
    if target.name != "recorder":
        return None
    seen = _note(workdir, target, context)
    session = ort.InferenceSession(str(compiled.path), providers=["CPUExecutionProvider"])
    for index in range(len(inputs)):
        write_sample(workdir, index, {"probs": session.run(None, inputs.load(index))[0]})
    return OutputSet(workdir, inputs.sample_ids, ("probs",), Timing((1.0,) * len(inputs), 0.001 * len(inputs)),
                     details=seen)
'''


def _recipe(project, **target):
    (project.root / "recorder_porter.py").write_text(RECORDER)
    return project.write_recipe(project.base_recipe(
        plugins=["mlp_porter", "recorder_porter"],
        variants={"torch": {"reference": True}, "dev": {"target": {"name": "recorder", **target}}}))


def _details(workspace, stage):
    report = json.loads((workspace / "report.json").read_text())
    [dev] = [v for v in report["variants"] if v["name"] == "dev"]
    return dev["details"][stage]


@pytest.mark.slow
def test_compile_and_run_get_the_workspace_recipe_variant_and_bundle(porter_project, tmp_path):
    recipe = _recipe(porter_project)
    workspace, bundle = tmp_path / "ws", tmp_path / "bundle"
    code, out, err = porter_project.porter("run", recipe, "--workspace", workspace, "--bundle", bundle, "--quiet")
    assert code == 0, err + out
    for stage in ("compile", "run"):
        seen = _details(workspace, stage)
        assert seen == {"stage": stage, "workspace": str(workspace.resolve()), "recipe": str(recipe.resolve()),
                        "variant": "dev", "bundle": str(bundle.resolve())}


@pytest.mark.slow
def test_the_bundle_folder_is_part_of_the_compile_key(porter_project, tmp_path):
    recipe = _recipe(porter_project)
    workspace = tmp_path / "ws"
    for bundle in ("one", "two"):
        code, out, err = porter_project.porter("run", recipe, "--workspace", workspace, "--bundle",
                                               tmp_path / bundle, "--quiet")
        assert code == 0, err + out
        # a cached compile would still point into the first bundle
        assert _details(workspace, "compile")["bundle"] == str((tmp_path / bundle).resolve())


def test_without_bundle_the_target_gets_none(porter_project, tmp_path):
    code, out, err = porter_project.porter("run", _recipe(porter_project), "--workspace", tmp_path / "ws",
                                           "--quiet")
    assert code == 0, err + out
    assert _details(tmp_path / "ws", "compile")["bundle"] is None


def test_bundle_without_a_target_that_writes_bundles_is_refused(porter_project, tmp_path):
    recipe = porter_project.write_recipe(porter_project.base_recipe())  # onnxruntime writes no bundles
    code, _out, err = porter_project.porter("run", recipe, "--workspace", tmp_path / "ws", "--bundle",
                                           tmp_path / "bundle", "--quiet")
    assert code == EXIT_USAGE
    assert "no variant of" in err and "writes device bundles" in err
    assert not (tmp_path / "bundle").exists() and not (tmp_path / "ws" / "report.json").exists()
