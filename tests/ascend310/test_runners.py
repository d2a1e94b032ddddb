"""msame and ais_bench: input layout, argument lists, and reading their outputs and timings back."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from fakes import toolbox as tb

from porter.artifacts import CompiledModel, TensorSpec
from porter.errors import InputError, ToolMissingError
from porter_ascend310 import plugin, runners
from porter_ascend310.toolkit import ToolFailedError

LAYOUT = runners.RunLayout(
    runner="msame", outfmt="BIN", stems=("data1", "data2"), input_dirs=("spect", "lengths"),
    inputs=(TensorSpec("spect", (1, 1, 4, 6), "float32"), TensorSpec("lengths", (1,), "int32")),
    outputs=(TensorSpec("probs", (1, 6, 3), "float32"), TensorSpec("out_lengths", (1,), "int32")))


def _compile(tmp_path, model, **flags):
    work = tmp_path / f"compile-{len(list(tmp_path.glob('compile-*')))}"
    work.mkdir()
    return plugin.porter_compile(target=tb.target(**flags), model=model, workdir=work, context=None)


def _run(tmp_path, compiled, inputs, **flags):
    work = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    work.mkdir()
    return plugin.porter_run(target=tb.target(**flags), compiled=compiled, inputs=inputs, workdir=work, context=None)


def _assert_same(outputs, expected, atol=0.0):
    assert len(outputs) == len(expected)
    for index, reference in enumerate(expected):
        got = outputs.load(index)
        assert set(got) == set(reference)
        for name, array in reference.items():
            assert got[name].shape == array.shape and got[name].dtype == array.dtype
            np.testing.assert_allclose(got[name], array, rtol=0, atol=atol)


def test_msame_argv():
    layout = runners.RunLayout(**{**LAYOUT.__dict__, "device": 3, "outfmt": "TXT"})
    assert runners.msame_argv(["msame"], "m.om", ["in/spect", "in/lengths"], "out", layout) == [
        "msame", "--model", "m.om", "--input", "in/spect,in/lengths", "--output", "out", "--outfmt", "TXT",
        "--device", "3"]


def test_ais_bench_argv():
    layout = runners.RunLayout(**{**LAYOUT.__dict__, "runner": "ais_bench", "outfmt": "NPY", "device": 1,
                                  "warmup_count": 5, "loop": 2, "dynamic_args": ("--dymBatch", "1")})
    assert runners.ais_bench_argv(["python3", "-m", "ais_bench"], "m.om", ["a", "b"], "out", layout) == [
        "python3", "-m", "ais_bench", "--model", "m.om", "--input", "a,b", "--output", "out", "--output_dirname",
        "result", "--outfmt", "NPY", "--batchsize", "1", "--device", "1", "--warmup_count", "5", "--loop", "2",
        "--dymBatch", "1"]


@pytest.mark.parametrize("runner, outfmt, atol", [("msame", "BIN", 0.0), ("msame", "TXT", 1e-5),
                                                  ("ais_bench", "NPY", 0.0), ("ais_bench", "BIN", 0.0),
                                                  ("ais_bench", "TXT", 1e-5)])
@pytest.mark.slow
def test_local_run_matches_onnx_runtime(tmp_path, monkeypatch, runner, outfmt, atol):
    fake = tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 4, 5))
    compiled = _compile(tmp_path, model)
    outputs = _run(tmp_path, compiled, inputs, runner=runner, outfmt=outfmt, device=2)
    _assert_same(outputs, tb.direct_outputs(model.path, inputs), atol)
    assert outputs.sample_ids == inputs.sample_ids and outputs.output_names == ("probs", "out_lengths")
    assert len(outputs.timing.latencies_ms) == 3 and all(v > 0 for v in outputs.timing.latencies_ms)
    [call] = fake.calls(runner)
    assert call[call.index("--outfmt") + 1] == outfmt and call[call.index("--device") + 1] == "2"
    if runner == "ais_bench":
        summary = outputs.details["ais_bench_summary"]
        assert summary["throughput"] > 0 and summary["p99_ms"] >= summary["median_ms"]
        assert outputs.timing.warmup == 1
    else:
        assert outputs.details["msame_average_ms"] > 0
    # the runner's raw files are gone (the arrays live in the OutputSet), its log stays
    assert not list(outputs.path.rglob("*.bin")) and list(outputs.path.rglob(f"{runner}.log"))


def test_inputs_are_padded_into_msame_layout(tmp_path):
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 4))
    runners.write_input_files(inputs, LAYOUT, tmp_path / "feed")
    assert sorted(p.name for p in (tmp_path / "feed" / "spect").iterdir()) == ["data1.bin", "data2.bin"]
    assert sorted(p.name for p in (tmp_path / "feed" / "lengths").iterdir()) == ["data1.bin", "data2.bin"]
    spect = np.fromfile(tmp_path / "feed" / "spect" / "data2.bin", np.float32).reshape(1, 1, 4, 6)
    np.testing.assert_array_equal(spect[..., :4], inputs.load(1)["spect"])
    assert not spect[..., 4:].any()
    lengths = np.fromfile(tmp_path / "feed" / "lengths" / "data2.bin", np.int32)
    assert lengths.tolist() == [4] and (tmp_path / "feed" / "lengths" / "data2.bin").stat().st_size == 4


def test_sample_longer_than_the_compiled_shape_is_refused(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 9))
    compiled = _compile(tmp_path, model)
    with pytest.raises(InputError, match=r"'spect' dim 3 reaches 9 .* at most 6"):
        _run(tmp_path, compiled, inputs)


@pytest.mark.slow
def test_dynamic_dims_pick_the_smallest_profile_that_fits(tmp_path, monkeypatch):
    fake = tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1, frames="time")
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(3, 5, 2))
    compiled = _compile(tmp_path, model, dynamic_dims=[[4], [8], [6]])
    assert "--input_shape=spect:1,1,4,-1;lengths:1" in fake.calls("atc")[0]
    assert compiled.inputs[0].shape == (1, 1, 4, "time")
    outputs = _run(tmp_path, compiled, inputs, runner="ais_bench", outfmt="BIN")
    call = fake.calls("ais_bench")[0]
    assert call[call.index("--dymDims") + 1] == "spect:1,1,4,6;lengths:1"
    _assert_same(outputs, tb.direct_outputs(model.path, inputs, frames=6))


@pytest.mark.slow
def test_dynamic_batch_runs_batch_one(tmp_path, monkeypatch):
    fake = tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch="batch")
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(6, 2))
    compiled = _compile(tmp_path, model, dynamic_batch_size=[1, 4])
    outputs = _run(tmp_path, compiled, inputs)
    call = fake.calls("msame")[0]
    assert call[call.index("--dymBatch") + 1] == "1"
    _assert_same(outputs, tb.direct_outputs(model.path, inputs))
    no_one = _compile(tmp_path, model, dynamic_batch_size=[2, 4])
    with pytest.raises(InputError, match="lack 1"):
        _run(tmp_path, no_one, inputs)


def test_failing_runner_shows_its_stderr_tail(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch)
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs")
    compiled = _compile(tmp_path, model)
    monkeypatch.setenv(tb.FAIL_VARIABLE, "msame")
    with pytest.raises(ToolFailedError, match=r"(?s)msame exited with status 3.*E19999: msame fake failure"):
        _run(tmp_path, compiled, inputs)


def test_missing_runner_without_bundle_is_tool_missing(tmp_path, monkeypatch):
    tb.install(tmp_path / "tools", monkeypatch, tools=("atc",))
    model = tb.tiny_onnx(tmp_path / "tiny.onnx", batch=1)
    inputs = tb.tiny_inputs(tmp_path / "inputs")
    compiled = _compile(tmp_path, model)
    with pytest.raises(ToolMissingError, match="ais_bench not found"):
        _run(tmp_path, compiled, inputs, runner="ais_bench", outfmt="NPY")


def test_runner_flags_are_checked():
    with pytest.raises(InputError, match="msame writes BIN|TXT"):
        runners.RunSettings.from_flags({"runner": "msame", "outfmt": "NPY"})
    with pytest.raises(InputError, match="loop.*ais_bench option"):
        runners.RunSettings.from_flags({"runner": "msame", "loop": 3})
    with pytest.raises(InputError, match="runner"):
        runners.RunSettings.from_flags({"runner": "benchmark"})
    assert runners.RunSettings.from_flags({"runner": "ais_bench", "outfmt": "npy", "loop": 2}).outfmt == "NPY"


def test_newest_msame_folder_is_read(tmp_path):
    old, new = tmp_path / "20240101_000000", tmp_path / "20240102_000000"
    for folder, value in ((old, 1.0), (new, 2.0)):
        folder.mkdir()
        for stem in LAYOUT.stems:
            np.full((1, 6, 3), value, np.float32).tofile(folder / f"{stem}_output_0.bin")
            np.array([7], np.int32).tofile(folder / f"{stem}_output_1.bin")
    os.utime(old, (time.time() - 100, time.time() - 100))
    samples = runners.read_outputs(LAYOUT, tmp_path)
    assert [float(s["probs"].max()) for s in samples] == [2.0, 2.0]
    assert samples[0]["out_lengths"].dtype == np.int32


def test_wrong_sized_output_names_the_file(tmp_path):
    folder = tmp_path / "20240101_000000"
    folder.mkdir()
    for stem in LAYOUT.stems:
        np.zeros(17, np.float32).tofile(folder / f"{stem}_output_0.bin")
        np.zeros(1, np.int32).tofile(folder / f"{stem}_output_1.bin")
    with pytest.raises(runners.OutputFormatError, match=r"data1_output_0.bin: output 'probs' holds 17 float32 values"):
        runners.read_outputs(LAYOUT, tmp_path)
    assert not runners.has_outputs(LAYOUT, tmp_path / "nothing")


def test_parse_msame_printout():
    text = """[INFO] start to process file:/data/test/spect/data2.bin
