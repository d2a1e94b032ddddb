"""Bundles: written where the toolchain is missing, run on an "Ascend host" (the fakes), read back exactly."""
from __future__ import annotations

import json
import shlex
import subprocess

import numpy as np
import pytest
from fakes import toolbox as tb

from porter.api import StageContext
from porter.errors import InputError, ToolMissingError
from porter.report.model import RunReport
from porter_ascend310 import bundle, bundle_score, plugin


@pytest.fixture
def host(tmp_path, monkeypatch):
    """This machine has no Ascend tool; ``host.env()`` is the environment of an "Ascend host" with the fakes."""
    fake = tb.install(tmp_path / "host", monkeypatch)
    tb.no_tools(tmp_path / "here", monkeypatch)
    return fake


def _stage(tmp_path, name):
    work = tmp_path / "ws" / "artifacts" / name / f".tmp-{len(list(tmp_path.glob('ws/artifacts/*/*')))}"
    work.mkdir(parents=True)
    return work


def _context(tmp_path, stage, recipe=None):
    """What the core hands a stage: the workspace ``tmp_path/ws`` and the recipe it runs."""
    return StageContext(stage=stage, workspace=tmp_path / "ws", recipe_path=recipe, variant="npu")


def _variant(tmp_path, model, inputs, recipe=None, **flags):
    """compile then run, as the pipeline would; returns (compiled, outputs or the ToolMissingError)."""
    target = tb.target(**flags)
    compiled = plugin.porter_compile(target=target, model=model, workdir=_stage(tmp_path, "compile"),
                                     context=_context(tmp_path, "compile", recipe))
    try:
        return compiled, plugin.porter_run(target=target, compiled=compiled, inputs=inputs,
                                           workdir=_stage(tmp_path, "run"), context=_context(tmp_path, "run", recipe))
    except ToolMissingError as missing:
        return compiled, missing


SCRIPT_TOOLS = {'"${ATC_CMD[@]}"': ["atc"], '"${AOE_CMD[@]}"': ["aoe"], '"${MSAME_CMD[@]}"': ["msame"],
                '"${AIS_BENCH_CMD[@]}"': ["python3", "-m", "ais_bench"]}


def _commands(script: str) -> list[list[str]]:
    """run.sh's tool lines as argv lists, each tool's variable read as its default command."""
    commands = []
    for line in script.splitlines():
        first, _, rest = line.strip().partition(" ")
        if first in SCRIPT_TOOLS:
            commands.append(SCRIPT_TOOLS[first] + shlex.split(rest.split(" 2>&1 | tee ")[0]))
    return commands


def _execute(bundle_dir, host_env):
    done = subprocess.run(["bash", str(bundle_dir / "run.sh")], env=host_env, capture_output=True, text=True,
                          cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _assert_same(outputs, expected, atol=0.0):
    for index, reference in enumerate(expected):
        got = outputs.load(index)
        for name, array in reference.items():
            assert got[name].dtype == array.dtype
            np.testing.assert_allclose(got[name], array, rtol=0, atol=atol)


def test_bundle_written_when_atc_is_missing(tmp_path, host):
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 4, 5))
    where = tmp_path / "bundle"
    compiled, result = _variant(tmp_path, model, inputs, bundle_dir=where, precision_mode="force_fp16")
    assert compiled.details["pending"] and compiled.path.parent.parent == (where / "models").resolve()
    assert isinstance(result, ToolMissingError)
    assert "bundle is ready" in str(result) and f"porter score {where}" in str(result)
    assert "atc and msame not found" in str(result)

    manifest = bundle.read_manifest(where)
    assert manifest["format_version"] == bundle.FORMAT_VERSION
    assert manifest["workspace"] == str((tmp_path / "ws").resolve())
    [model_entry], [run] = manifest["models"], manifest["runs"]
    assert model_entry["inputs"] == [{"name": "spect", "shape": [1, 1, 4, 6], "dtype": "float32"},
                                     {"name": "lengths", "shape": [1], "dtype": "int32"}]
    assert [o["name"] for o in model_entry["outputs"]] == ["probs", "out_lengths"]
    assert run["layout"]["outputs"][0] == {"name": "probs", "shape": [1, 6, 3], "dtype": "float32"}
    assert run["layout"]["runner"] == "msame" and run["sample_ids"] == ["utt0", "utt1", "utt2"]
    assert (where / model_entry["onnx"]).read_bytes() == model.path.read_bytes()
    spect_dir = where / manifest["input_sets"][0]["dir"] / "spect"
    assert sorted(p.name for p in spect_dir.iterdir()) == ["data1.bin", "data2.bin", "data3.bin"]
    assert all(p.stat().st_size == 4 * 4 * 6 for p in spect_dir.iterdir())

    script = (where / "run.sh").read_text()
    assert "set -euo pipefail" in script
    assert subprocess.run(["bash", "-n", str(where / "run.sh")]).returncode == 0
    produced = set()
    assert [argv[0] for argv in _commands(script)] == ["atc", "msame"]
    for argv in _commands(script):
        if argv[0] == "atc":
            produced.add(next(a.split("=", 1)[1] for a in argv if a.startswith("--output=")) + ".om")
        for token in argv[1:]:
            if token.startswith("--output="):  # atc's output stem: its folder must exist
                assert (where / token.split("=", 1)[1]).parent.is_dir()
                continue
            value = token.split("=", 1)[1] if token.startswith("--") and "=" in token else token
            for path in value.split(","):
                if path.startswith(("models/", "inputs/")):
                    assert (where / path).exists() or path in produced, f"run.sh names missing {path}"


