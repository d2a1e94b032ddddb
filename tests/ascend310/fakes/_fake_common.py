"""Shared parts of the fake Ascend tools (TEST DOUBLES, never real results).

The fake "om" that fake_atc writes is the ONNX model itself with atc's static input shapes filled in, so the
fake runners can execute it with ONNX Runtime and write files in the layouts the real tools use.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ARGV_LOG_VARIABLE = "FAKE_ASCEND_ARGV_LOG"  # JSON list of {"tool", "argv", "cwd"} records, appended
FAIL_VARIABLE = "FAKE_ASCEND_FAIL"  # comma list of tool names that must fail


def record(tool: str, argv: list[str]) -> None:
    log = os.environ.get(ARGV_LOG_VARIABLE)
    if not log:
        return
    path = Path(log)
    calls = json.loads(path.read_text()) if path.is_file() else []
    calls.append({"tool": tool, "argv": list(argv), "cwd": os.getcwd()})
    path.write_text(json.dumps(calls, indent=1))


def maybe_fail(tool: str) -> None:
    if tool in os.environ.get(FAIL_VARIABLE, "").split(","):
        for line in range(30):
            print(f"[{tool} fake] noise line {line}", file=sys.stderr)
        print(f"E19999: {tool} fake failure requested by {FAIL_VARIABLE}", file=sys.stderr)
        sys.exit(3)


def natural_key(name: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def session_for(model_path: str):
    import onnx
    import onnxruntime as ort

    model = onnx.load(model_path)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return model, session


def input_specs(model) -> list[tuple[str, list, np.dtype]]:
    import onnx

    specs = []
    initializers = {i.name for i in model.graph.initializer}
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        specs.append((value.name, dims, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type))))
    return specs


def parse_dym_dims(text: str | None) -> dict[str, list[int]]:
    shapes = {}
    for part in (text or "").split(";"):
        if part:
            name, _, dims = part.rpartition(":")
            shapes[name] = [int(d) for d in dims.split(",")]
    return shapes


def read_input(path: Path, name: str, dims: list, dtype: np.dtype, dym_batch: int | None,
               dym_dims: dict[str, list[int]], dym_hw: list[int] | None) -> np.ndarray:
    flat = np.fromfile(path, dtype=dtype)
    if name in dym_dims:
        shape = dym_dims[name]
    else:
        shape = list(dims)
        if shape and shape[0] is None and dym_batch:
            shape[0] = dym_batch
        if dym_hw and len(shape) == 4 and shape[2] is None and shape[3] is None:
            shape[2], shape[3] = dym_hw
        unknown = [i for i, d in enumerate(shape) if d is None]
        if len(unknown) == 1:
            known = int(np.prod([d for d in shape if d is not None]))
            shape[unknown[0]] = flat.size // max(known, 1)
        elif unknown:
            sys.exit(f"cannot tell the shape of input {name} ({dims}) from {path}")
    if int(np.prod(shape)) != flat.size:
        print(f"input {name}: {path} holds {flat.size} values, model expects {shape}", file=sys.stderr)
        sys.exit(2)
    return flat.reshape(shape)


def infer_files(model_path: str, input_dirs: list[str], dym_batch, dym_dims, dym_hw):
    """Yield (stem, input file paths, outputs, milliseconds) for every sample file, in natural name order."""
    model, session = session_for(model_path)
    specs = input_specs(model)
    if len(input_dirs) != len(specs):
        print(f"model has {len(specs)} inputs but {len(input_dirs)} input folders were given", file=sys.stderr)
        sys.exit(2)
    names = sorted((p.name for p in Path(input_dirs[0]).iterdir() if p.suffix == ".bin"), key=natural_key)
    for file_name in names:
        paths = [Path(d) / file_name for d in input_dirs]
        feed = {name: read_input(path, name, dims, dtype, dym_batch, dym_dims, dym_hw)
                for (name, dims, dtype), path in zip(specs, paths)}
        started = time.perf_counter()
        outputs = session.run(None, feed)
        yield Path(file_name).stem, paths, outputs, (time.perf_counter() - started) * 1000.0
