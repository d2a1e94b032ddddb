"""The openvino target end to end on a tiny random DeepSpeech and three real utterances: flags read back from
the compiled model, the padded-batch parity check, int8 (plain and under accuracy control), the compile cache,
and the bf16 fallback on a CPU without BF16."""
from __future__ import annotations

import pytest

pytest.importorskip("openvino")

import ov_support
from ov_support import native_bf16, recipe, run_recipe, variants_of

from porter.parity import ESTIMATE_TOLERANCE

ds_project = ov_support.ds_project  # the module-scoped fixture

SPLIT = ["split_bidirectional_lstm", "direction_sum_to_add"]
BUCKETED = {"batching": "bucketed", "batch_size": 3}


def _stage(variant: dict, stage: str) -> dict:
    return next(s for s in variant["stages"] if s["stage"] == stage)


@pytest.mark.slow
def test_flags_parity_int8_and_the_compile_cache(ds_project, capsys):
    tuned = {**BUCKETED, "inference_precision": "bf16", "performance_hint": "throughput", "num_streams": 1,
             "inference_num_threads": 1, "enable_cpu_pinning": False, "execution_mode": "accuracy"}
    data = recipe({
        "pytorch": {"reference": True},
        # OpenVINO's bidirectional LSTM mishandles sequence_lens on padded batches: porter must say so
        "unsplit": {"target": {"flags": BUCKETED}},
        "split": {"graph_fix": SPLIT, "target": {"flags": BUCKETED}},
        "tuned": {"graph_fix": SPLIT, "target": {"flags": tuned}},
        "static": {"graph_fix": SPLIT, "target": {"flags": {**BUCKETED, "batch_size": 2, "static_shapes": True}}},
        "int8": {"graph_fix": SPLIT, "target": {"flags": {"quantize": "int8", "subset_size": 3, "preset": "mixed",
                                                           "ignored_scope": {"types": ["Softmax"]}}}},
        "int8_ac": {"graph_fix": SPLIT, "target": {"flags": {"quantize": "int8_accuracy_control", "subset_size": 3,
                                                              "max_drop": 100.0}}},
    })
    report, output = run_recipe(ds_project, capsys, data, expect=1)
    v = variants_of(report)
    assert "Statistics collection" not in output  # NNCF's progress bars stay off piped output

    bad = v["unsplit"]
    assert bad["status"] == "failed"
    assert "target 'openvino' is wrong" in bad["message"] and "padded batch" in bad["message"]
    diff = float(bad["message"].split("max abs diff ")[1].split(" ")[0])
    assert diff > 1e-3  # measured 3.1e-3 on this model; batch 1 is exact
    good = v["split"]
    assert good["status"] == "ok"
    checks = {c["label"]: c for c in good["checks"]}
    batch = checks["openvino padded batch vs exported ONNX"]
    # the target's 1e-4 plus each pass's own 1e-4 (porter.parity.variant_tolerance)
    passes = sum(p["check"]["tolerance"] for p in good["pass_records"])
    assert len(good["pass_records"]) == 2 and 0 < passes < 1e-4
    assert batch["max_abs_diff"] < 1e-4 and batch["tolerance"] == pytest.approx(1e-4 + passes)
    assert checks["openvino alone vs exported ONNX"]["max_abs_diff"] < 1e-4
    assert good["metrics"] == v["pytorch"]["metrics"]
    assert good["details"]["run"]["batches"] == 1 and good["details"]["run"]["loaded_from_cache"] is True

    # static shapes: one reshaped compile per distinct batch shape, the same transcripts
    static = v["static"]
    assert static["status"] == "ok" and static["details"]["run"]["shape_compiles"] == 2
    assert static["metrics"] == good["metrics"]

    # every flag is read back from the compiled model, not echoed from the recipe
    compiled = v["tuned"]["details"]["compile"]
    assert compiled["read_back"]["PERFORMANCE_HINT"] == "THROUGHPUT"
    assert compiled["read_back"]["EXECUTION_MODE_HINT"] == "ACCURACY"
    assert compiled["read_back"]["NUM_STREAMS"] == "1"
    assert compiled["read_back"]["INFERENCE_NUM_THREADS"] == "1"
    assert compiled["read_back"]["ENABLE_CPU_PINNING"] == "False"
    bf16_check = next(c for c in v["tuned"]["checks"] if "padded batch vs exported" in c["label"])
    if native_bf16():
        assert compiled["read_back"]["INFERENCE_PRECISION_HINT"] == "bf16"
        assert compiled["precision"] == "bf16" and "bf16: " in compiled["runtime_summary"]
        assert "RNNSeq" in compiled["runtime_precisions"]["bf16"]
        assert v["tuned"]["estimate"] is True
        assert bf16_check["tolerance"] == pytest.approx(ESTIMATE_TOLERANCE + passes)
        assert bf16_check["max_abs_diff"] < 1e-2
    else:  # this CPU lacks BF16: the variant ran f32, said so, and is held to f32's tolerance
        assert compiled["read_back"]["INFERENCE_PRECISION_HINT"] == "f32" and compiled["precision"] == "f32"
        assert "lack BF16" in compiled["precision_fallback"]
        assert v["tuned"]["estimate"] is False
        assert bf16_check["tolerance"] == pytest.approx(1e-4 + passes) and bf16_check["max_abs_diff"] < 1e-4

    int8 = v["int8"]["details"]["compile"]
    assert int8["precision"] == "int8+f32" and int8["calibration_samples"] == 3
    assert any(p in int8["runtime_precisions"] for p in ("i8", "u8"))
    assert v["int8"]["status"] == "ok" and "wer" in v["int8"]["deltas"]
    control = v["int8_ac"]["details"]["compile"]["accuracy_control"]
    assert control["metric"] == "wer" and control["max_drop"] == 100.0
    assert control["float"] is not None and control["int8"] is not None
    assert v["int8_ac"]["status"] == "ok"

    # a run flag changed: the compile stage comes from porter's cache and OpenVINO loads the compiled blob
    data["variants"] = {"split": {"graph_fix": SPLIT, "target": {"flags": {**BUCKETED, "batch_size": 2}}}}
    again, _ = run_recipe(ds_project, capsys, data, name="again.yaml")
    split = variants_of(again)["split"]
    assert _stage(split, "compile")["cache_hit"] is True and _stage(split, "run")["cache_hit"] is False
    assert split["details"]["run"]["loaded_from_cache"] is True and split["details"]["run"]["batches"] == 2


