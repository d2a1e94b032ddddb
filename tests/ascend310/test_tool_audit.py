"""One test (or more) per point where porter did not match the Ascend tools' own sources (msame and ais_bench
from Ascend/tools and Ascend/msit, atc and aoe from the CANN parameter pages). Point 2 (autotune → aoe job
types) is tested in test_atc.py::test_autotune_from_cann_5_1_runs_aoe_subgraphs_then_operators and
test_toolkit.py::test_autotune_on_a_detected_new_toolkit_runs_aoe_then_atc."""
from __future__ import annotations

import os
import subprocess

import numpy as np
import onnx
import pytest
from fakes import toolbox as tb

from porter.api import StageContext
from porter.artifacts import TensorSpec
from porter.errors import InputError, ToolMissingError
from porter_ascend310 import atc, bundle, plugin, runners
from porter_ascend310.ais_bench import AisBench
from porter_ascend310.msame import Msame
from porter_ascend310.runner_base import RunnerInputError, ais_bench_path_problem

STATIC = (TensorSpec("spect", (1, 1, 161, 621), "float32"), TensorSpec("transcript", (1,), "int32"))


def _work(tmp_path, stage):
    work = tmp_path / "ws" / "artifacts" / stage / f"tmp-{len(list(tmp_path.glob(f'ws/artifacts/{stage}/*')))}"
    work.mkdir(parents=True)
    return work


def _context(tmp_path, stage):
    return StageContext(stage=stage, workspace=tmp_path / "ws", recipe_path=None, variant="npu")


def _compile(tmp_path, model, **flags):
    return plugin.porter_compile(target=tb.target(**flags), model=model, workdir=_work(tmp_path, "compile"),
                                 context=_context(tmp_path, "compile"))


def _run(tmp_path, compiled, inputs, **flags):
    return plugin.porter_run(target=tb.target(**flags), compiled=compiled, inputs=inputs,
                             workdir=_work(tmp_path, "run"), context=_context(tmp_path, "run"))


def _direct(model_path, inputs, frames):
    return tb.direct_outputs(model_path, inputs, frames=frames)


def _same(outputs, expected, atol=0.0):
    for index, reference in enumerate(expected):
        got = outputs.load(index)
        for name, array in reference.items():
            np.testing.assert_allclose(got[name].astype(np.float64), array.astype(np.float64), rtol=0, atol=atol)


# --- 1. msame writes whole output buffers, sized for the largest profile, under --dymHW / --dymDims ---------


@pytest.mark.slow
def test_msame_dym_dims_outputs_are_read_from_max_profile_buffers(tmp_path, monkeypatch):
    host = tb.install(tmp_path / "host", monkeypatch)
    tb.no_tools(tmp_path / "here", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1, frames="frames")
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(3, 4))
    where = tmp_path / "bundle"
    flags = dict(bundle_dir=where, input_format="ND", dynamic_dims=[[4], [6]])
    compiled = _compile(tmp_path, model, **flags)
    with pytest.raises(ToolMissingError):
        _run(tmp_path, compiled, inputs, **flags)
    done = subprocess.run(["bash", str(where / "run.sh")], env=host.env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    [run] = bundle.read_manifest(where)["runs"]
    assert "--dymDims" in run["argv"] and "spect:1,1,4,4;lengths:1" in run["argv"]  # the smaller profile fits
    [result] = [d for d in (where / run["output_dir"]).iterdir() if d.is_dir()]
    probs = np.fromfile(result / "data1_output_0.bin", dtype=np.float32)
    assert probs.size == 1 * 6 * tb.CLASSES  # the buffer of the largest profile (6 frames) ...
    assert np.isnan(probs[4 * tb.CLASSES:]).all()  # ... past the 4 frames that ran, what the buffer held
    outputs = _run(tmp_path, compiled, inputs, **flags)  # the returned bundle, read back
    _same(outputs, _direct(model.path, inputs, frames=4), atol=1e-6)


@pytest.mark.slow
def test_msame_dym_batch_files_are_shrunk_as_msame_does(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch="batch")
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 5))
    compiled = _compile(tmp_path, model, dynamic_batch_size=[1, 4])
    _same(_run(tmp_path, compiled, inputs), _direct(model.path, inputs, frames=6), atol=1e-6)


# --- 3. aoe gets the model options atc gets ------------------------------------------------------------------


