"""Model ``onnx``: a user's .onnx file, optionally cut to chosen inputs/outputs and with axes made static or
dynamic; its "framework" reference is ONNX Runtime with every graph optimisation off."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Mapping

import onnx

from porter.api import (
    InputError,
    InputSet,
    OnnxModel,
    OutputSet,
    ParityCheck,
    Timing,
    feeds_for,
    model_io,
    opset_of,
    session,
    write_sample,
)

from .agreement_metrics import worst_of

# a single protobuf cannot exceed 2 GB: larger models keep their weights in an external data file
_EXTERNAL_DATA_BYTES = 1_800_000_000
CHECK_SAMPLES = 4


def onnx_file(path: Path) -> Path:
    """The .onnx named by ``path``: the file itself, or the one .onnx in a folder (weights beside it)."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.onnx"))
        if len(found) != 1:
            raise InputError(f"expected exactly one .onnx in the folder, found {len(found)}"
                             f"{': ' + ', '.join(p.name for p in found) if found else ''}", file=path,
                             field="model.options.path")
        return found[0]
    if path.suffix != ".onnx":
        raise InputError("expected an .onnx file (or a folder holding one and its external data)", file=path,
                         field="model.options.path")
    return path


def is_edited(options: Mapping) -> bool:
    return bool(options.get("input_names") or options.get("output_names") or options.get("shapes"))


def load_model(options: Mapping, *, with_data: bool = True) -> onnx.ModelProto:
    """The model the recipe describes: the file, cut and reshaped as its options say."""
    path = onnx_file(options["path"])
    try:
        model = onnx.load(str(path), load_external_data=with_data)
    except Exception as exc:  # noqa: BLE001 - protobuf and external-data errors alike
        raise InputError(f"not a readable ONNX model ({type(exc).__name__}: {exc})", file=path,
                         field="model.options.path") from None
    if options.get("input_names") or options.get("output_names"):
        model = _cut(model, options.get("input_names"), options.get("output_names"), path)
    if options.get("shapes"):
        model = _reshape(model, options["shapes"], path)
    return model


def _tensor_names(model: onnx.ModelProto) -> set[str]:
    names = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        names.update(node.output)
    return names


def _cut(model: onnx.ModelProto, input_names, output_names, path: Path) -> onnx.ModelProto:
    known = _tensor_names(model)
    inits = {i.name for i in model.graph.initializer}
    for field, names in (("input_names", input_names), ("output_names", output_names)):
        unknown = [n for n in names or () if n not in known]
        if unknown:
            sample = ", ".join(sorted(known - inits)[:12])
            raise InputError(f"no tensor named {', '.join(map(repr, unknown))} in the graph (some of its tensors: "
                             f"{sample})", file=path, field=f"model.options.{field}")
    inputs = list(input_names or [i.name for i in model.graph.input if i.name not in inits])
    outputs = list(output_names or [o.name for o in model.graph.output])
    inferred = onnx.shape_inference.infer_shapes(model)
    typed = ({v.name for v in inferred.graph.value_info} | {v.name for v in inferred.graph.input}
             | {v.name for v in inferred.graph.output})
    untyped = [n for n in inputs + outputs if n not in typed]
    if untyped:
        raise InputError(f"shape inference gives no type for {', '.join(map(repr, untyped))}, so the graph cannot "
                         "be cut there; choose tensors whose type ONNX can infer", file=path,
                         field="model.options.output_names")
    cut = onnx.utils.Extractor(inferred).extract_model(inputs, outputs)
    # an input nothing reads any more (outputs cut away from it) would still have to be fed
    used = {name for node in cut.graph.node for name in node.input} | {o.name for o in cut.graph.output}
    for value in [v for v in cut.graph.input if v.name not in used]:
        cut.graph.input.remove(value)
    return cut


