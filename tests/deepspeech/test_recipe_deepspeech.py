"""A deepspeech recipe through the real CLI: PyTorch reference and ONNX Runtime fp32 on a tiny checkpoint and a
few real (espeak-ng) utterances; the two variants must transcribe identically."""
from __future__ import annotations

import json

import pytest
import yaml
from pipeline_support import PROMPTS, tiny_checkpoint, write_an4_forms


def _run_recipe(tmp_path, capsys, recipe: dict) -> tuple[dict, str]:
    """Write the recipe next to a tiny checkpoint and real utterances, run it with the CLI; (report, stdout)."""
    from porter.cli.main import main

    write_an4_forms(tmp_path / "data")
    tiny_checkpoint(tmp_path / "tiny.ckpt")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    workspace = tmp_path / "ws"
    code = main(["run", str(path), "--workspace", str(workspace), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err + out
    return json.loads((workspace / "report.json").read_text()), out


@pytest.mark.slow
def test_reference_and_onnxruntime_variants_score_identically(tmp_path, capsys):
    recipe = {
        "name": "ds_tiny",
        # relative paths resolve against the recipe file
        "model": {"name": "deepspeech", "options": {"checkpoint": "tiny.ckpt"},
                  "export": {"static_length": 200}},
        "dataset": {"name": "an4", "options": {"manifest": "data/an4_test_manifest.json"}},
        "target": {"name": "onnxruntime", "flags": {"warmup": 1}},
        "metrics": ["wer", "cer"],
        "variants": {"pytorch": {"reference": True}, "ort_fp32": {}},
    }
    report, out = _run_recipe(tmp_path, capsys, recipe)
    variants = {v["name"]: v for v in report["variants"]}
    reference, ort = variants["pytorch"], variants["ort_fp32"]
    assert [s["stage"] for s in ort["stages"]] == ["preprocess", "export", "compile", "run", "score"]
    assert [s["stage"] for s in reference["stages"]] == ["preprocess", "run_reference", "score"]

    # a random model transcribes badly, but both variants must transcribe exactly alike
    for name in ("wer", "cer", "wer/test", "cer/test"):
        assert ort["metrics"][name] == reference["metrics"][name]
    assert reference["metrics"]["cer"] > 0
    hypotheses = [s["hypothesis"] for s in reference["samples"]]
    assert [s["hypothesis"] for s in ort["samples"]] == hypotheses and all(hypotheses)
    assert [s["reference"] for s in ort["samples"]] == list(PROMPTS.values())
    assert ort["deltas"]["wer"] == 0 and ort["deltas"]["cer"] == 0
    # the export was checked on padded inputs against PyTorch
    padded = [c for c in ort["checks"] if "padded" in c["label"]]
    assert padded and all(c["max_abs_diff"] < 1e-5 for c in padded)
    assert "ort_fp32" in out and "wer" in out.lower()


@pytest.mark.slow
def test_bucketed_batches_equal_one_at_a_time_and_int8_is_scored(tmp_path, capsys):
    import numpy as np

    from porter.artifacts import read_sample

    dynamic = {"export": {"dynamic": True}}
    recipe = {
        "name": "ds_batching",
        "model": {"name": "deepspeech", "options": {"checkpoint": "tiny.ckpt"}},
        "dataset": {"name": "an4", "options": {"manifest": "data/an4_test_manifest.json"}},
        "target": {"name": "onnxruntime", "flags": {"warmup": 1}},
        "metrics": ["wer", "cer"],
        "variants": {
            "pytorch": {"reference": True},
            "one_at_a_time": {"model": dynamic},
            # a batch of 2 over utterances of different lengths: padding must not reach the results
            "bucketed": {"model": dynamic, "target": {"flags": {"batching": "bucketed", "batch_size": 2}}},
            "int8": {"model": dynamic, "target": {"flags": {"batching": "bucketed", "batch_size": 2,
                                                             "quantize": "int8_dynamic"}}},
            # a budget of one frame: every utterance runs alone, and the results cannot change
            "one_frame_budget": {"model": dynamic, "target": {"flags": {"batching": "bucketed", "batch_size": 2,
                                                                        "max_batch_frames": 1}}},
        },
    }
    report, _ = _run_recipe(tmp_path, capsys, recipe)
    workspace = tmp_path / "ws"
    variants = {v["name"]: v for v in report["variants"]}
    single, bucketed, int8 = variants["one_at_a_time"], variants["bucketed"], variants["int8"]
    assert bucketed["details"]["run"]["batching"] == "bucketed"
    assert bucketed["metrics"] == single["metrics"]
    assert [s["hypothesis"] for s in bucketed["samples"]] == [s["hypothesis"] for s in single["samples"]]
    n = len(single["samples"])
    assert bucketed["details"]["run"]["batches"] == (n + 1) // 2 and bucketed["details"]["run"]["largest_batch"] == 2
    budget = variants["one_frame_budget"]
    assert budget["details"]["run"]["batches"] == n and budget["details"]["run"]["largest_batch"] == 1
    assert budget["metrics"] == single["metrics"]

    # per-utterance probabilities agree within float rounding over each utterance's valid frames
    run_dirs = {v: workspace / "artifacts" / "run" / next(s["key"] for s in variants[v]["stages"]
                                                          if s["stage"] == "run")
                for v in ("one_at_a_time", "bucketed")}
    for i in range(len(single["samples"])):
        a, b = read_sample(run_dirs["one_at_a_time"], i), read_sample(run_dirs["bucketed"], i)
        n = int(a["out_lengths"][0])
        assert int(b["out_lengths"][0]) == n
        np.testing.assert_allclose(b["probs"][0, :n], a["probs"][0, :n], atol=1e-5)

    # the quantised variant runs, is smaller, and is scored against the reference
    assert int8["status"] == "ok" and set(int8["metrics"]) == set(single["metrics"])
    assert int8["model_size_bytes"] < single["model_size_bytes"]
    assert "wer" in int8["deltas"]


@pytest.mark.slow
def test_the_cli_keeps_the_exporters_cpp_shape_warnings_off_stderr_unless_asked(tmp_path):
    """The legacy exporter prints PackPadded shape-inference warnings from C++ on each LSTM export; the porter
    command hides them by default, and TORCH_CPP_LOG_LEVEL=WARNING brings them back."""
    import os
    import subprocess
    import sys

    write_an4_forms(tmp_path / "data")
    tiny_checkpoint(tmp_path / "tiny.ckpt")
    recipe = {
        "name": "ds_quiet",
        "model": {"name": "deepspeech", "options": {"checkpoint": "tiny.ckpt"}, "export": {"static_length": 200}},
        "dataset": {"name": "an4", "options": {"manifest": "data/an4_test_manifest.json"}},
        "target": {"name": "onnxruntime", "flags": {"warmup": 0}},
        "metrics": ["wer"],
        "variants": {"ort_fp32": {}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k != "TORCH_CPP_LOG_LEVEL"}

    def run(workspace, **extra_env):
        done = subprocess.run([sys.executable, "-m", "porter.cli.main", "run", str(path), "--workspace",
                               str(tmp_path / workspace), "--quiet"], env={**env, **extra_env},
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stderr

    assert "PackPadded" not in run("quiet")
    assert "PackPadded" in run("loud", TORCH_CPP_LOG_LEVEL="WARNING")