def test_aoe_gets_the_dynamic_and_precision_options_atc_gets(tmp_path):
    switch = tmp_path / "fusion.cfg"
    switch.write_text('{"Switch":{"GraphFusion":{"ALL":"off"}}}')
    inputs = (TensorSpec("spect", ("batch", 1, 161, 621), "float32"), TensorSpec("transcript", ("batch",), "int32"))
    flags = {"autotune": "GA", "cann_version": "6.0.1", "dynamic_batch_size": [1, 4],
             "precision_mode": "allow_fp32_to_fp16", "op_select_implmode": "high_precision",
             "optypelist_for_implmode": ["DynamicRNN"], "fusion_switch_file": str(switch), "soc_version": "Ascend310"}
    [aoe] = atc.build_aoe_argvs("m.onnx", inputs, flags)
    atc_argv = atc.build_atc_argv("m.onnx", "m", inputs, flags, detected_cann="6.0.1")
    for option in ("--input_shape=spect:-1,1,161,621;transcript:-1", "--dynamic_batch_size=1,4",
                   "--precision_mode=allow_fp32_to_fp16", "--op_select_implmode=high_precision",
                   "--optypelist_for_implmode=DynamicRNN", f"--fusion_switch_file={switch}"):
        assert option in aoe and option in atc_argv
    assert not any(a.startswith("--soc_version") for a in aoe)  # aoe takes the chip from the device


def test_a_dynamic_model_is_tuned_through_the_fake_aoe(tmp_path, monkeypatch):
    fake = tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch="batch")
    compiled = _compile(tmp_path, model, autotune="RL,GA", cann_version="6.0.1", dynamic_batch_size=[1, 4])
    [aoe] = fake.calls("aoe")  # the fake refuses -1 dims without a dynamic_* option, as aoe does
    assert "--dynamic_batch_size=1,4" in aoe and "--job_type=2" in aoe
    assert compiled.path.is_file()


# --- 4. input_fp16_nodes changes the input dtype; AIPP changes the input format ----------------------------


@pytest.mark.slow
def test_input_fp16_nodes_inputs_are_written_in_fp16(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 4))
    compiled = _compile(tmp_path, model, input_fp16_nodes=["spect"])
    assert [s.dtype for s in compiled.inputs] == ["float16", "int32"]
    for runner in ("msame", "ais_bench"):  # both read fp16 files now (before: a size mismatch)
        _same(_run(tmp_path, compiled, inputs, runner=runner), _direct(model.path, inputs, frames=6), atol=2e-3)
    with pytest.raises(InputError, match="input_fp16_nodes"):
        _compile(tmp_path, model, input_fp16_nodes=["spectrogram"])


