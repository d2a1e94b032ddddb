"""A self-contained folder that carries compile and run work to an Ascend host, and brings the outputs back:
its layout, its entries and manifest.json (run.sh is written by bundle_script.py, `porter score` is
bundle_score.py).

Layout (every path inside the bundle; names that would leave it are refused)::

    manifest.json                      what is in the bundle (format version, models, runs, input sets)
    run.sh                             the exact atc, aoe, msame / ais_bench commands, for a human to run
    entries/models/<model>.json        one record per compiled model (run.sh and manifest are built from these)
    entries/runs/<run>.json            one record per (model, input set, runner settings)
    models/<model>/<name>.onnx         the graph-fixed ONNX (and files/ for atc's file options)
    models/<model>/<name>.om           written by atc on the host (or copied here when compiled locally)
    inputs/<set>/<input>/data<i>.bin   msame-layout inputs, shared by every run of the same input set
    outputs/<run>/                     where msame / ais_bench write, plus their printed log

Several variants (and several processes) add entries to one bundle: each entry is its own file, and
manifest.json and run.sh are regenerated from all of them under a lock and renamed into place.
"""
from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from porter.api import (
    InputError,
    InputSet,
    StageContext,
    TensorSpec,
    atomic_copy,
    atomic_write_text,
    file_digest,
    file_lock,
)
from porter_ascend310.bundle_script import build_script
from porter_ascend310.runners import RunLayout, runner_for, write_input_files

FORMAT = "porter-ascend310-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RUN_SCRIPT = "run.sh"
SAFE_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,120}$")


class BundleError(InputError):
    """A bundle folder that cannot be used: unreadable manifest, a path that escapes it."""


def inside(bundle: Path, relative: str | Path) -> Path:
    """``bundle/relative``, refusing absolute paths and anything that resolves outside the bundle."""
    rel = Path(relative)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise BundleError(f"refusing path {str(relative)!r}: bundle paths must be relative and stay inside "
                          f"{bundle}")
    root = bundle.resolve()
    target = (root / rel).resolve()
    if target != root and root not in target.parents:
        raise BundleError(f"refusing path {str(relative)!r}: it resolves to {target}, outside {root}")
    return root / rel


def check_key(key: str, what: str) -> str:
    if not SAFE_KEY.match(key) or ".." in key:
        raise BundleError(f"{what} name {key!r} is not a plain name (letters, digits, '_', '-', '.')")
    return key


