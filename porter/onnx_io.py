"""Feeding samples to ONNX models: padding to static shapes, batching, comparing outputs."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx

from porter.artifacts import TensorSpec
from porter.errors import InputError

_ONNX_TO_NUMPY = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.BOOL: "bool",
}


def tensor_specs(values) -> tuple[TensorSpec, ...]:
    """TensorSpecs of a graph's inputs or outputs (initializers excluded by the caller)."""
    specs = []
    for v in values:
        t = v.type.tensor_type
        shape = tuple(
            d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim
        )
        specs.append(TensorSpec(v.name, shape, _ONNX_TO_NUMPY.get(t.elem_type, str(t.elem_type))))
    return tuple(specs)


def model_io(model: onnx.ModelProto) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    inits = {i.name for i in model.graph.initializer}
    return (tensor_specs([i for i in model.graph.input if i.name not in inits]),
            tensor_specs(model.graph.output))


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(Counter(n.op_type for n in model.graph.node).items()))


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def pad_to_shape(array: np.ndarray, shape: Sequence, *, what: str) -> np.ndarray:
    """Zero-pad ``array`` up to the static dims of ``shape`` (dynamic dims are left alone)."""
    if len(shape) != array.ndim:
        raise InputError(f"tensor {what!r} has {array.ndim} dims {array.shape}, the model expects {len(shape)}: "
                         f"{tuple(shape)}")
    pads = []
    for axis, (have, want) in enumerate(zip(array.shape, shape)):
        if not isinstance(want, int) or want <= 0:
            pads.append((0, 0))
            continue
        if have > want:
            raise InputError(f"tensor {what!r} axis {axis} is {have}, longer than the model's static size {want}")
        pads.append((0, want - have))
    if any(p[1] for p in pads):
        return np.pad(array, pads)
    return array


def feeds_for(sample: Mapping[str, np.ndarray], inputs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """One sample's arrays as a feed dict for a model whose inputs are ``inputs`` (cast and padded)."""
    feeds = {}
    for spec in inputs:
        if spec.name not in sample:
            raise InputError(f"the model needs input {spec.name!r} but the preprocessed sample has "
                             f"{', '.join(sample)}")
        arr = np.asarray(sample[spec.name]).astype(spec.dtype, copy=False)
        feeds[spec.name] = pad_to_shape(arr, spec.shape, what=spec.name)
    return feeds


def stack_batch(samples: Sequence[Mapping[str, np.ndarray]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Concatenate batch-1 samples along axis 0, zero-padding every other axis to the batch's maximum."""
    out = {}
    for name in names:
        arrays = [np.asarray(s[name]) for s in samples]
        target = np.max([a.shape for a in arrays], axis=0)
        padded = [np.pad(a, [(0, 0)] + [(0, int(t) - d) for d, t in zip(a.shape[1:], target[1:])]) for a in arrays]
        out[name] = np.concatenate(padded, axis=0)
    return out


def _quiet_onnxruntime():
    """ONNX Runtime's optimiser warnings (e.g. UnsqueezeElimination) are noise for porter's users."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)


def session(path: Path | str, *, threads: int | None = None, opt_level: str = "all", sequential: bool = True,
            optimized_path: Path | None = None, inter_threads: int | None = None):
    import onnxruntime as ort

    _quiet_onnxruntime()
    so = ort.SessionOptions()
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt_level]
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL if sequential else ort.ExecutionMode.ORT_PARALLEL
    if threads:
        so.intra_op_num_threads = threads
    if inter_threads:
        so.inter_op_num_threads = inter_threads
    so.log_severity_level = 3
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