def _reshape(model: onnx.ModelProto, shapes: Mapping, path: Path) -> onnx.ModelProto:
    inputs = {v.name: v for v in model.graph.input}
    for name, dims in shapes.items():
        field = f"model.options.shapes.{name}"
        if name not in inputs:
            raise InputError(f"the model has no input {name!r} (its inputs: {', '.join(inputs)})", file=path,
                             field=field)
        if not isinstance(dims, list) or not all(d is None or isinstance(d, (int, str)) and not isinstance(d, bool)
                                                 for d in dims):
            raise InputError(f"expected a list of dims (an int makes an axis static, a name makes it dynamic, null "
                             f"keeps it), got {dims!r}", file=path, field=field)
        shape = inputs[name].type.tensor_type.shape
        if len(shape.dim) != len(dims):
            raise InputError(f"input {name!r} has {len(shape.dim)} axes; the list gives {len(dims)}", file=path,
                             field=field)
        for dim, want in zip(shape.dim, dims):
            if isinstance(want, int):
                if want <= 0:
                    raise InputError(f"a static axis needs a positive size, got {want}", file=path, field=field)
                dim.dim_value = want
            elif isinstance(want, str):
                dim.dim_param = want
    # what was inferred for the old shapes no longer holds: infer again from the new inputs
    del model.graph.value_info[:]
    for output in model.graph.output:
        output.type.tensor_type.ClearField("shape")
    return onnx.shape_inference.infer_shapes(model)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    if size > _EXTERNAL_DATA_BYTES:
        onnx.save(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                  location=path.name + ".data")
    else:
        onnx.save(model, str(path))


def export(options: Mapping, export_options: Mapping, inputs: InputSet, workdir: Path) -> OnnxModel:
    """The model as the recipe describes it, saved whole under ``workdir``, checked against the file as given
    when the recipe changed it."""
    workdir = Path(workdir)
    model = load_model(options)
    out = workdir / "model.onnx"
    save_model(model, out)
    try:
        onnx.checker.check_model(str(out))
    except onnx.checker.ValidationError as exc:
        raise InputError(f"the model does not pass the ONNX checker: {exc}", file=onnx_file(options["path"]),
                         field="model.options.path") from None
    checks: tuple[ParityCheck, ...] = ()
    if is_edited(options) and not options.get("input_names"):
        checks = (_check_against_original(options, out, inputs, export_options["tolerance"]),)
    ins, outs = model_io(model)
    return OnnxModel(out, ins, outs, opset_of(model), checks=checks)


def _check_against_original(options, edited: Path, inputs: InputSet, tolerance: float) -> ParityCheck:
    """The cut or reshaped model against the file as given, on the same real inputs (a graph whose inputs
    were moved has no like-for-like run, so it is not checked)."""
    original = onnx_file(options["path"])
    orig_sess = session(original, opt_level="disable")
    new_sess = session(edited, opt_level="disable")
    orig_specs, _ = model_io(onnx.load(str(original), load_external_data=False))
    new_specs, _ = model_io(onnx.load(str(edited), load_external_data=False))
    new_names = [o.name for o in new_sess.get_outputs()]
    orig_names = [o.name for o in orig_sess.get_outputs()]
    references, news = [], []
    count = min(CHECK_SAMPLES, len(inputs))
    for index in range(count):
        sample = inputs.load(index)
        ref = dict(zip(orig_names, orig_sess.run(None, feeds_for(sample, orig_specs))))
        new = dict(zip(new_names, new_sess.run(None, feeds_for(sample, new_specs))))
        references.append({n: ref[n] for n in new_names if n in ref})
        news.append(new)
    worst, detail = worst_of(references, news)
    return ParityCheck("export: edited graph vs the file as given", worst, tolerance, count, detail=detail)


def run_reference(options: Mapping, inputs: InputSet, workdir: Path, *, warmup: int = 1) -> OutputSet:
    """Every sample through ONNX Runtime with graph optimisations off: the file as given, as a framework
    would run it, with the recipe's cut and shapes applied."""
    workdir = Path(workdir)
    if is_edited(options):
        path = workdir / "reference.onnx"
        save_model(load_model(options), path)
    else:
        path = onnx_file(options["path"])
    sess = session(path, opt_level="disable")
    specs, _ = model_io(onnx.load(str(path), load_external_data=False))
    if path.parent == workdir:  # the session holds the graph; the artifact is the outputs alone
        for leftover in workdir.glob("reference.onnx*"):
            leftover.unlink()
    names = [o.name for o in sess.get_outputs()]
    latencies = []
    if len(inputs):
        first = feeds_for(inputs.load(0), specs)
        for _ in range(warmup):
            sess.run(None, first)
    for index in range(len(inputs)):
        feeds = feeds_for(inputs.load(index), specs)
        started = time.perf_counter()
        outs = sess.run(None, feeds)
        latencies.append((time.perf_counter() - started) * 1000.0)
        write_sample(workdir, index, dict(zip(names, outs)))
    import onnxruntime

    return OutputSet(workdir, tuple(inputs.sample_ids), tuple(names),
                     Timing(tuple(latencies), sum(latencies) / 1000.0, warmup=warmup, batch_size=1),
                     details={"framework": f"onnxruntime {onnxruntime.__version__}, graph optimisations off"})