def test_an_aipp_model_is_refused_at_run(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    aipp = tmp_path / "aipp.cfg"
    aipp.write_text("aipp_op { aipp_mode: static input_format: RGB888_U8 }\n")
    compiled = _compile(tmp_path, model, insert_op_conf=str(aipp))
    with pytest.raises(RunnerInputError, match="AIPP"):
        _run(tmp_path, compiled, tb.tiny_inputs(tmp_path / "inputs", lengths=(6,)))


# --- 5. mdl_bank_path is a folder ----------------------------------------------------------------------------


def test_mdl_bank_path_is_a_folder_carried_into_the_bundle(tmp_path, monkeypatch):
    tb.no_tools(tmp_path / "here", monkeypatch)
    bank = tmp_path / "bank"
    (bank / "sub").mkdir(parents=True)
    (bank / "sub" / "knowledge.json").write_text("{}")
    assert f"--mdl_bank_path={bank}" in atc.build_atc_argv("m.onnx", "m", STATIC, {"mdl_bank_path": str(bank)})
    with pytest.raises(InputError, match="not an existing folder"):
        atc.build_atc_argv("m.onnx", "m", STATIC, {"mdl_bank_path": str(bank / "sub" / "knowledge.json")})
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    where = tmp_path / "bundle"
    compiled = _compile(tmp_path, model, bundle_dir=where, mdl_bank_path=str(bank), buffer_optimize="l2_optimize")
    [carried] = [a.split("=", 1)[1] for a in compiled.details["argv"] if a.startswith("--mdl_bank_path=")]
    assert (where / carried / "sub" / "knowledge.json").read_text() == "{}"


# --- 6. dynamic_* take 2 to 100 profiles (dynamic_dims: at most 4 values before CANN 8.0) -------------------


@pytest.mark.parametrize("flags, message", [
    ({"dynamic_batch_size": [4]}, "1 profile"),
    ({"dynamic_batch_size": list(range(1, 102))}, "101 profile"),
    ({"dynamic_batch_size": [1, 4096]}, "1..2048"),
    ({"dynamic_batch_size": [1, 1]}, "repeats"),
])
def test_profile_counts_follow_atc(flags, message):
    inputs = (TensorSpec("spect", ("batch", 1, 161, 621), "float32"), TensorSpec("transcript", ("batch",), "int32"))
    with pytest.raises(InputError, match=message):
        atc.build_atc_argv("m.onnx", "m", inputs, flags)


def test_dynamic_dims_width_is_limited_before_cann_8():
    inputs = tuple(TensorSpec(f"x{i}", (1, f"t{i}"), "float32") for i in range(5))
    flags = {"dynamic_dims": [[1, 2, 3, 4, 5], [2, 3, 4, 5, 6]], "input_format": "ND"}
    with pytest.raises(InputError, match="at most 4"):
        atc.plan_compile("m.onnx", "m", inputs, {**flags, "cann_version": "7.0.0"})
    assert atc.plan_compile("m.onnx", "m", inputs, {**flags, "cann_version": "8.0.0"}).dynamic.option == "dynamic_dims"


# --- 7. input_format for ONNX: NCHW, NCDHW, ND (NHWC only with AIPP) ---------------------------------------


def test_input_format_choices_are_atcs_for_onnx(tmp_path):
    assert "--input_format=NCDHW" in atc.build_atc_argv("m.onnx", "m", STATIC, {"input_format": "NCDHW"})
    with pytest.raises(InputError, match="insert_op_conf"):
        atc.build_atc_argv("m.onnx", "m", STATIC, {"input_format": "NHWC"})
    aipp = tmp_path / "aipp.cfg"
    aipp.write_text("aipp_op { aipp_mode: static }\n")
    assert "--input_format=NHWC" in atc.build_atc_argv("m.onnx", "m", STATIC, {"input_format": "NHWC",
                                                                               "insert_op_conf": str(aipp)})


# --- 8. output_type: INT8; the per-output form needs out_nodes and retypes what is read back ----------------


def _named(tmp_path):
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    proto = onnx.load(str(model.path))
    for node in proto.graph.node:
        node.name = {"Softmax": "soft", "Add": "add"}.get(node.op_type, node.op_type.lower())
    onnx.save(proto, str(model.path))
    return model


@pytest.mark.slow
def test_per_output_output_type_retypes_the_named_output(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)
    model = _named(tmp_path)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6,))
    assert "--output_type=INT8" in atc.build_atc_argv("m.onnx", "m", STATIC, {"output_type": "INT8"})
    with pytest.raises(InputError, match="needs out_nodes"):
        _compile(tmp_path, model, output_type="soft:0:FP16")
    compiled = _compile(tmp_path, model, output_type="soft:0:FP16", out_nodes=["add:0", "soft:0"])
    assert [(s.name, s.dtype) for s in compiled.outputs] == [("out_lengths", "int32"), ("probs", "float16")]
    outputs = _run(tmp_path, compiled, inputs)  # the fake atc casts that output, as the real .om's would be
    got = outputs.load(0)
    assert got["probs"].dtype == np.float16 and got["out_lengths"].dtype == np.int32
    _same(outputs, _direct(model.path, inputs, frames=6), atol=1e-3)
    with pytest.raises(InputError, match="no output of a node"):
        _compile(tmp_path, model, out_nodes=["nothing:0"])


# --- 9. TXT: msame writes int8/uint8 as characters, ais_bench floats with six decimals ----------------------


def test_txt_combinations_that_lose_values_are_refused_or_warned():
    layout = runners.RunLayout(runner="msame", outfmt="TXT", stems=("data1",), input_dirs=("x",),
                               inputs=(TensorSpec("x", (1, 4), "float32"),),
                               outputs=(TensorSpec("q", (1, 4), "uint8"),))
    with pytest.raises(RunnerInputError, match="raw characters"):
        Msame().check_layout(layout)
    assert Msame().check_layout(runners.RunLayout(**{**layout.__dict__, "outfmt": "BIN"})) == []
    floats = runners.RunLayout(**{**layout.__dict__, "runner": "ais_bench",
                                  "outputs": (TensorSpec("p", (1, 4), "float32"),)})
    [warning] = AisBench().check_layout(floats)
    assert "six decimals" in warning and "5e-7" in warning


