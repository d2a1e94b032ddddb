"""msame and ais_bench: their input layout, their argument lists, and reading back what they wrote.

Input layout (both tools): one folder per model input, holding identically named raw files ``data1.bin``,
``data2.bin``, ... (sample i of the InputSet is ``data{i+1}``), each padded with zeros to the compiled static
shape. The tools pair files by name across the folders and run one inference per file.

Outputs: msame writes a new timestamp-named folder under ``--output`` holding ``data1_output_0.bin``;
ais_bench writes ``<output>/<output_dirname>/data1_0.npy`` and ``<output>/<output_dirname>_summary.json``.
BIN and TXT files carry no shape, so they are reshaped with the compiled model's output shapes and dtypes.
Timing: msame prints "Inference time: X ms" per file; ais_bench's summary JSON lists NPU compute times.
What differs between the two tools lives in one class each (msame.py, ais_bench.py); ``RUNNERS`` maps a
``runner`` flag to its class.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from porter.api import CompiledModel, InputError, InputSet, Option, TensorSpec, atomic_write_bytes
from porter_ascend310.ais_bench import DIRNAME, AisBench, parse_ais_bench_summary, summary_path
from porter_ascend310.msame import Msame, parse_msame_log
from porter_ascend310.runner_base import OutputFormatError, Runner, RunnerInputError, RunResult

RUNNERS: dict[str, Runner] = {runner.name: runner for runner in (Msame(), AisBench())}
AIS_BENCH_DIRNAME = DIRNAME
FLAG_FIELD = "target.flags"

RUN_FLAGS: dict[str, Option] = {
    "runner": Option("str", default="msame", choices=tuple(RUNNERS), help="tool that runs the .om over the inputs"),
    "outfmt": Option("str", default="BIN", choices=("BIN", "TXT", "NPY"),
                     help="output file format (msame: BIN|TXT; ais_bench: BIN|NPY|TXT); BIN and NPY are exact"),
    "device": Option("int", min=0, max=1023, help="NPU device id"),
    "warmup_count": Option("int", min=0, max=100_000,
                           help="ais_bench warm-up inferences before timing (its default is 1)"),
    "loop": Option("int", min=1, max=1_000_000, help="ais_bench: run the input set this many times"),
}


def _bad(name: str, message: str) -> InputError:
    return InputError(message, field=f"{FLAG_FIELD}.{name}")


@dataclass(frozen=True)
class RunSettings:
    runner: str = "msame"
    outfmt: str = "BIN"
    device: int | None = None
    warmup_count: int | None = None
    loop: int | None = None

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any]) -> "RunSettings":
        runner = flags.get("runner") or "msame"
        if runner not in RUNNERS:
            raise _bad("runner", f"is {runner!r}; expected one of {', '.join(RUNNERS)}")
        outfmt = str(flags.get("outfmt") or "BIN").upper()
        numbers = {}
        for name in ("device", "warmup_count", "loop"):
            value = flags.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise _bad(name, f"is {value!r}; expected a non-negative integer")
            numbers[name] = value
        RUNNERS[runner].check_settings(outfmt, numbers)
        return cls(runner=runner, outfmt=outfmt, **numbers)


# ---------------------------------------------------------------------------------------------------------
# The layout one run uses: shapes fed, files named, outputs expected. Recorded in a bundle's manifest.
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLayout:
    runner: str
    outfmt: str
    stems: tuple[str, ...]  # data1, data2, ... in InputSet order
    input_dirs: tuple[str, ...]  # folder names, one per model input, in model input order
    inputs: tuple[TensorSpec, ...]  # the shapes fed (static, padded to)
    outputs: tuple[TensorSpec, ...]  # shapes and dtypes the files are read with
    dynamic_args: tuple[str, ...] = ()  # --dymBatch 1 / --dymDims ... / --dymHW ...
    device: int | None = None
    warmup_count: int | None = None
    loop: int | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["inputs"] = [_spec_json(s) for s in self.inputs]
        data["outputs"] = [_spec_json(s) for s in self.outputs]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "RunLayout":
        values = dict(data)
        for key in ("stems", "input_dirs", "dynamic_args"):
            values[key] = tuple(values.get(key) or ())
        values["inputs"] = tuple(_spec_from_json(s) for s in data["inputs"])
        values["outputs"] = tuple(_spec_from_json(s) for s in data["outputs"])
        return cls(**values)


def _spec_json(spec: TensorSpec) -> dict:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": spec.dtype}


def _spec_from_json(data: Mapping[str, Any]) -> TensorSpec:
    return TensorSpec(name=data["name"], shape=tuple(data["shape"]), dtype=data["dtype"])


def input_dir_names(names: Sequence[str]) -> tuple[str, ...]:
    """One safe, distinct folder name per model input (ONNX names may hold ':', '/', '.')."""
    folders: list[str] = []
    for name in names:
        folder = re.sub(r"[^A-Za-z0-9_-]", "_", name).strip("_") or "input"
        while folder in folders:
            folder += "_"
        folders.append(folder)
    return tuple(folders)


def _sample_dims(inputs: InputSet, names: Sequence[str]) -> dict[str, list[tuple[int, ...]]]:
    dims: dict[str, list[tuple[int, ...]]] = {name: [] for name in names}
    for index in range(len(inputs)):
        sample = inputs.load(index)
        for name in names:
            if name not in sample:
                raise InputError(f"sample {inputs.sample_ids[index]!r} has no tensor {name!r} (it has "
                                 f"{', '.join(sample)}); the compiled model needs {', '.join(names)}",
                                 file=inputs.path)
            dims[name].append(tuple(np.shape(sample[name])))
    return dims


def choose_run_shapes(compiled: CompiledModel, inputs: InputSet) -> tuple[dict[str, tuple[int, ...]], tuple[str, ...]]:
    """The static shape each input is padded to, and the dynamic-profile arguments the runner needs.

    The compiled shapes come from atc's --input_shape (compiled.details["input_shapes"], -1 where dynamic);
    for a dynamic model the smallest profile that holds every sample is chosen.
    """
    atc_shapes: dict[str, list[int]] = {k: list(v) for k, v in compiled.details["input_shapes"].items()}
    dynamic = compiled.details.get("dynamic")
    seen = _sample_dims(inputs, list(atc_shapes))
    for name, shapes in seen.items():
        for index, shape in enumerate(shapes):
            if len(shape) != len(atc_shapes[name]):
                raise InputError(f"sample {inputs.sample_ids[index]!r} tensor {name!r} has shape {shape}; the "
                                 f"compiled model takes rank {len(atc_shapes[name])} ({atc_shapes[name]})",
                                 file=inputs.path)
            if shape and shape[0] != 1:
                raise InputError(f"sample {inputs.sample_ids[index]!r} tensor {name!r} has batch {shape[0]}; "
                                 "msame/ais_bench inputs are fed one sample (batch 1) per file", file=inputs.path)
    largest = {name: [max(s[axis] for s in shapes) if shapes else 1 for axis in range(len(atc_shapes[name]))]
               for name, shapes in seen.items()}
    args: list[str] = []
    if dynamic:
        option, profiles = dynamic["option"], [list(p) for p in dynamic["profiles"]]
        wildcards = [(name, axis) for name, dims in atc_shapes.items() for axis, d in enumerate(dims) if d == -1]
        if option == "dynamic_batch_size":
            if [1] not in profiles:
                raise InputError(f"dynamic_batch_size profiles {profiles} lack 1; the runners feed batch 1",
                                 field=f"{FLAG_FIELD}.dynamic_batch_size")
            chosen = [1] * len(wildcards)
            args = ["--dymBatch", "1"]
        else:
            needed = [largest[name][axis] for name, axis in wildcards]
            if option == "dynamic_image_size":
                # one H,W pair for the whole model: every input's -1 pair takes the same profile
                needed = [max(needed[0::2]), max(needed[1::2])]
            fitting = [p for p in profiles if all(v >= n for v, n in zip(p, needed))]
            if not fitting:
                raise InputError(f"no {option} profile holds the largest sample (needs {needed}); profiles are "
                                 f"{profiles}", field=f"{FLAG_FIELD}.{option}")
            best = min(fitting, key=lambda p: (math.prod(p), p))
            chosen = best * (len(wildcards) // 2) if option == "dynamic_image_size" else best
            if option == "dynamic_image_size":
                args = ["--dymHW", f"{best[0]},{best[1]}"]
        for (name, axis), value in zip(wildcards, chosen):
            atc_shapes[name][axis] = value
        if option == "dynamic_dims":
            args = ["--dymDims", ";".join(f"{n}:{','.join(map(str, d))}" for n, d in atc_shapes.items())]
    for name, dims in atc_shapes.items():
        for axis, (limit, need) in enumerate(zip(dims, largest[name])):
            if need > limit:
                raise InputError(f"tensor {name!r} dim {axis} reaches {need} in the input set but the compiled "
                                 f"model takes at most {limit} (shape {dims}); compile with a larger static "
                                 "shape or a dynamic_* profile", file=inputs.path)
    return {name: tuple(dims) for name, dims in atc_shapes.items()}, tuple(args)


def pad_to(array: np.ndarray, shape: Sequence[int], dtype: str, where: str) -> np.ndarray:
    """Zero-pad ``array`` at the end of each axis to ``shape`` and cast it to ``dtype`` without losing values."""
    array = np.asarray(array)
    target = np.dtype(dtype)
    cast = array.astype(target)
    if array.dtype.kind in "iub" and not np.array_equal(cast.astype(array.dtype), array):
        raise InputError(f"{where}: values do not fit the compiled dtype {target.name}")
    padded = np.zeros(tuple(shape), dtype=target)
    padded[tuple(slice(0, n) for n in cast.shape)] = cast
    return padded


def write_input_files(inputs: InputSet, layout: RunLayout, dest: Path) -> None:
    """Write the msame/ais_bench input folders under ``dest`` (each file written then renamed)."""
    for folder in layout.input_dirs:
        (dest / folder).mkdir(parents=True, exist_ok=True)
        # ais_bench refuses group- or other-writable input folders, whatever the umask made them
        os.chmod(dest / folder, 0o755)
    for index in range(len(inputs)):
        sample = inputs.load(index)
        for spec, folder in zip(layout.inputs, layout.input_dirs):
            where = f"sample {inputs.sample_ids[index]!r} tensor {spec.name!r}"
            data = pad_to(sample[spec.name], spec.shape, spec.dtype, where)
            final = dest / folder / f"{layout.stems[index]}.bin"
            atomic_write_bytes(final, data.tobytes())


# ---------------------------------------------------------------------------------------------------------
# Argument lists
# ---------------------------------------------------------------------------------------------------------


def runner_for(layout_or_name) -> Runner:
    """The runner class instance for a layout (or a runner name)."""
    name = layout_or_name if isinstance(layout_or_name, str) else layout_or_name.runner
    return RUNNERS[name]


def runner_argv(command: Sequence[str], om: str, input_dirs: Sequence[str], output: str,
                layout: RunLayout) -> list[str]:
    return runner_for(layout).argv(command, om, input_dirs, output, layout)


def msame_argv(msame: Sequence[str], om: str, input_dirs: Sequence[str], output: str, layout: RunLayout) -> list[str]:
    return RUNNERS["msame"].argv(msame, om, input_dirs, output, layout)


def ais_bench_argv(ais_bench: Sequence[str], om: str, input_dirs: Sequence[str], output: str,
                   layout: RunLayout) -> list[str]:
    return RUNNERS["ais_bench"].argv(ais_bench, om, input_dirs, output, layout)


# ---------------------------------------------------------------------------------------------------------
# Output shapes of a compiled model at the fed shapes
# ---------------------------------------------------------------------------------------------------------


def infer_output_specs(onnx_path: Path, input_shapes: Mapping[str, Sequence[int]],
                       outputs: Sequence[TensorSpec],
                       feed: Mapping[str, np.ndarray] | None = None) -> tuple[TensorSpec, ...]:
    """Output shapes for static ``input_shapes``: ONNX shape inference, or one ONNX Runtime run on ``feed``
    (a real padded sample) where inference leaves a dim unknown. dtypes come from ``outputs``."""
    import onnx

    model = onnx.load(str(onnx_path))
    for value in model.graph.input:
        if value.name in input_shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, input_shapes[value.name]):
                dim.Clear()
                dim.dim_value = int(size)
    shapes: dict[str, tuple] = {}
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        for value in inferred.graph.output:
            dims = value.type.tensor_type.shape.dim
            if dims and all(d.HasField("dim_value") for d in dims):
                shapes[value.name] = tuple(d.dim_value for d in dims)
            elif not dims and value.type.tensor_type.HasField("shape"):
                shapes[value.name] = ()
    except Exception:  # shape inference gives up on some graphs; the run below is authoritative
        shapes = {}
    if any(spec.name not in shapes for spec in outputs):
        if feed is None:
            raise OutputFormatError(f"{onnx_path}: cannot infer output shapes for inputs {dict(input_shapes)}")
        import onnxruntime as ort

        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        results = session.run([spec.name for spec in outputs], dict(feed))
        shapes = {spec.name: tuple(r.shape) for spec, r in zip(outputs, results)}
    return tuple(TensorSpec(name=spec.name, shape=shapes[spec.name], dtype=spec.dtype) for spec in outputs)


# ---------------------------------------------------------------------------------------------------------
# Reading outputs (each runner's own files; these name the runner through the layout)
# ---------------------------------------------------------------------------------------------------------


def output_file_names(layout: RunLayout, stem: str) -> list[str]:
    return runner_for(layout).output_file_names(layout, stem)


def find_result_dir(layout: RunLayout, output_dir: Path) -> Path:
    return runner_for(layout).find_result_dir(layout, output_dir)


def read_outputs(layout: RunLayout, output_dir: Path) -> list[dict[str, np.ndarray]]:
    return runner_for(layout).read_outputs(layout, output_dir)


def log_name(layout: RunLayout) -> str:
    return runner_for(layout).log_name()


def collect(layout: RunLayout, output_dir: Path) -> RunResult:
    return runner_for(layout).collect(layout, output_dir)


def has_outputs(layout: RunLayout, output_dir: Path) -> bool:
    return runner_for(layout).has_outputs(layout, output_dir)


__all__ = [
    "RUNNERS", "RUN_FLAGS", "RunSettings", "RunLayout", "RunResult", "OutputFormatError", "RunnerInputError",
    "choose_run_shapes", "write_input_files", "input_dir_names", "pad_to", "msame_argv", "ais_bench_argv",
    "runner_argv", "runner_for", "infer_output_specs", "read_outputs", "parse_msame_log",
    "parse_ais_bench_summary", "collect", "has_outputs", "find_result_dir", "output_file_names", "summary_path",
    "log_name", "AIS_BENCH_DIRNAME",
]
