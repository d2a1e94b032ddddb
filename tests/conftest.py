"""Shared fixtures: a throw-away porter project (recipe + local plugin) run through the real CLI in-process."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

# librosa's numba cache must be writable wherever tests run (site-packages may not be)
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "porter-numba"))

CORE_DIR = Path(__file__).parent / "core"


class PorterProject:
    """A folder with the MLP test plugin, a trained checkpoint and recipes; runs ``porter`` in-process."""

    def __init__(self, root: Path, checkpoint: Path, capsys):
        self.root = root
        self.checkpoint = checkpoint
        self.capsys = capsys
        shutil.copy(CORE_DIR / "mlp_porter.py", root / "mlp_porter.py")

    def base_recipe(self, **overrides) -> dict:
        recipe = {
            "name": "mlp_demo",
            "plugins": ["mlp_porter"],
            "model": {"name": "mlp", "options": {"checkpoint": str(self.checkpoint), "hidden": 16}},
            "dataset": {"name": "blobs", "options": {"n": 30}},
            "target": {"name": "onnxruntime", "flags": {"warmup": 1}},
            "metrics": ["error_rate"],
            "variants": {"torch": {"reference": True}, "ort": {}},
        }
        recipe.update(overrides)
        return recipe

    def write_recipe(self, recipe: dict | str, name: str = "recipe.yaml") -> Path:
        path = self.root / name
        path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False))
        return path

    def porter(self, *args) -> tuple[int, str, str]:
        from porter.cli.main import main

        self.capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture(scope="session")
def mlp_checkpoint(tmp_path_factory) -> Path:
    import sys

    sys.path.insert(0, str(CORE_DIR))
    try:
        import mlp_porter
    finally:
        sys.path.remove(str(CORE_DIR))
    path = tmp_path_factory.mktemp("mlp") / "mlp.pt"
    mlp_porter.train_checkpoint(path)
    return path


@pytest.fixture
def porter_project(tmp_path, mlp_checkpoint, capsys) -> PorterProject:
    return PorterProject(tmp_path, mlp_checkpoint, capsys)