@pytest.mark.slow
def test_ais_bench_txt_run_records_its_warning(tmp_path, monkeypatch, capsys):
    tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6,))
    outputs = _run(tmp_path, _compile(tmp_path, model), inputs, runner="ais_bench", outfmt="TXT")
    assert "six decimals" in outputs.details["warnings"][0]
    assert "warning: ais_bench --outfmt TXT" in capsys.readouterr().err


# --- 10. run.sh takes ATC= / MSAME= / AIS_BENCH=, says which tool is missing, umask 022; ais_bench paths ----


@pytest.mark.slow
def test_run_sh_takes_tool_variables_and_names_the_missing_tool(tmp_path, monkeypatch):
    host = tb.install(tmp_path / "host", monkeypatch, tools=("atc",))
    tb.no_tools(tmp_path / "here", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 4))
    where = tmp_path / "bundle"
    compiled = _compile(tmp_path, model, bundle_dir=where)
    with pytest.raises(ToolMissingError):
        _run(tmp_path, compiled, inputs, bundle_dir=where)
    script = (where / "run.sh").read_text()
    assert "umask 022" in script.splitlines()[script.splitlines().index("set -euo pipefail") + 2]
    missing = subprocess.run(["bash", str(where / "run.sh")], env=host.env(), capture_output=True, text=True)
    assert missing.returncode == 127 and "msame not found" in missing.stderr and "MSAME=" in missing.stderr
    assert not (where / compiled.details["argv"][3].split("=", 1)[1]).with_suffix(".om").exists()  # nothing ran
    # msame built into tools/msame/out, not on PATH
    built = tmp_path / "tools" / "msame" / "out"
    built.mkdir(parents=True)
    tb.install(tmp_path / "msame-only", monkeypatch, tools=("msame",))
    os.symlink(tmp_path / "msame-only" / "bin" / "msame", built / "msame")
    done = subprocess.run(["bash", str(where / "run.sh")], env={**host.env(), "MSAME": str(built / "msame")},
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    _same(_run(tmp_path, compiled, inputs, bundle_dir=where), _direct(model.path, inputs, frames=6), atol=0.0)


def test_ais_bench_path_rules(tmp_path):
    assert "holds ' '" in ais_bench_path_problem("my models/m.om", "model")
    assert "holds '+'" in ais_bench_path_problem("a+b/m.om", "model")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o775)
    assert "group- or other-writable" in ais_bench_path_problem(str(shared), "input folder")
    os.chmod(shared, 0o755)
    assert ais_bench_path_problem(str(shared), "input folder") is None
    with pytest.raises(RunnerInputError, match=".om"):
        AisBench().check_paths("model.onnx", ["in"], "out")


@pytest.mark.slow
def test_local_ais_bench_run_survives_a_permissive_umask(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)  # the fake refuses group-writable paths as ais_bench does
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 4))
    compiled = _compile(tmp_path, model)
    old = os.umask(0o002)
    try:
        outputs = _run(tmp_path, compiled, inputs, runner="ais_bench", outfmt="NPY")
    finally:
        os.umask(old)
    _same(outputs, _direct(model.path, inputs, frames=6))


# --- 11. msame takes --input as files when its first path holds ".bin"; implmode help names Ascend IR types --


@pytest.mark.slow
def test_msame_input_folders_never_look_like_files(tmp_path, monkeypatch):
    with pytest.raises(RunnerInputError, match="'.bin'"):
        Msame().check_paths("m.om", ["data.bin.d/spect"], "out")
    tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6,))
    compiled = _compile(tmp_path, model)
    work = tmp_path / "ws.bin" / "run"  # a workspace whose path holds ".bin": porter passes relative folders
    work.mkdir(parents=True)
    outputs = plugin.porter_run(target=tb.target(), compiled=compiled, inputs=inputs, workdir=work, context=None)
    _same(outputs, _direct(model.path, inputs, frames=6))
    assert "DynamicRNN" in atc.ATC_OPTIONS["optypelist_for_implmode"].help


@pytest.mark.slow
def test_msame_log_lines_give_per_file_times_in_input_order(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)  # the fake sorts data1, data10, data11, data2 as msame does
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6,) * 11)
    outputs = _run(tmp_path, _compile(tmp_path, model), inputs)
    assert outputs.details["timing_source"] == "msame per-file 'Inference time'"
    assert len(outputs.timing.latencies_ms) == 11
    assert "msame_average_without_first_ms" in outputs.details
    _same(outputs, _direct(model.path, inputs, frames=6))
