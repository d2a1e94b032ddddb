"""A test plugin with one graph pass that breaks the model on purpose, in the ways the numeric gate must catch.

``broken_output`` rewrites the model's first graph output according to its ``breaks`` option:
``nan`` multiplies it by NaN, ``inf`` adds +Inf, ``rename`` renames it (the reference's output goes missing),
``fp16`` casts it to float16 (a changed dtype), ``shape`` concatenates it with itself on the last axis.
Its tolerance is huge, so only the comparison's ``problem`` can fail it, never the number.
"""
from __future__ import annotations

import math

import onnx
from onnx import TensorProto, helper

from porter.api import Option, PassSpec, hookimpl

BREAKS = ("nan", "inf", "rename", "fp16", "shape")


@hookimpl
def porter_register_passes():
    return [PassSpec("broken_output", "breaks the first output on purpose (test plugin)",
                     options={"breaks": Option("str", "nan", choices=BREAKS)}, tolerance=1e30)]


def _reroute(model: onnx.ModelProto, name: str) -> str:
    """Make the node producing graph output ``name`` write to a new name instead; returns the new name."""
    inner = name + "_before_break"
    for node in model.graph.node:
        for i, out in enumerate(node.output):
            if out == name:
                node.output[i] = inner
    return inner


@hookimpl
def porter_graph_fix(graph_pass, model):
    if graph_pass.name != "broken_output":
        return None
    breaks = graph_pass.options["breaks"]
    output = model.graph.output[0]
    if breaks == "rename":
        _reroute(model, output.name)
        model.graph.node.append(helper.make_node("Identity", [output.name + "_before_break"], ["renamed"]))
        output.name = "renamed"
        return model
    inner = _reroute(model, output.name)
    graph = model.graph
    if breaks in ("nan", "inf"):
        value = math.nan if breaks == "nan" else math.inf
        graph.initializer.append(helper.make_tensor("break_value", TensorProto.FLOAT, [], [value]))
        graph.node.append(helper.make_node("Mul" if breaks == "nan" else "Add", [inner, "break_value"],
                                           [output.name]))
    elif breaks == "fp16":
        graph.node.append(helper.make_node("Cast", [inner], [output.name], to=TensorProto.FLOAT16))
        output.type.tensor_type.elem_type = TensorProto.FLOAT16
    else:
        graph.node.append(helper.make_node("Concat", [inner, inner], [output.name], axis=-1))
        dims = output.type.tensor_type.shape.dim
        if dims and dims[-1].HasField("dim_value"):
            dims[-1].dim_value *= 2
    return model
