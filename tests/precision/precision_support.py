"""Shared by the precision tests (a module name of its own: every test folder has a conftest.py)."""
from __future__ import annotations

import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
PLUGIN = RECIPES / "fragile_porter.py"  # shipped with recipes/precision_search.yaml
if str(RECIPES) not in sys.path:  # so the tests can import the plugin's model builder
    sys.path.append(str(RECIPES))

FP16 = {"graph_fix": ["split_and_rename", {"name": "emulate_fp16", "tolerance": 1.0}]}

from fragile_porter import build_model  # noqa: E402 - importable once RECIPES is on the path

__all__ = ["FP16", "PLUGIN", "RECIPES", "build_model"]