def _digest(*parts: bytes | str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\0")
    return sha.hexdigest()


def _copy_atomic(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` unless an identical file is already there."""
    if dest.is_file() and dest.stat().st_size == source.stat().st_size and file_digest(dest) == file_digest(source):
        return
    atomic_copy(source, dest)


@contextmanager
def locked(bundle: Path) -> Iterator[None]:
    bundle.mkdir(parents=True, exist_ok=True)
    with file_lock(bundle / ".lock"):
        yield


def run_context(context: StageContext | None) -> dict[str, str | None]:
    """Recipe and workspace of the `porter run` writing this bundle, for `porter score`."""
    if context is None:
        return {"recipe": None, "workspace": None}
    return {"recipe": str(Path(context.recipe_path).resolve()) if context.recipe_path else None,
            "workspace": str(Path(context.workspace).resolve())}


# ---------------------------------------------------------------------------------------------------------
# Entries
# ---------------------------------------------------------------------------------------------------------


def specs_json(specs: Sequence[TensorSpec]) -> list[dict]:
    return [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in specs]


@dataclass(frozen=True)
class ModelEntry:
    key: str
    onnx: str  # bundle-relative
    om: str  # bundle-relative; atc writes it (om_ready False) or it was copied in (om_ready True)
    om_ready: bool
    atc_argv: list[str] = field(default_factory=list)
    aoe_argvs: list[list[str]] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"key": self.key, "onnx": self.onnx, "om": self.om, "om_ready": self.om_ready,
                "atc_argv": self.atc_argv, "aoe_argvs": self.aoe_argvs, **self.details}


def model_key(name: str, *parts: bytes | str) -> str:
    return check_key(f"{name}-{_digest(*parts)[:12]}", "model")


def add_model(bundle: Path, key: str, onnx_source: Path, *, om_name: str, plan, details: Mapping[str, Any],
              om_file: Path | None = None, context: StageContext | None = None) -> ModelEntry:
    """Put one model into the bundle.

    ``plan(onnx_rel, output_stem_rel, path_text)`` returns the atc argv and aoe argvs with bundle-relative
    paths; ``path_text`` copies a file option's file into the model folder. With ``om_file`` (compiled here,
    runner missing) the .om is copied in and no atc command is written.
    """
    bundle = Path(bundle)
    check_key(key, "model")
    check_key(om_name, "om_name")
    folder = f"models/{key}"
    onnx_rel = f"{folder}/model.onnx"
    om_rel = f"{folder}/{om_name}.om"
    _copy_atomic(onnx_source, inside(bundle, onnx_rel))

    def path_text(path: Path) -> str:
        rel = f"{folder}/files/{path.name}"
        if path.is_dir():  # a folder option (mdl_bank_path): its files, each copied as one file is
            for file in sorted(f for f in path.rglob("*") if f.is_file()):
                _copy_atomic(file, inside(bundle, f"{rel}/{file.relative_to(path).as_posix()}"))
        else:
            _copy_atomic(path, inside(bundle, rel))
        return rel

    atc_argv, aoe_argvs = plan(onnx_rel, f"{folder}/{om_name}", path_text)
    if om_file is not None:
        _copy_atomic(om_file, inside(bundle, om_rel))
    entry = ModelEntry(key=key, onnx=onnx_rel, om=om_rel, om_ready=om_file is not None,
                       atc_argv=[] if om_file is not None else list(atc_argv),
                       aoe_argvs=[] if om_file is not None else [list(a) for a in aoe_argvs],
                       details={**dict(details), **run_context(context)})
    with locked(bundle):
        atomic_write_text(inside(bundle, f"entries/models/{key}.json"), json.dumps(entry.to_json(), indent=1))
        regenerate(bundle)
    return entry


def input_set_key(inputs: InputSet, layout: RunLayout) -> str:
    """Content key of an input set as fed (sample files plus the shapes and dtypes they are padded to)."""
    sha = hashlib.sha256()
    sha.update(json.dumps({"inputs": specs_json(layout.inputs), "dirs": list(layout.input_dirs),
                           "stems": list(layout.stems)}, sort_keys=True).encode())
    for index in range(len(inputs)):
        sha.update(file_digest(inputs.sample_file(index)).encode())
    return f"set-{sha.hexdigest()[:12]}"


def run_key(model: str, input_set: str, layout: RunLayout) -> str:
    layout_json = json.dumps(layout.to_json(), sort_keys=True)
    return check_key(f"{model}_{_digest(input_set, layout_json)[:10]}", "run")


def ensure_inputs(bundle: Path, key: str, inputs: InputSet, layout: RunLayout) -> str:
    """Write an input set's msame-layout files once; a marker written last says the set is complete."""
    folder = f"inputs/{check_key(key, 'input set')}"
    marker = inside(bundle, f"{folder}/complete.json")
    if not marker.is_file():
        write_input_files(inputs, layout, inside(bundle, folder))
        atomic_write_text(marker, json.dumps({"samples": list(inputs.sample_ids),
                                          "inputs": specs_json(layout.inputs)}, indent=1))
    return folder


def run_output_dir(bundle: Path, key: str) -> Path:
    return inside(bundle, f"outputs/{check_key(key, 'run')}")


def add_run(bundle: Path, model: ModelEntry, inputs: InputSet, layout: RunLayout, *,
            details: Mapping[str, Any] | None = None, context: StageContext | None = None) -> str:
    """Record one run (inputs written, command line added to run.sh); returns its key."""
    bundle = Path(bundle)
    set_key = input_set_key(inputs, layout)
    key = run_key(model.key, set_key, layout)
    folder = ensure_inputs(bundle, set_key, inputs, layout)
    output = f"outputs/{key}"
    runner = runner_for(layout)
    input_dirs = [f"{folder}/{d}" for d in layout.input_dirs]
    # the bundle's own paths, as the runner will see them from the bundle folder (ais_bench's character rules)
    argv = runner.argv(runner.script_default.split(), model.om, input_dirs, output, layout, cwd=bundle.resolve())
    entry = {"key": key, "model": model.key, "input_set": set_key, "output_dir": output, "argv": argv,
             "tool": runner.name,
             "log": f"{output}/{runner.log_name()}", "sample_ids": list(inputs.sample_ids),
             "layout": layout.to_json(), **dict(details or {}), **run_context(context)}
    with locked(bundle):
        atomic_write_text(inside(bundle, f"entries/runs/{key}.json"), json.dumps(entry, indent=1))
        regenerate(bundle)
    return key


def load_run_layout(bundle: Path, key: str) -> RunLayout:
    entry = json.loads(inside(bundle, f"entries/runs/{check_key(key, 'run')}.json").read_text())
    return RunLayout.from_json(entry["layout"])


# ---------------------------------------------------------------------------------------------------------
# manifest.json and run.sh, rebuilt from every entry
# ---------------------------------------------------------------------------------------------------------


def _entries(bundle: Path, kind: str) -> list[dict]:
    folder = bundle / "entries" / kind
    entries = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            entries.append(json.loads(path.read_text()))
        except json.JSONDecodeError as error:
            raise BundleError(f"{path}: not JSON ({error})") from None
    return entries


def _common(values: Sequence[str | None]) -> str | None:
    known = [v for v in values if v]
    return known[-1] if known else None


def build_manifest(bundle: Path) -> dict:
    models = _entries(bundle, "models")
    runs = _entries(bundle, "runs")
    sets = sorted({r["input_set"] for r in runs})
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "recipe": _common([e.get("recipe") for e in models + runs]),
        "workspace": _common([e.get("workspace") for e in models + runs]),
        "models": models,
        "runs": runs,
        "input_sets": [{"key": s, "dir": f"inputs/{s}"} for s in sets],
    }


def regenerate(bundle: Path) -> None:
    """Rewrite manifest.json and run.sh from every entry (call with the bundle lock held)."""
    manifest = build_manifest(bundle)
    atomic_write_text(bundle / MANIFEST, json.dumps(manifest, indent=1))
    atomic_write_text(bundle / RUN_SCRIPT, build_script(manifest), mode=0o755)


def read_manifest(bundle: Path) -> dict:
    path = Path(bundle) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{path}: missing; expected a bundle written by `porter run --bundle`") from None
    except json.JSONDecodeError as error:
        raise BundleError(f"{path}: not JSON ({error})") from None
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: format is {manifest.get('format')!r}; expected {FORMAT!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(f"{path}: format_version is {manifest.get('format_version')!r}; this porter reads "
                          f"{FORMAT_VERSION}")
    return manifest


__all__ = [
    "FORMAT", "FORMAT_VERSION", "ModelEntry", "BundleError", "inside", "check_key", "model_key", "add_model",
    "add_run", "input_set_key", "run_key", "run_output_dir", "load_run_layout", "build_manifest",
    "regenerate", "read_manifest", "run_context",
]
