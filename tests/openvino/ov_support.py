"""Helpers for the openvino tests: a tiny random DeepSpeech and three real (espeak-ng) utterances of different
lengths shared by a module (the ds_project fixture), a recipe over them and a runner for it through the real CLI.
Not a conftest.py: other test folders import their own conftest by name."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent.parent / "deepspeech"))

pytest.importorskip("openvino")

from pipeline_support import tiny_checkpoint, write_an4_forms


@pytest.fixture(scope="module")
def ds_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("ov")
    write_an4_forms(root / "data")
    tiny_checkpoint(root / "tiny.ckpt", hidden=32, layers=2)
    return root

def recipe(variants: dict, **extra) -> dict:
    base = {
        "name": "ds_openvino",
        "model": {"name": "deepspeech", "options": {"checkpoint": "tiny.ckpt"}, "export": {"dynamic": True}},
        "dataset": {"name": "an4", "options": {"manifest": "data/an4_test_manifest.json"}},
        "target": {"name": "openvino", "flags": {"warmup": 1}},
        "metrics": ["wer", "cer"],
        "variants": variants,
    }
    base.update(extra)
    return base


def run_recipe(root: Path, capsys, data: dict, *, name: str = "recipe.yaml", workspace: str = "ws",
               expect: int = 0, args=()) -> tuple[dict, str]:
    from porter.cli.main import main

    path = root / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    capsys.readouterr()
    code = main(["run", str(path), "--workspace", str(root / workspace), "--quiet", *args])
    out, err = capsys.readouterr()
    assert code == expect, err + out
    report = root / workspace / "report.json"
    return (json.loads(report.read_text()) if report.exists() else {}), out + err


def variants_of(report: dict) -> dict:
    return {v["name"]: v for v in report["variants"]}


def native_bf16() -> bool:
    """Whether this machine's CPU computes bf16 (OPTIMIZATION_CAPABILITIES has BF16): AVX512-BF16 or AMX Xeons
    do, many other x86 CPUs do not, and there porter's bf16 variants run f32 and say so."""
    import os

    from porter_openvino.capabilities import OVERRIDE_ENV, detect

    saved = os.environ.pop(OVERRIDE_ENV, None)
    try:
        return detect().supports("bf16")
    finally:
        if saved is not None:
            os.environ[OVERRIDE_ENV] = saved

