"""The generic plugin through recipes and the CLI: the ten-line recipe, random inputs, and how the plan shares
one reference run between the reference variant and every variant's agreement score."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml
from generic_files import EXAMPLES, ROOT

from porter.pipeline import prepare
from porter.plan import build_plan


def _write(tmp_path, recipe: dict):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _porter(capsys, *args):
    from porter.cli.main import main

    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_the_readme_recipe_is_ten_lines_and_runs(tiny_cnn, tmp_path, capsys):
    shipped = EXAMPLES / "onnx_and_npz.yaml"
    text = shipped.read_text()
    assert len(text.splitlines()) == 10 and text in (ROOT / "README.md").read_text()
    shutil.copy(shipped, tmp_path / "recipe.yaml")
    shutil.copytree(tiny_cnn, tmp_path / "tiny_cnn")
    code, out, err = _porter(capsys, "run", tmp_path / "recipe.yaml")
    assert code == 0, err
    assert "budget ok: default: max_abs_error" in out
    report = json.loads((tmp_path / ".porter" / "my_model" / "report.json").read_text())
    (variant,) = report["variants"]
    assert variant["metrics"]["max_abs_error"] < 1e-5 and variant["metrics"]["top1_agreement/logits"] == 100.0


@pytest.mark.slow
def test_two_variants_score_agreement_without_a_reference_variant(tiny_cnn, tmp_path, capsys):
    recipe = _write(tmp_path, {
        "name": "my_onnx",
        "model": {"name": "onnx", "options": {"path": str(tiny_cnn / "model.onnx")}},
        "dataset": {"name": "tensors", "options": {"inputs": str(tiny_cnn / "inputs")}},
        "target": {"name": "onnxruntime"},
        "metrics": ["max_abs_error", "cosine", "top1_agreement"],
        "budgets": ["ort:max_abs_error <= 1e-4", "ort_int8:cosine >= 0.99"],
        "variants": {"ort": {}, "ort_int8": {"target": {"flags": {"quantize": "int8_dynamic"}}}},
    })
    code, out, err = _porter(capsys, "run", recipe)
    assert code == 0, err
    report = json.loads((tmp_path / ".porter" / "my_onnx" / "report.json").read_text())
    ort, int8 = report["variants"]
    assert ort["metrics"]["max_abs_error"] < 1e-5 and ort["metrics"]["cosine/logits"] > 0.999999
    assert ort["metrics"]["top1_agreement/logits"] == 100.0
    # int8 weights move the numbers, measurably but within the same classes here
    assert ort["metrics"]["max_abs_error"] < int8["metrics"]["max_abs_error"] < 0.5
    assert [s["stage"] for s in ort["stages"]] == ["preprocess", "export", "compile", "run", "score"]
    assert report["stage_counts"]["computed"] == 9  # preprocess, export, reference run, 2 x (compile, run, score)
    assert all(v["ok"] for v in report["verdicts"]) and len(report["verdicts"]) == 2
    assert "max_abs_error/logits" in out


@pytest.mark.slow
def test_a_budget_on_agreement_breaks_with_exit_code_3(tiny_cnn, tmp_path, capsys):
    recipe = _write(tmp_path, {
        "name": "tight",
        "model": {"name": "onnx", "options": {"path": str(tiny_cnn / "model.onnx")}},
        "dataset": {"name": "tensors", "options": {"inputs": str(tiny_cnn / "inputs"),
                                                   "references": str(tiny_cnn / "references")}},
        "target": {"name": "onnxruntime", "flags": {"quantize": "int8_dynamic"}},
        "budgets": ["max_abs_error <= 1e-7"],
        "variants": {"int8": {}},
    })
    code, out, err = _porter(capsys, "run", recipe)
    assert code == 3
    assert "BUDGET BROKEN: int8: max_abs_error" in out + err


def test_random_inputs_are_labelled_in_the_table_and_report(tiny_cnn, tmp_path, capsys):
    recipe = _write(tmp_path, {
        "name": "random",
        "model": {"name": "onnx", "options": {"path": str(tiny_cnn / "model.onnx")}},
        "dataset": {"name": "tensors", "options": {"random_samples": 3}},
        "target": {"name": "onnxruntime"},
        "metrics": ["max_abs_error"],
        "variants": {"ref": {"reference": True}, "ort": {}},
    })
    code, out, err = _porter(capsys, "run", recipe, "--out", tmp_path / "out")
    assert code == 0, err
    assert "ort: random inputs drawn from the model's input specs" in out
    report = json.loads((tmp_path / ".porter" / "random" / "report.json").read_text())
    assert all("accuracy figures do not" in v["details"]["random_inputs"] for v in report["variants"])
    for name in ("report.md", "report.html"):
        assert "ort: random inputs drawn from the model" in (tmp_path / "out" / name).read_text()


def test_the_reference_run_is_one_node_shared_by_the_reference_variant_and_the_scores(tiny_cnn, tmp_path):
    recipe = _write(tmp_path, {
        "name": "plan",
        "model": {"name": "onnx", "options": {"path": str(tiny_cnn / "model.onnx")}},
        "dataset": {"name": "tensors", "options": {"inputs": str(tiny_cnn / "inputs")}},
        "target": {"name": "onnxruntime"},
        "variants": {"ref": {"reference": True}, "a": {}, "b": {"target": {"flags": {"warmup": 0}}}},
    })
    parsed, plugins = prepare(recipe)
    plan = build_plan(parsed, plugins)
    references = [n for n in plan.nodes.values() if n.stage == "run_reference"]
    assert len(references) == 1
    scores = [n for n in plan.nodes.values() if n.stage == "score"]
    assert len(scores) == 3 and all(n.inputs["reference"] == references[0].key for n in scores)