@pytest.mark.slow
def test_returned_outputs_parse_back_to_onnx_runtime(tmp_path, host):
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 3, 5))
    where = tmp_path / "bundle"
    variants = [dict(runner="msame", outfmt="BIN", precision_mode="force_fp16"),
                dict(runner="ais_bench", outfmt="NPY", precision_mode="allow_fp32_to_fp16"),
                dict(runner="msame", outfmt="TXT", precision_mode="force_fp16")]
    for flags in variants:
        assert isinstance(_variant(tmp_path, model, inputs, bundle_dir=where, **flags)[1], ToolMissingError)
    manifest = bundle.read_manifest(where)
    assert len(manifest["models"]) == 2 and len(manifest["runs"]) == 3
    assert len(manifest["input_sets"]) == 1  # one copy of the inputs, shared by every run
    assert bundle_score.returned_runs(where, manifest) == ([], [r["key"] for r in manifest["runs"]])

    _execute(where, host.env())  # the "Ascend host"
    assert len(host.calls("atc")) == 2 and len(host.calls("msame")) == 2 and len(host.calls("ais_bench")) == 1
    assert bundle_score.returned_runs(where, manifest)[1] == []

    expected = tb.direct_outputs(model.path, inputs)
    for flags, atol in zip(variants, (0.0, 0.0, 1e-5)):
        compiled, outputs = _variant(tmp_path, model, inputs, bundle_dir=where, **flags)
        assert not isinstance(outputs, ToolMissingError), outputs
        assert outputs.details["source"].startswith(f"bundle {where}")
        assert len(outputs.timing.latencies_ms) == 3
        _assert_same(outputs, expected, atol)
    # a rerun of run.sh skips compiles whose .om exists
    _execute(where, host.env())
    assert len(host.calls("atc")) == 2


@pytest.mark.slow
def test_compiled_here_but_runner_missing(tmp_path, host, monkeypatch):
    here = tb.install(tmp_path / "atc-only", monkeypatch, tools=("atc",))
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(2, 6))
    where = tmp_path / "bundle"
    compiled, missing = _variant(tmp_path, model, inputs, bundle_dir=where)
    assert not compiled.details["pending"] and len(here.calls("atc")) == 1
    assert isinstance(missing, ToolMissingError) and "msame not found" in str(missing)
    [entry] = bundle.read_manifest(where)["models"]
    assert entry["om_ready"] and (where / entry["om"]).is_file()
    script = (where / "run.sh").read_text()
    assert not [argv for argv in _commands(script) if argv[0] == "atc"]
    _execute(where, host.env())
    assert host.calls("atc") == []
    _, outputs = _variant(tmp_path, model, inputs, bundle_dir=where)
    _assert_same(outputs, tb.direct_outputs(model.path, inputs))


@pytest.mark.slow
def test_hostile_values_survive_run_sh(tmp_path, host):
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(4,))
    hostile = "a;rm -rf x $(touch y) `touch z` && touch w"
    odd = tmp_path / "keep $(touch v);'x'.cfg"
    odd.write_text("Conv1\n")
    where = tmp_path / "bundle"
    _variant(tmp_path, model, inputs, bundle_dir=where, soc_version=hostile, keep_dtype=str(odd),
             extra_args=["--op_debug_level=1; touch u"])
    [entry] = bundle.read_manifest(where)["models"]
    keep = next(a for a in entry["atc_argv"] if a.startswith("--keep_dtype="))
    copied = keep.split("=", 1)[1]
    assert copied.startswith(f"models/{entry['key']}/files/") and (where / copied).read_text() == "Conv1\n"
    (where / "x").mkdir()
    _execute(where, host.env())
    [call] = host.calls("atc")
    assert f"--soc_version={hostile}" in call and keep in call and "--op_debug_level=1; touch u" in call
    assert (where / "x").is_dir()
    for marker in "yzwvu":
        assert not list(tmp_path.rglob(marker)) and not list(where.rglob(marker)), f"a shell ran: {marker}"


