"""The JSON codec for artifacts: typed dataclasses and paths to JSON-able data and back.

Paths under a base folder are stored relative to it, so a workspace can move; everything else round-trips by the
dataclass's own field types (a list read back into a ``tuple`` field becomes a tuple again).
"""
from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path
from typing import Any

from porter import artifacts as _artifacts

_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    _artifacts.OnnxModel, _artifacts.CompiledModel, _artifacts.InputSet, _artifacts.OutputSet,
    _artifacts.Metrics, _artifacts.TensorSpec, _artifacts.ParityCheck, _artifacts.PassRecord,
    _artifacts.Timing, _artifacts.SampleScore,
)}


def encode(obj: Any, base: Path | None = None) -> Any:
    """Dataclasses → JSON-able data; paths under ``base`` become relative so the directory can move."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {"__type__": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = encode(getattr(obj, f.name), base)
        return out
    if isinstance(obj, Path):
        if base is not None:
            try:
                return {"__path__": str(obj.resolve().relative_to(base.resolve())), "relative": True}
            except ValueError:
                pass
        return {"__path__": str(obj), "relative": False}
    if isinstance(obj, dict):
        return {str(k): encode(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [encode(v, base) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return str(obj)


def decode(data: Any, base: Path | None = None) -> Any:
    """The inverse of :func:`encode`; relative paths are resolved against ``base``."""
    if isinstance(data, dict):
        if "__path__" in data:
            p = Path(data["__path__"])
            return (base / p) if data.get("relative") and base is not None else p
        if "__type__" in data:
            cls = _TYPES.get(data["__type__"]) if isinstance(data["__type__"], str) else None
            if cls is None:
                raise ValueError(f"unknown artifact type {data['__type__']!r}")
            hints = typing.get_type_hints(cls)
            kwargs = {}
            for f in dataclasses.fields(cls):
                if f.name not in data:
                    continue
                value = decode(data[f.name], base)
                if isinstance(value, list) and "tuple" in str(hints.get(f.name, "")):
                    value = tuple(value)
                kwargs[f.name] = value
            try:
                return cls(**kwargs)
            except TypeError as exc:  # a required field missing, or one the type does not have
                raise ValueError(f"{cls.__name__}: {exc}") from None
        return {k: decode(v, base) for k, v in data.items()}
    if isinstance(data, list):
        return [decode(v, base) for v in data]
    return data


def decode_artifact(data: Any, base: Path | None = None) -> Any:
    """A stored ``artifact.json`` value back as the typed artifact it was; ValueError when it is not one (an
    unknown ``__type__``, a missing field, a path that is not a path), so the store can compute it again."""
    value = decode(data, base)
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        raise ValueError(f"expected a stored artifact, got {type(value).__name__}")
    hints = typing.get_type_hints(type(value))
    for f in dataclasses.fields(value):
        field_value = getattr(value, f.name)
        if "Path" in str(hints.get(f.name, "")) and not isinstance(field_value, Path) \
                and not (field_value is None and "None" in str(hints.get(f.name, ""))):
            raise ValueError(f"{type(value).__name__}.{f.name} is {field_value!r}, not a path")
    return value


def canonical_json(data: Any) -> str:
    """One spelling of ``data``: sorted keys, no spaces; what cache keys are hashed from."""
    return json.dumps(encode(data), sort_keys=True, separators=(",", ":"), default=str)