def test_bf16_on_a_cpu_without_bf16_falls_back_to_f32_and_says_so(ds_project, capsys, monkeypatch):
    from porter_openvino.capabilities import OVERRIDE_ENV

    monkeypatch.setenv(OVERRIDE_ENV, "FP32,INT8")
    data = recipe({"bf16": {"graph_fix": SPLIT, "target": {"flags": {"inference_precision": "bf16"}}}})
    report, output = run_recipe(ds_project, capsys, data, name="nobf16.yaml", workspace="ws_nobf16")
    compiled = variants_of(report)["bf16"]["details"]["compile"]
    # said where the user looks: a note under the table, in report.md, and in the report's notes
    assert variants_of(report)["bf16"]["notes"] == [compiled["precision_fallback"]]
    assert "bf16: inference_precision bf16 was asked" in output and "lack BF16: ran f32" in " ".join(output.split())
    assert compiled["requested_precision"] == "bf16"
    assert compiled["read_back"]["INFERENCE_PRECISION_HINT"] == "f32" and compiled["precision"] == "f32"
    assert "lack BF16" in compiled["precision_fallback"] and "ran f32" in compiled["precision_fallback"]
    assert "bf16" not in compiled["runtime_precisions"]
    assert variants_of(report)["bf16"]["estimate"] is False


