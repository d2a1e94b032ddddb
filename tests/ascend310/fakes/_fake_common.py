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


def infer_files(model_path: str, input_dirs: list[str], dym_batch, dym_dims, dym_hw, names=None):
    """Yield (stem, input file paths, outputs, milliseconds) for every sample file: ``names`` in the first
    folder, in that order (default: its .bin files in natural name order, as ais_bench sorts them)."""
    model, session = session_for(model_path)
    specs = input_specs(model)
    if len(input_dirs) != len(specs):
        print(f"model has {len(specs)} inputs but {len(input_dirs)} input folders were given", file=sys.stderr)
        sys.exit(2)
    if names is None:
        names = sorted((p.name for p in Path(input_dirs[0]).iterdir() if p.suffix == ".bin"), key=natural_key)
    for file_name in names:
        paths = [Path(d) / file_name for d in input_dirs]
        feed = {name: read_input(path, name, dims, dtype, dym_batch, dym_dims, dym_hw)
                for (name, dims, dtype), path in zip(specs, paths)}
        started = time.perf_counter()
        outputs = session.run(None, feed)
        yield Path(file_name).stem, paths, outputs, (time.perf_counter() - started) * 1000.0


DYNAMIC_OPTIONS = ("dynamic_batch_size", "dynamic_image_size", "dynamic_dims")
PROFILES_KEY = "fake_atc_profiles"  # metadata the fake .om carries: atc's shapes and dynamic profiles


def parse_options(argv: list[str]) -> dict[str, str] | str:
    """atc/aoe arguments as a dict, or the error text for an argument not of the --name=value form."""
    options = {}
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            return f"E10001: takes --name=value arguments, got {arg!r}"
        name, _, value = arg[2:].partition("=")
        options[name] = value
    return options


def dynamic_problem(options: dict[str, str]) -> str | None:
    """atc and aoe (their --input_shape and dynamic_* pages): -1 in --input_shape needs exactly one dynamic_*
    option, which takes 2 to 100 profiles; a dynamic_* option needs -1 dims."""
    shapes = parse_dym_dims(options.get("input_shape"))
    wildcards = sum(d == -1 for dims in shapes.values() for d in dims)
    chosen = [name for name in DYNAMIC_OPTIONS if name in options]
    if len(chosen) > 1:
        return f"E10001: {', '.join(chosen)} are mutually exclusive"
    if wildcards and not chosen:
        return f"E10001: --input_shape {options.get('input_shape')} has -1 dims but no dynamic_* option is set"
    if chosen and not wildcards:
        return f"E10001: --{chosen[0]} needs -1 dims in --input_shape"
    if chosen and not 2 <= len(options[chosen[0]].split(";" if chosen[0] != "dynamic_batch_size" else ",")) <= 100:
        return f"E10036: --{chosen[0]} has a profile count outside (1, 100]"
    return None


def profile_shapes(info: dict) -> list[dict[str, list[int]]]:
    """Every profile's concrete input shapes, from the metadata fake_atc wrote."""
    shapes = info["input_shape"]
    option, profiles = info.get("option"), info.get("profiles") or []
    if not option:
        return [shapes]
    result = []
    for profile in profiles:
        values = iter(profile)
        concrete = {}
        for name, dims in shapes.items():
            if option == "dynamic_batch_size":
                concrete[name] = [profile[0] if (i == 0 and d == -1) else d for i, d in enumerate(dims)]
            elif option == "dynamic_image_size":
                hw = iter(profile * len(dims))
                concrete[name] = [next(hw) if d == -1 else d for d in dims]
            else:
                concrete[name] = [next(values) if d == -1 else d for d in dims]
        result.append(concrete)
    return result


def max_output_sizes(model, session, info: dict) -> list[int] | None:
    """What aclmdlGetOutputSizeByIndex gives: each output's element count at the largest profile (None for a
    model fake_atc did not write)."""
    if not info.get("input_shape"):
        return None
    specs = input_specs(model)
    sizes = None
    for shapes in profile_shapes(info):
        feed = {name: np.ones(shapes[name], dtype) for name, _, dtype in specs}
        counts = [int(np.asarray(o).size) for o in session.run(None, feed)]
        sizes = counts if sizes is None else [max(a, b) for a, b in zip(sizes, counts)]
    return sizes or []


def profile_info(model) -> dict:
    for prop in model.metadata_props:
        if prop.key == PROFILES_KEY:
            return json.loads(prop.value)
    return {"input_shape": {}, "option": None, "profiles": []}


def filler(dtype: np.dtype):
    """What lies in a device buffer past the output that ran: a value no real output holds (NaN, the maximum)."""
    return np.nan if dtype.kind == "f" else np.iinfo(dtype).max
