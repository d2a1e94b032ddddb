"""emulate_fp16: an ONNX Runtime (CPU) estimate of what fp16 storage does to a model's outputs.

Ascend 310 keeps weights and activations in fp16 (atc's default precision_mode=force_fp16). This pass rounds
every float initializer and float Constant to the nearest fp16 value, and routes every float tensor a node
produces (and every float graph input) through ``Cast(float16) → Cast(float)``, so ONNX Runtime on the CPU
computes in fp32 on fp16-rounded values. It is an estimate: the device also computes in fp16 (with fp32
accumulation in the matrix unit), fuses ops, and may use other activation approximations; this models the
storage rounding only, which is usually the dominant effect. The result is meant for a WER/CER preview, not
as a numerically equivalent model, hence the loose tolerance.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from porter_ascend310.passes.graph import Graph
from porter_ascend310.passes.layout import Shapes


def emulate_fp16(model: onnx.ModelProto, activations: bool = True, inputs: bool = True) -> onnx.ModelProto:
    graph = Graph(model)
    types = Shapes(model).types
    for index, tensor in enumerate(graph.graph.initializer):
        if tensor.data_type == TensorProto.FLOAT:
            rounded = numpy_helper.from_array(_round(numpy_helper.to_array(tensor)), tensor.name)
            graph.graph.initializer[index].CopyFrom(rounded)
    for node in graph.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(_round(numpy_helper.to_array(attr.t)), attr.t.name))
    if activations:
        for node in list(graph.graph.node):
            if node.op_type == "Constant":
                continue
            for index, output in enumerate(node.output):
                if output and types.get(output) == TensorProto.FLOAT:
                    stored = graph.unique(f"{output}_fp32")
                    node.output[index] = stored
                    _round_trip(graph, stored, output)
    if inputs:
        for name, value in graph.graph_inputs().items():
            if value.type.tensor_type.elem_type == TensorProto.FLOAT:
                rounded = graph.unique(f"{name}_fp16_rounded")
                graph.replace_input(name, rounded)
                _round_trip(graph, name, rounded)
    graph.clear_value_info()
    return graph.finish()


def _round(values: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # values beyond fp16 range become inf, as they would on the device
        return values.astype(np.float16).astype(np.float32)


def _round_trip(graph: Graph, source: str, output: str) -> None:
    half = graph.op("Cast", [source], f"{output}_to_fp16", to=TensorProto.FLOAT16)
    graph.op("Cast", [half], f"{output}_to_fp32", output=output, to=TensorProto.FLOAT)
