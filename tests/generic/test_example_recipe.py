"""The worked example end to end: its setup step writes the .onnx and the .npz files, the shipped recipe runs
its ONNX Runtime variants here and writes the Ascend bundle, and the bundle run on an "Ascend host" (porter's
fake atc/msame) comes back and is scored against the same references."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from generic_files import EXAMPLES, ROOT

sys.path.insert(0, str(ROOT / "tests" / "ascend310"))
from fakes import toolbox as tb  # noqa: E402


def _porter(capsys, *args):
    from porter.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _native_bf16() -> bool:
    from porter_openvino.capabilities import detect

    return detect().supports("bf16")


@pytest.mark.slow
def test_the_example_recipe_end_to_end(example_module, tmp_path, capsys, monkeypatch):
    host = tb.install(tmp_path / "host", monkeypatch)
    tb.no_tools(tmp_path / "here", monkeypatch)
    # the shipped recipe, next to its own copy of the setup step's files (three samples, to stay quick)
    raw = yaml.safe_load((EXAMPLES / "tiny_cnn.yaml").read_text())
    assert raw["model"]["options"]["path"] == "tiny_cnn/model.onnx"
    raw.update(workspace="ws", bundle="bundle")  # kept inside tmp_path; everything else as shipped
    recipe = tmp_path / "tiny_cnn.yaml"
    recipe.write_text(yaml.safe_dump(raw, sort_keys=False))
    example_module.write_example(tmp_path / "tiny_cnn", samples=3)

    code, out, err = _porter(capsys, "run", recipe)
    assert code == 0, err  # the Ascend variant is skipped for its missing tools, which the recipe allows
    report = _report(tmp_path, raw)
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["ort"]["metrics"]["max_abs_error"] < 1e-5
    assert by_name["ort_cleanup"]["metrics"]["cosine/logits"] > 0.99999
    assert 1e-5 < by_name["ort_int8"]["metrics"]["max_abs_error"] < 0.05
    assert by_name["ort_int8"]["metrics"]["top1_agreement/logits"] == 100.0
    assert by_name["openvino_f32"]["metrics"]["max_abs_error"] < 1e-5
    bf16, f32 = by_name["openvino_bf16"]["metrics"], by_name["openvino_f32"]["metrics"]
    if _native_bf16():  # bf16 matrix work moves the numbers far more than fp32 does, but keeps the classes
        assert bf16["max_abs_error"] > 10 * f32["max_abs_error"]
    else:  # a CPU without BF16 runs the variant in f32 and says so
        assert "lack BF16" in by_name["openvino_bf16"]["details"]["compile"]["precision_fallback"]
        assert bf16["max_abs_error"] == f32["max_abs_error"]
    assert by_name["openvino_bf16"]["metrics"]["top1_agreement/logits"] == 100.0
    assert by_name["ascend310_fp16"]["status"] == "skipped"
    assert {v["variant"] for v in report["verdicts"]} == {"ort", "ort_cleanup", "ort_int8", "openvino_f32",
                                                          "openvino_bf16"}
    assert all(v["ok"] for v in report["verdicts"])

    bundle = _bundle(tmp_path, raw)
    done = subprocess.run(["bash", str(bundle / "run.sh")], env=host.env(), capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert host.calls("atc") and host.calls("msame")
    code, out, err = _porter(capsys, "score", bundle)
    assert code == 0, out + err
    ascend = {v["name"]: v for v in _report(tmp_path, raw)["variants"]}["ascend310_fp16"]
    assert ascend["status"] == "ok"
    # the fake "om" is the ONNX graph itself, so the outputs come back within text-format rounding
    assert ascend["metrics"]["cosine"] > 0.9999 and ascend["metrics"]["top1_agreement/logits"] == 100.0
    assert "budget ok: ascend310_fp16: cosine" in out


def _report(tmp_path, raw) -> dict:
    return json.loads(((tmp_path / raw["workspace"]).resolve() / "report.json").read_text())


def _bundle(tmp_path, raw):
    return (tmp_path / raw["bundle"]).resolve()
