"""The numeric gate through real recipes: a graph pass that breaks the model fails its pass check, naming the
pass, the output and the problem, whatever its tolerance; the same workspace then runs a good recipe."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from porter.errors import EXIT_FAILURE

HERE = Path(__file__).parent


def _report(project) -> dict:
    return json.loads((project.root / ".porter" / "mlp_demo" / "report.json").read_text())


@pytest.fixture
def project(porter_project):
    shutil.copy(HERE / "broken_pass_porter.py", porter_project.root / "broken_pass_porter.py")
    return porter_project


@pytest.mark.parametrize("breaks, problem", [
    ("nan", "output 'probs': NaN/Inf where the reference is finite"),
    ("inf", "output 'probs': NaN/Inf where the reference is finite"),
    ("rename", "output 'probs': missing from the new outputs"),
    ("fp16", "output 'probs': dtype float32 vs float16"),
    ("shape", "output 'probs': shape (1, 3) vs (1, 6)"),
])
@pytest.mark.slow
def test_a_broken_pass_fails_its_check_naming_pass_output_and_problem(project, breaks, problem):
    recipe = project.base_recipe(plugins=["mlp_porter", "broken_pass_porter"],
                                 graph_fix=[{"name": "broken_output", "options": {"breaks": breaks}}])
    code, out, err = project.porter("run", project.write_recipe(recipe), "--quiet")
    assert code == EXIT_FAILURE, out + err
    assert "Traceback" not in out + err
    report = _report(project)
    torch_variant, ort = report["variants"]
    assert torch_variant["status"] == "ok" and ort["status"] == "failed"
    assert "stage 'graph_fix' failed" in ort["message"]
    assert "pass 'broken_output' broke its parity check" in ort["message"]
    assert problem in ort["message"], ort["message"]
    assert problem in " ".join((out + err).split())  # the user sees it (the table wraps long lines)
    fix_dir = project.root / ".porter" / "mlp_demo" / "artifacts" / "graph_fix"
    assert not fix_dir.exists() or not [p for p in fix_dir.iterdir() if (p / "artifact.json").exists()]
    # the workspace is still good for a recipe without the broken pass
    code, out, err = project.porter("run", project.write_recipe(project.base_recipe()), "--quiet")
    assert code == 0, out + err


def test_export_of_an_all_nan_checkpoint_fails_its_parity_check(project, tmp_path):
    weights = torch.load(project.checkpoint, weights_only=True)
    nan_checkpoint = tmp_path / "nan.pt"
    torch.save({k: torch.full_like(v, math.nan) for k, v in weights.items()}, nan_checkpoint)
    recipe = project.base_recipe()
    recipe["model"]["options"]["checkpoint"] = str(nan_checkpoint)
    code, out, err = project.porter("run", project.write_recipe(recipe), "--quiet")
    assert code == EXIT_FAILURE, out + err
    ort = _report(project)["variants"][1]
    assert "export parity export vs torch: output 'probs': NaN in the reference and the new outputs alike" \
        in ort["message"]


def test_a_good_pass_records_its_numbers(project):
    recipe = project.base_recipe(graph_fix=["cleanup"])
    code, out, err = project.porter("run", project.write_recipe(recipe), "--quiet")
    assert code == 0, out + err
    check = _report(project)["variants"][1]["pass_records"][0]["check"]
    assert check["problem"] == "" and np.isfinite(check["max_abs_diff"])
