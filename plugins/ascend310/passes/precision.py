"""emulate_fp16: an ONNX Runtime (CPU) estimate of what fp16 storage does to a model's outputs.

Ascend 310 keeps weights and activations in fp16 (atc's default precision_mode=force_fp16). This pass rounds
every float initializer and float Constant to the nearest fp16 value, and routes every float tensor a node
produces (and every float graph input) through ``Cast(float16) → Cast(float)``, so ONNX Runtime on the CPU
computes in fp32 on fp16-rounded values. It is an estimate: the device also computes in fp16 (with fp32
accumulation in the matrix unit), fuses ops, and may use other activation approximations; this models the
storage rounding only, which is usually the dominant effect. The result is meant for a WER/CER preview, not
as a numerically equivalent model, hence the loose tolerance.

``keep_dtype`` names a keep-list in atc's ``--keep_dtype`` file format: those nodes keep fp32 weights and fp32
outputs (their inputs arrive as the reduced-precision values their producers stored), which is what atc does with
the same file. ``format: bf16`` rounds to bfloat16 instead (8 exponent bits, 7 mantissa bits: the range of fp32,
1/8 of fp16's precision), an estimate of the bf16 precision modes of chips that have them
(``allow_fp32_to_bf16``, ``allow_mix_precision_bf16``); Ascend 310 itself has no bf16.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from porter.api import KeepList, read_keep_dtype
from porter_ascend310.passes.graph import Graph
from porter_ascend310.passes.layout import Shapes

FORMATS = {"fp16": (np.float16, TensorProto.FLOAT16), "bf16": (ml_dtypes.bfloat16, TensorProto.BFLOAT16)}


def emulate_fp16(model: onnx.ModelProto, activations: bool = True, inputs: bool = True, keep_dtype=None,
                 format: str = "fp16") -> onnx.ModelProto:
    keep = read_keep_dtype(keep_dtype) if keep_dtype else KeepList()
    dtype, onnx_type = FORMATS[format]
    graph = Graph(model)
    types = Shapes(model).types
    kept = [n for n in graph.graph.node if keep.keeps(n.name, n.op_type)]
    readers: dict[str, list] = {}
    for node in graph.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    # a weight read only by kept nodes stays fp32 (one shared with a reduced node is stored reduced)
    fp32_weights = {name for node in kept for name in node.input
                    if all(keep.keeps(r.name, r.op_type) for r in readers.get(name, ()))}
    for index, tensor in enumerate(graph.graph.initializer):
        if tensor.data_type == TensorProto.FLOAT and tensor.name not in fp32_weights:
            rounded = numpy_helper.from_array(_round(numpy_helper.to_array(tensor), dtype), tensor.name)
            graph.graph.initializer[index].CopyFrom(rounded)
    for node in graph.graph.node:
        if node.op_type == "Constant" and not all(keep.keeps(r.name, r.op_type)
                                                  for out in node.output for r in readers.get(out, ())):
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(_round(numpy_helper.to_array(attr.t), dtype),
                                                            attr.t.name))
    if activations:
        for node in list(graph.graph.node):
            if node.op_type == "Constant" or keep.keeps(node.name, node.op_type):
                continue
            for index, output in enumerate(node.output):
                if output and types.get(output) == TensorProto.FLOAT:
                    stored = graph.unique(f"{output}_fp32")
                    node.output[index] = stored
                    _round_trip(graph, stored, output, onnx_type, format)
    if inputs:
        for name, value in graph.graph_inputs().items():
            if value.type.tensor_type.elem_type == TensorProto.FLOAT:
                rounded_name = graph.unique(f"{name}_{format}_rounded")
                graph.replace_input(name, rounded_name)
                _round_trip(graph, name, rounded_name, onnx_type, format)
    graph.clear_value_info()
    return graph.finish()


def _round(values: np.ndarray, dtype=np.float16) -> np.ndarray:
    with np.errstate(over="ignore"):  # values beyond fp16 range become inf, as they would on the device
        return values.astype(dtype).astype(np.float32)


def _round_trip(graph: Graph, source: str, output: str, onnx_type: int = TensorProto.FLOAT16,
                format: str = "fp16") -> None:
    half = graph.op("Cast", [source], f"{output}_to_{format}", to=onnx_type)
    graph.op("Cast", [half], f"{output}_to_fp32", output=output, to=TensorProto.FLOAT)
