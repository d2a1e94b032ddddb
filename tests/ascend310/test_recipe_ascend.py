"""The ascend310 target through `porter run` (tests/core's MLP plugin as the model): with the fake tools on PATH,
and without them through a bundle that is run on an "Ascend host" (the fakes) and scored with `porter score`."""
from __future__ import annotations

import json
import subprocess

import pytest
from fakes import toolbox as tb

from porter.errors import EXIT_TOOL_MISSING

ASCEND_VARIANTS = {
    "npu_msame": {"target": {"name": "ascend310", "flags": {"precision_mode": "force_fp16"}}},
    "npu_ais": {"target": {"name": "ascend310", "flags": {"runner": "ais_bench", "outfmt": "NPY",
                                                           "precision_mode": "allow_fp32_to_fp16"}}},
}


def _recipe(project, **top_level):
    recipe = project.base_recipe()
    recipe["variants"] = {"torch": {"reference": True}, "ort": {}, **ASCEND_VARIANTS}
    recipe.update(top_level)
    return project.write_recipe(recipe)


def _variants(workspace):
    report = json.loads((workspace / "report.json").read_text())
    return {v["name"]: v for v in report["variants"]}


def _same_scores(variants, names):
    ort = variants["ort"]
    for name in names:
        assert variants[name]["status"] == "ok", variants[name]["message"]
        assert variants[name]["metrics"] == ort["metrics"]
        assert [s["hypothesis"] for s in variants[name]["samples"]] == [s["hypothesis"] for s in ort["samples"]]
        assert variants[name]["latency_ms"]["p50"] > 0


@pytest.mark.slow
def test_ascend_variants_run_with_the_tools_on_path(porter_project, tmp_path, monkeypatch):
    fake = tb.install(tmp_path / "tools", monkeypatch)
    recipe = _recipe(porter_project)
    workspace = tmp_path / "ws"
    code, out, err = porter_project.porter("run", recipe, "--workspace", workspace, "--quiet")
    assert code == 0, err + out
    variants = _variants(workspace)
    _same_scores(variants, ASCEND_VARIANTS)
    compile_details = variants["npu_msame"]["details"]["compile"]
    assert "--precision_mode=force_fp16" in compile_details["argv"]
    assert "--input_shape=x:1,8" in compile_details["argv"]  # the symbolic batch axis compiled as 1
    assert variants["npu_ais"]["details"]["run"]["ais_bench_summary"]["throughput"] > 0
    assert len(fake.calls("atc")) == 2 and len(fake.calls("msame")) == 1 and len(fake.calls("ais_bench")) == 1
    for name in ASCEND_VARIANTS:
        assert name in out


@pytest.mark.slow
def test_bundle_round_trip_reproduces_the_local_table(porter_project, tmp_path, monkeypatch):
    host = tb.install(tmp_path / "host", monkeypatch)
    tb.no_tools(tmp_path / "here", monkeypatch)
    recipe = _recipe(porter_project)
    workspace, where = tmp_path / "ws", tmp_path / "bundle"

    code, out, err = porter_project.porter("run", recipe, "--workspace", workspace, "--bundle", where, "--quiet")
    assert code == EXIT_TOOL_MISSING, err + out
    variants = _variants(workspace)
    assert variants["ort"]["status"] == "ok" and variants["torch"]["status"] == "ok"
    for name in ASCEND_VARIANTS:
        assert variants[name]["status"] == "skipped" and "bundle is ready" in variants[name]["message"]
    assert subprocess.run(["bash", "-n", str(where / "run.sh")]).returncode == 0
    manifest = json.loads((where / "manifest.json").read_text())
    assert manifest["workspace"] == str(workspace.resolve()) and len(manifest["runs"]) == 2
    assert manifest["recipe"] == str(recipe.resolve())  # what `porter score` re-runs
    code, out, err = porter_project.porter("score", where)  # nothing came back yet
    assert code == EXIT_TOOL_MISSING and "0 of 2 runs" in out and "still waiting" in out

    done = subprocess.run(["bash", str(where / "run.sh")], env=host.env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr

    code, out, err = porter_project.porter("score", where)
    assert code == 0, err + out
    assert "2 of 2 runs" in out
    scored = _variants(workspace)
    _same_scores(scored, ASCEND_VARIANTS)
    for name in ASCEND_VARIANTS:
        assert scored[name]["details"]["run"]["source"].startswith(f"bundle {where.resolve()}")
        assert name in out

    # the same recipe run with the tools here gives the same metrics (the local table)
    tb.install(tmp_path / "local-tools", monkeypatch)
    local_ws = tmp_path / "ws-local"
    code, out, err = porter_project.porter("run", recipe, "--workspace", local_ws, "--quiet")
    assert code == 0, err + out
    local = _variants(local_ws)
    for name in ASCEND_VARIANTS:
        assert local[name]["metrics"] == scored[name]["metrics"]
        assert [s["hypothesis"] for s in local[name]["samples"]] == [s["hypothesis"] for s in scored[name]["samples"]]


@pytest.mark.parametrize("flag, value, expected", [("precison_mode", "force_fp16", "'precision_mode'"),
                                                   ("precision_mode", "force_fp61", "'force_fp16'")])
def test_recipe_flags_are_validated(porter_project, flag, value, expected):
    recipe = porter_project.base_recipe()
    recipe["variants"] = {"npu": {"target": {"name": "ascend310", "flags": {flag: value}}}}
    code, out, err = porter_project.porter("validate", porter_project.write_recipe(recipe))
    assert code == 2 and f"variants.npu.target.flags.{flag}" in err and expected in err


def test_a_recipe_that_allows_missing_tools_exits_0_with_its_bundle_written(porter_project, tmp_path, monkeypatch):
    tb.no_tools(tmp_path / "here", monkeypatch)
    recipe = _recipe(porter_project, allow_missing_tools=True)
    workspace, where = tmp_path / "ws", tmp_path / "bundle"
    code, out, err = porter_project.porter("run", recipe, "--workspace", workspace, "--bundle", where, "--quiet")
    assert code == 0, err + out
    report = json.loads((workspace / "report.json").read_text())
    assert report["allow_missing_tools"] is True
    assert all(v["status"] == "skipped" for v in report["variants"] if v["name"] in ASCEND_VARIANTS)
    assert (where / "run.sh").is_file()