def test_unknown_and_out_of_range_flags_are_recipe_errors(ds_project, capsys):
    _, out = run_recipe(ds_project, capsys, recipe({"x": {"target": {"flags": {"inference_precison": "bf16"}}}}),
                        name="typo.yaml", workspace="ws_typo", expect=2)
    assert "unknown flag 'inference_precison'" in out and "did you mean 'inference_precision'" in out
    assert "static_shapes" in out  # the known flags are listed
    _, out = run_recipe(ds_project, capsys, recipe({"x": {"target": {"flags": {"num_streams": -1}}}}),
                        name="range.yaml", workspace="ws_range", expect=2)
    assert "num_streams" in out and "out of range" in out
    _, out = run_recipe(ds_project, capsys, recipe({"x": {"target": {"flags": {"inference_precision": "int4"}}}}),
                        name="choice.yaml", workspace="ws_choice", expect=2)
    assert "allowed: f32, bf16, f16" in out


def test_plugins_and_doctor_show_openvino_version_device_and_capabilities(capsys, monkeypatch):
    import openvino as ov

    from porter.cli.main import main

    monkeypatch.delenv("PORTER_OPENVINO_CAPABILITIES", raising=False)
    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    for command in ("plugins", "doctor"):
        capsys.readouterr()
        assert main([command]) == 0
        out = capsys.readouterr().out
        assert f"openvino: {ov.get_version()}" in out
        assert "openvino device: CPU: " in out
        assert f"openvino OPTIMIZATION_CAPABILITIES: {', '.join(sorted(capabilities))}" in out


def test_a_model_compiled_where_bf16_ran_says_what_this_cpu_ran(tmp_path, monkeypatch):
    """A workspace shared between machines (a Dask worker elsewhere, a copied folder) can hand this CPU a model
    compiled where OpenVINO computed in bf16 (or f16); OpenVINO then runs f32 here without a word, so the run
    says so."""
    import dataclasses
    import sys
    from pathlib import Path

    from porter.api import TargetConfig
    from porter_openvino import plugin
    from porter_openvino.capabilities import OVERRIDE_ENV, detect
    from porter_openvino.flags import FLAGS

    monkeypatch.delenv(OVERRIDE_ENV, raising=False)
    lacking = next((p for p in ("bf16", "f16") if not detect().supports(p)), None)
    if lacking is None:
        pytest.skip("this CPU computes both bf16 and f16: the mismatch needs one that lacks either")
    sys.path.insert(0, str(Path(__file__).parent.parent / "ascend310"))
    from fakes import toolbox as tb

    target = TargetConfig(name="openvino", flags={name: option.default for name, option in FLAGS.items()})
    model = tb.tiny_onnx(tmp_path / "tiny.onnx")
    inputs = tb.tiny_inputs(tmp_path / "inputs")
    (tmp_path / "compile").mkdir()
    compiled = plugin.porter_compile(target=target, model=model, inputs=inputs, evaluate=None,
                                     workdir=tmp_path / "compile")
    here = plugin.porter_run(target=target, compiled=compiled, inputs=inputs, workdir=tmp_path / "run_here")
    assert here.notes == ()  # compiled and run on this CPU: nothing to say

    # the same artifact as the compile stage of a machine that computes in ``lacking`` records it
    elsewhere = dataclasses.replace(compiled, details={
        **compiled.details, "read_back": {**compiled.details["read_back"], "INFERENCE_PRECISION_HINT": lacking},
        "properties": {**compiled.details["properties"], "INFERENCE_PRECISION_HINT": lacking}})
    run = plugin.porter_run(target=target, compiled=elsewhere, inputs=inputs, workdir=tmp_path / "run_elsewhere")
    assert len(run.notes) == 1
    ran = run.details["ran_precision"]
    assert ran != lacking and "ran_precision" not in here.details
    assert f"compiled where OpenVINO computed in {lacking}" in run.notes[0] and f"ran it in {ran}" in run.notes[0]
