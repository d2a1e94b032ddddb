"""Models ``torch_export`` (a saved ``torch.export`` program, ``.pt2``) and ``torchscript`` (a
``torch.jit.save`` file): loaded as data where the format allows it, exported to ONNX, run as the reference.

What each format runs when loaded (torch 2.13):

* ``torch.export.load`` reads the graph from JSON and plain tensors as raw bytes, but unpickles with
  ``weights_only=False`` (arbitrary code) for tensor-subclass weights and constants, custom and opaque objects,
  the legacy archive layout, and, as a fallback, sample inputs a safe load cannot read. :func:`pickled_members`
  reads the archive's own payload configs first and refuses those files unless ``trust_code`` is set.
* ``torch.jit.load`` unpickles only tensors and TorchScript types, but a TorchScript file *is* code: its
  ``code/`` holds the program the interpreter runs. It is therefore loaded only with ``trust_code: true``.
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from porter.api import (
    InputError,
    InputSet,
    OnnxModel,
    OutputSet,
    ParityCheck,
    TensorSpec,
    Timing,
    feeds_for,
    model_io,
    opset_of,
    session,
    write_sample,
)

from .agreement_metrics import worst_of

TORCH_EXPORT = "torch_export"
TORCHSCRIPT = "torchscript"
CHECK_SAMPLES = 4
_TORCH_DTYPES = {"float32": "float32", "float64": "float64", "float16": "float16", "int64": "int64",
                 "int32": "int32", "int8": "int8", "uint8": "uint8", "bool": "bool"}


def _read_archive(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror})", file=path, field="model.options.path") from None


def pickled_members(data: bytes, path: Path) -> list[str]:
    """The members of a ``.pt2`` archive that ``torch.export.load`` would unpickle with code allowed."""
    import torch

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise InputError("not a torch.export archive (expected the .pt2 zip that torch.export.save writes)",
                         file=path, field="model.options.path") from None
    names = archive.namelist()
    found = []
    configs = [n for n in names if n.endswith(("_weights_config.json", "_constants_config.json"))]
    if not configs:
        found.append("the legacy archive layout (weights and constants as pickles)")
    for name in configs:
        config = json.loads(archive.read(name)).get("config", {})
        for fqn, meta in config.items():
            path_name = str(meta.get("path_name", ""))
            if meta.get("use_pickle") or path_name.startswith(("custom_obj", "opaque_obj")):
                found.append(f"{name}: {fqn}")
    for name in (n for n in names if "/sample_inputs/" in n):
        try:  # torch.export.load tries this first and falls back to a full unpickle when it fails
            torch.load(io.BytesIO(archive.read(name)), weights_only=True)
        except Exception:  # noqa: BLE001 - any failure means the fallback would run
            found.append(f"{name} (sample inputs that need a full unpickle)")
    return found


def load_program(options: Mapping):
    """The ExportedProgram at ``options['path']``, refusing code-carrying members unless trusted."""
    import torch

    path = Path(options["path"])
    data = _read_archive(path)
    if not options.get("trust_code"):
        pickled = pickled_members(data, path)
        if pickled:
            raise InputError("loading this program would unpickle Python objects, which can run code: "
                             f"{'; '.join(pickled[:4])}. Set model.options.trust_code: true only if you trust "
                             "the file", file=path, field="model.options.trust_code")
    try:
        return torch.export.load(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad archive
        raise InputError(f"torch.export.load failed: {type(exc).__name__}: {exc}", file=path,
                         field="model.options.path") from None


def load_script(options: Mapping):
    import torch

    path = Path(options["path"])
    if not options.get("trust_code"):
        raise InputError("a TorchScript file is a program: torch.jit.load runs the code it holds. Set "
                         "model.options.trust_code: true only if you trust the file (or give a torch.export .pt2 "
                         "or an .onnx, which load as data)", file=path, field="model.options.trust_code")
    try:
        return torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"torch.jit.load failed: {type(exc).__name__}: {exc}", file=path,
                         field="model.options.path") from None


def _dim(value) -> int | str:
    # a symbolic size (torch.SymInt) prints as its symbol: s0, s77
    return int(value) if isinstance(value, int) or str(value).isdigit() else str(value)


def program_input_specs(program, input_names: Sequence[str] | None) -> tuple[TensorSpec, ...]:
    """The program's user inputs (tensors only), named by ``input_names`` or by the program's own names."""
    user = list(program.graph_signature.user_inputs)
    metas = {n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"}
    specs = []
    for index, name in enumerate(user):
        val = metas.get(name)
        if val is None or not hasattr(val, "shape"):
            raise InputError(f"the program's input {name!r} is not a tensor; porter feeds tensors only",
                             field="model.options.path")
        label = input_names[index] if input_names and index < len(input_names) else name
        specs.append(TensorSpec(label, tuple(_dim(d) for d in val.shape), str(val.dtype).replace("torch.", "")))
    if input_names and len(input_names) != len(specs):
        raise InputError(f"input_names lists {len(input_names)} names; the program takes {len(specs)} tensors "
                         f"({', '.join(user)})", field="model.options.input_names")
    return tuple(specs)


def script_input_specs(options: Mapping) -> tuple[TensorSpec, ...] | None:
    """A TorchScript file carries no input shapes: they come from the ``shapes`` option when given."""
    shapes = options.get("shapes") or {}
    if not shapes:
        return None
    dtypes = options.get("dtypes") or {}
    names = options.get("input_names") or list(shapes)
    missing = [n for n in names if n not in shapes]
    if missing:
        raise InputError(f"no shape for input(s) {', '.join(missing)}", field="model.options.shapes")
    specs = []
    for name in names:
        dims = shapes[name]
        if not isinstance(dims, list) or not all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in dims):
            raise InputError(f"expected a list of ints (static) and names (dynamic), got {dims!r}",
                             field=f"model.options.shapes.{name}")
        dtype = dtypes.get(name, "float32")
        if dtype not in _TORCH_DTYPES:
            raise InputError(f"unknown dtype {dtype!r} (known: {', '.join(_TORCH_DTYPES)})",
                             field=f"model.options.dtypes.{name}")
        specs.append(TensorSpec(name, tuple(dims), dtype))
    return tuple(specs)


def script_input_names(module, options: Mapping) -> list[str]:
    if options.get("input_names"):
        return list(options["input_names"])
    if options.get("shapes"):
        return list(options["shapes"])
    return [a.name for a in module.forward.schema.arguments[1:]]  # the first argument is self


def input_specs(name: str, options: Mapping) -> tuple[TensorSpec, ...] | None:
    if name == TORCH_EXPORT:
        return program_input_specs(load_program(options), options.get("input_names"))
    specs = script_input_specs(options)
    if specs is None:  # names only, from the file's forward signature
        return None
    return specs


class _Callable:
    """The model as one callable taking tensors in input order and returning a flat list of tensors."""

    def __init__(self, name: str, options: Mapping):
        import torch

        self.name = name
        self.specs: tuple[TensorSpec, ...] | None
        if name == TORCH_EXPORT:
            program = load_program(options)
            self.specs = program_input_specs(program, options.get("input_names"))
            self.input_names = [s.name for s in self.specs]
            self.module = program.module()
            self.example = tuple(program.example_inputs[0]) if program.example_inputs else None
            # the legacy exporter records weights as constants, which must not carry autograd state
            for p in self.module.parameters():
                p.requires_grad_(False)
        else:
            self.module = load_script(options)
            self.specs = script_input_specs(options)
            self.input_names = script_input_names(self.module, options)
            self.example = None
        self.torch = torch

    def tensors(self, sample: Mapping[str, np.ndarray]) -> tuple:
        missing = [n for n in self.input_names if n not in sample]
        if missing:
            raise InputError(f"the model takes {', '.join(self.input_names)} but the sample has "
                             f"{', '.join(sample)}", field="dataset")
        return tuple(self.torch.from_numpy(np.ascontiguousarray(sample[n])) for n in self.input_names)

    def __call__(self, *tensors) -> list:
        return flatten(self.module(*tensors))


def flatten(result) -> list:
    if isinstance(result, (list, tuple)):
        return [t for item in result for t in flatten(item)]
    if isinstance(result, dict):
        return [t for item in result.values() for t in flatten(item)]
    return [result]


def output_names(options: Mapping, count: int) -> list[str]:
    names = list(options.get("output_names") or [])
    if names and len(names) != count:
        raise InputError(f"output_names lists {len(names)} names; the model returns {count} tensors",
                         field="model.options.output_names")
    return names or [f"output_{i}" for i in range(count)]


def _exportable(call: _Callable):
    """What the TorchScript-based ONNX exporter is given. A ScriptModule goes as it is (the exporter reads its
    graph); an ExportedProgram's module goes inside a plain nn.Module that the exporter traces, because it
    refuses ``train(False)``, which the exporter calls on every submodule."""
    import torch

    if call.name == TORCHSCRIPT:
        return call.module

    class Traced(torch.nn.Module):
        def __init__(self):
            super().__init__()
            object.__setattr__(self, "_call", call)  # not a submodule: the exporter must not recurse into it

        def forward(self, *tensors):
            return tuple(self._call(*tensors))

    return Traced()


def export(name: str, options: Mapping, export_options: Mapping, inputs: InputSet, workdir: Path) -> OnnxModel:
    """The program exported to ONNX with the TorchScript-based exporter (the dynamo exporter needs
    onnxscript, which porter does not install), checked against the program on real inputs."""
    import onnx
    import torch

    if len(inputs) == 0:
        raise InputError("the input set is empty; the export is checked on real inputs", field="dataset")
    call = _Callable(name, options)
    example = call.example or call.tensors(inputs.load(0))
    with torch.inference_mode():
        count = len(call(*example))
    names_out = output_names(options, count)
    dynamic = {}
    if export_options.get("dynamic", True):
        specs = call.specs or ()
        for spec in specs:
            axes = {axis: str(dim) for axis, dim in enumerate(spec.shape) if not isinstance(dim, int)}
            if axes:
                dynamic[spec.name] = axes
        if any(0 in axes for axes in dynamic.values()):
            dynamic.update({n: {0: "batch"} for n in names_out})
    path = Path(workdir) / "model.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings are not the user's
        torch.onnx.export(_exportable(call), example, str(path), input_names=call.input_names,
                          output_names=names_out, dynamic_axes=dynamic or None,
                          opset_version=export_options["opset"], dynamo=False)
    proto = onnx.load(str(path))
    ins, outs = model_io(proto)
    sess = session(path, opt_level="disable")
    references, news = [], []
    checked = min(CHECK_SAMPLES, len(inputs))
    with torch.inference_mode():
        for index in range(checked):
            sample = inputs.load(index)
            references.append(dict(zip(names_out, (t.numpy() for t in call(*call.tensors(sample))))))
            news.append(dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds_for(sample, ins)))))
    worst, detail = worst_of(references, news)
    check = ParityCheck(f"export vs {name}", worst, export_options["tolerance"], checked, detail=detail)
    return OnnxModel(path, ins, outs, opset_of(proto), checks=(check,))


def run_reference(name: str, options: Mapping, inputs: InputSet, workdir: Path, *, warmup: int = 1) -> OutputSet:
    """Every sample through the program in PyTorch, batch 1."""
    import torch

    call = _Callable(name, options)
    workdir = Path(workdir)
    latencies = []
    names: list[str] = []
    with torch.inference_mode():
        if len(inputs):
            first = call.tensors(inputs.load(0))
            for _ in range(warmup):
                call(*first)
        for index in range(len(inputs)):
            tensors = call.tensors(inputs.load(index))
            started = time.perf_counter()
            outs = call(*tensors)
            latencies.append((time.perf_counter() - started) * 1000.0)
            names = names or output_names(options, len(outs))
            write_sample(workdir, index, {n: t.numpy() for n, t in zip(names, outs)})
    return OutputSet(workdir, tuple(inputs.sample_ids), tuple(names),
                     Timing(tuple(latencies), sum(latencies) / 1000.0, warmup=warmup, batch_size=1),
                     details={"framework": f"torch {torch.__version__} ({name})", "threads": torch.get_num_threads()})
