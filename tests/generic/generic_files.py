"""Helpers for the generic model plugin's tests: the worked example's module, and .npz folders."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "recipes" / "examples"


def load_example_module():
    spec = importlib.util.spec_from_file_location("make_tiny_cnn", EXAMPLES / "make_tiny_cnn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_npz_folder(folder: Path, samples: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, arrays in enumerate(samples):
        np.savez(folder / f"s{index:02d}.npz", **arrays)
    return folder


def configs(plugins, kind: str, name: str, options: dict, export: dict | None = None):
    """A validated ModelConfig or DatasetConfig, defaults filled in, as a recipe would give the hooks."""
    from porter.options import validate_options
    from porter.specs import DatasetConfig, ModelConfig

    spec = plugins.registry.get(kind, name)
    opts = validate_options(options, spec.options, file="test", field="options", owner=name, base_dir=ROOT)
    if kind == "datasets":
        return DatasetConfig(name, opts)
    exp = validate_options(export or {}, spec.export_options, file="test", field="export", owner=name, base_dir=ROOT)
    return ModelConfig(name, opts, exp)
