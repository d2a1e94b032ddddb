"""recipes/precision_search.yaml: fp16 breaks the variant, the shipped keep-list (the search's answer) fixes it."""
from __future__ import annotations

import json
import shutil

import pytest
from precision_support import RECIPES


@pytest.mark.slow
def test_shipped_recipe_loses_accuracy_in_fp16_and_the_searched_keep_list_restores_it(fragile, tmp_path):
    folder = tmp_path / "recipes"
    folder.mkdir()
    for name in ("precision_search.yaml", "fragile_porter.py", "precision_search_keep_dtype.cfg"):
        shutil.copy(RECIPES / name, folder / name)
    recipe = folder / "precision_search.yaml"
    code, _, err = fragile.porter("run", recipe)
    assert code == 0, err  # allow_missing_tools: the ascend310 variant writes its bundle; the budget holds
    report = json.loads((tmp_path / ".porter" / "precision_search" / "report.json").read_text())
    rows = {v["name"]: v for v in report["variants"]}
    assert rows["fp16_preview"]["deltas"]["error_rate"] >= 10
    assert rows["fp16_kept"]["deltas"]["error_rate"] == 0
    assert "--keep_dtype=" in (tmp_path / ".porter" / "precision_search_bundle" / "run.sh").read_text()
    code, _, err = fragile.porter("precision-search", recipe, "--variant", "fp16_preview", "--budget",
                                    "delta_error_rate<=0")
    assert code == 0, err
    emitted = tmp_path / ".porter" / "precision_search" / "precision" / "fp16_preview" / "keep_dtype.cfg"
    assert emitted.read_text() == (RECIPES / "precision_search_keep_dtype.cfg").read_text()