def test_paths_cannot_leave_the_bundle(tmp_path, host):
    where = tmp_path / "bundle"
    where.mkdir()
    for bad in ("../../x", "/etc/passwd", "models/../../x", ""):
        with pytest.raises(bundle.BundleError):
            bundle.inside(where, bad)
    (where / "link").symlink_to(tmp_path)
    with pytest.raises(bundle.BundleError, match="outside"):
        bundle.inside(where, "link/x")
    with pytest.raises(bundle.BundleError):
        bundle.check_key("../../x", "run")
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    with pytest.raises(InputError, match="om_name"):
        plugin.porter_compile(target=tb.target(bundle_dir=where, om_name="../../x"), model=model,
                              workdir=_stage(tmp_path, "compile"), context=None)
    assert not (tmp_path / "x.om").exists()


@pytest.mark.slow
def test_rewriting_entries_keeps_returned_outputs(tmp_path, host):
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(5,))
    where = tmp_path / "bundle"
    _variant(tmp_path, model, inputs, bundle_dir=where)
    script = (where / "run.sh").read_text()
    _execute(where, host.env())
    outputs_before = sorted(p.relative_to(where) for p in (where / "outputs").rglob("*"))
    # a second `porter run --bundle` in a fresh workspace recompiles into the same entries
    compiled = plugin.porter_compile(target=tb.target(bundle_dir=where), model=model,
                                     workdir=_stage(tmp_path, "compile"), context=None)
    assert (where / "run.sh").read_text() == script
    assert sorted(p.relative_to(where) for p in (where / "outputs").rglob("*")) == outputs_before
    assert compiled.path.is_file()  # the .om came back from the host


def test_recipe_and_workspace_are_recorded(tmp_path, host, monkeypatch):
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(5,))
    where = tmp_path / "bundle"
    _variant(tmp_path, model, inputs, recipe=tmp_path / "recipe.yaml", bundle_dir=where)
    manifest = bundle.read_manifest(where)
    assert manifest["recipe"] == str(tmp_path / "recipe.yaml")
    assert manifest["workspace"] == str((tmp_path / "ws").resolve())
    report = RunReport(recipe="/somewhere/r.yaml", recipe_digest="0" * 64, name="r", workspace=str(tmp_path / "ws"),
                       started="2026-01-01T00:00:00+00:00", wall_seconds=1.0, porter_version="0.1.0",
                       executor="local", plugins=[], libraries={}, tools={}, host={}, variants=[])
    report.write(tmp_path / "ws" / "report.json")
    assert bundle_score.recipe_of_workspace(tmp_path / "ws") == "/somewhere/r.yaml"
    (tmp_path / "ws" / "report.json").write_text(json.dumps({"recipe": "/somewhere/r.yaml"}))
    assert bundle_score.recipe_of_workspace(tmp_path / "ws") is None  # not a report: the user names the recipe


def test_score_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(bundle.BundleError, match="manifest.json: missing"):
        bundle_score.score_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": bundle.FORMAT, "format_version": 99}))
    with pytest.raises(bundle.BundleError, match="format_version is 99"):
        bundle_score.score_bundle(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": bundle.FORMAT, "format_version": 1,
                                                        "recipe": None, "workspace": None, "models": [],
                                                        "runs": [], "input_sets": []}))
    with pytest.raises(bundle.BundleError, match="no recipe recorded"):
        bundle_score.score_bundle(tmp_path)
    with pytest.raises(bundle.BundleError, match="does not exist"):
        bundle_score.score_bundle(tmp_path, recipe=str(tmp_path / "nope.yaml"))


def test_pending_compile_with_tools_installed_later_says_how_to_recompile(tmp_path, host, monkeypatch):
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(5,))
    where = tmp_path / "bundle"
    target = tb.target(bundle_dir=where)
    compiled = plugin.porter_compile(target=target, model=model, workdir=_stage(tmp_path, "compile"), context=None)
    tb.install(tmp_path / "installed-later", monkeypatch)
    with pytest.raises(ToolMissingError, match="--force compile"):
        plugin.porter_run(target=target, compiled=compiled, inputs=inputs, workdir=_stage(tmp_path, "run"),
                          context=None)