[INFO] model execute success
Inference time: 9090.5ms
[INFO] output data success
[INFO] start to process file:/data/test/spect/data1.bin
[INFO] model execute success
Inference time: 9001.25ms
[INFO] output data success
Inference average time : 9045.88 ms
Inference average time without first time: 9001.25 ms
[INFO] unload model success, model Id is 1
"""
    timing, details = runners.parse_msame_log(text, ["data1", "data2"])
    assert timing.latencies_ms == (9001.25, 9090.5)  # in sample order, not processing order
    assert details["msame_average_ms"] == 9045.88 and details["msame_average_without_first_ms"] == 9001.25
    assert timing.throughput == pytest.approx(2 / ((9001.25 + 9090.5) / 1000))
    only_average, details = runners.parse_msame_log("Inference average time: 105.417100 ms\n", ["data1"])
    assert only_average.latencies_ms == (105.4171,) and "average only" in details["timing_source"]


def test_parse_ais_bench_summary_old_and_new_keys(tmp_path):
    path = tmp_path / "result_summary.json"
    path.write_text(json.dumps({
        "NPU_compute_time": {"min": 55.1, "max": 58.0, "mean": 56.0, "median": 55.5, "percentile(99%)": 57.9},
        "H2D_latency": {"mean": 0.9}, "D2H_latency": {"mean": 0.05}, "throughput": 17.857,
        "npu_compute_time_list": [55.1, 55.5, 58.0]}))
    timing, details = runners.parse_ais_bench_summary(path, warmup=None)
    assert timing.latencies_ms == (55.1, 55.5, 58.0) and timing.warmup == 1
    assert details["ais_bench_summary"]["p99_ms"] == 57.9 and details["ais_bench_summary"]["throughput"] == 17.857
    path.write_text(json.dumps({"NPU_compute_time": {"mean": 4.0, "median": 4.0, "P99": 5.0},
                                "npu_compute_time_list": [[0.0, 4.0], [4.0, 8.5]], "throughput": 250.0}))
    timing, details = runners.parse_ais_bench_summary(path, warmup=3)
    assert timing.latencies_ms == (4.0, 4.5) and timing.warmup == 3
    assert details["ais_bench_summary"]["p99_ms"] == 5.0
    path.write_text("{}")
    with pytest.raises(runners.OutputFormatError, match="NPU_compute_time"):
        runners.parse_ais_bench_summary(path, warmup=None)


def test_output_shapes_fall_back_to_a_run_when_inference_cannot_tell(tmp_path):
    """Shape inference cannot see through a data-dependent NonZero; one ONNX Runtime run on a real sample can."""
    from onnx import TensorProto, helper, save

    graph = helper.make_graph(
        [helper.make_node("NonZero", ["x"], ["idx"])], "nz",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("idx", TensorProto.INT64, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(tmp_path / "nz.onnx"))
    outputs = (TensorSpec("idx", ("?",), "int64"),)
    feed = {"x": np.array([[0, 1, 0, 2]], np.float32)}
    [spec] = runners.infer_output_specs(tmp_path / "nz.onnx", {"x": (1, 4)}, outputs, feed)
    assert spec.shape == (2, 2) and spec.dtype == "int64"
    with pytest.raises(runners.OutputFormatError, match="cannot infer output shapes"):
        runners.infer_output_specs(tmp_path / "nz.onnx", {"x": (1, 4)}, outputs, None)


def test_run_shapes_need_compile_details(tmp_path):
    inputs = tb.tiny_inputs(tmp_path / "inputs", lengths=(3,))
    compiled = CompiledModel(target="ascend310", path=tmp_path / "m.om", source=tmp_path / "m.onnx",
                             inputs=LAYOUT.inputs, outputs=LAYOUT.outputs,
                             details={"input_shapes": {"spect": [1, 1, 4, 6], "lengths": [1]}, "dynamic": None})
    shapes, args = runners.choose_run_shapes(compiled, inputs)
    assert shapes == {"spect": (1, 1, 4, 6), "lengths": (1,)} and args == ()
