"""A throw-away project around the fragile test model (fragile_porter.py), run through the real CLI."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from precision_support import PLUGIN


class FragileProject:
    def __init__(self, root: Path, capsys):
        self.root = root
        self.capsys = capsys
        shutil.copy(PLUGIN, root / "fragile_porter.py")

    def recipe(self, **variants) -> dict:
        return {
            "name": "fragile",
            "plugins": ["fragile_porter"],
            "model": {"name": "fragile"},
            "dataset": {"name": "fragile_points", "options": {"n": 40}},
            "target": {"name": "onnxruntime", "flags": {"warmup": 0}},
            "metrics": ["error_rate"],
            "variants": {"ref": {"reference": True}, **variants},
        }

    def write(self, recipe: dict, name: str = "recipe.yaml") -> Path:
        path = self.root / name
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        return path

    def porter(self, *args) -> tuple[int, str, str]:
        from porter.cli.main import main

        self.capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def debug_json(self, variant: str) -> dict:
        return json.loads((self.root / ".porter" / "fragile" / "debug" / variant / "divergence.json").read_text())


@pytest.fixture
def fragile(tmp_path, capsys) -> FragileProject:
    return FragileProject(tmp_path, capsys)

