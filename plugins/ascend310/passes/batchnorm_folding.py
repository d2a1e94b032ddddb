"""Folding inference-mode BatchNormalization into the weights of the layer it feeds.

A BatchNorm in inference mode is a per-channel affine map ``y = a*x + b`` with ``a = scale / sqrt(var + eps)``
and ``b = bias - mean * a``. When a BatchNorm's channel axis ends up, through Reshapes and Transposes, as the
feature axis of an RNN's input X or of a MatMul/Gemm's left operand, the affine map moves into that layer's
weights: ``W·(a⊙x + b) = (W·diag(a))·x + W·b``. For LSTM/GRU/RNN the constant ``W·b`` joins the input bias Wb
(the first half of B), which every gate adds to ``W·x`` outside any reset gating; for MatMul it becomes an Add
after it and for Gemm its C input.

The channel axis is tracked atom by atom (layout.py), so the fold is applied only where the data the layer
reads is provably the BatchNorm's per-channel output. The BatchNorm and the Reshapes around it are then
bypassed: when the layer's input has exactly the arrangement of a tensor above the BatchNorm (torch's
SequenceWise ``[T,B,C] → [T*B,C] → BN → [T,B,C]``), the layer reads that tensor directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from porter_ascend310.passes import rnn
from porter_ascend310.passes.graph import Graph, attribute, input_at, set_attribute
from porter_ascend310.passes.layout import LAYOUT_OPS, Atom, Shapes, layout_after, normalize_axis, source_layout

# Ops that only read their input's shape: they may read the BatchNorm-free twin of a tensor instead.
SHAPE_READERS = {"Shape", "Size"}


@dataclass
class Target:
    node: onnx.NodeProto
    path: list  # the nodes from the BatchNorm's output to the target, in order
    layout: tuple  # layout of the tensor the target reads


def fold_batchnorm_into_lstm(model: onnx.ModelProto) -> onnx.ModelProto:
    return _fold(model, into="rnn")


def fold_batchnorm_into_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    return _fold(model, into="matmul")


def _fold(model: onnx.ModelProto, into: str) -> onnx.ModelProto:
    graph = Graph(model)
    shapes = Shapes(model)
    changed = False
    for bn in [n for n in graph.graph.node if n.op_type == "BatchNormalization"]:
        changed |= _fold_one(graph, shapes, bn, into)
    if changed:
        graph.clear_value_info()
    return graph.finish()


def batchnorm_affine(graph: Graph, bn: onnx.NodeProto, producers) -> tuple[np.ndarray, np.ndarray] | None:
    """(a, b) with BN(x) = a*x + b per channel, or None if the BatchNorm is not a constant inference-mode one."""
    if int(attribute(bn, "training_mode", 0)) or int(attribute(bn, "spatial", 1)) == 0 or len(bn.input) < 5:
        return None
    if any(graph.is_used(out) for out in list(bn.output)[1:]):
        return None  # running statistics are read: a training graph
    scale, bias, mean, var = (graph.constant(name, producers) for name in bn.input[1:5])
    if any(v is None for v in (scale, bias, mean, var)):
        return None
    epsilon = float(attribute(bn, "epsilon", 1e-5))
    a = scale.astype(np.float64) / np.sqrt(var.astype(np.float64) + epsilon)
    return a, bias.astype(np.float64) - mean.astype(np.float64) * a


def _fold_one(graph: Graph, shapes: Shapes, bn: onnx.NodeProto, into: str) -> bool:
    producers = graph.producers()
    consumers = graph.consumers()
    affine = batchnorm_affine(graph, bn, producers)
    if affine is None:
        return False
    above = _path_above(bn.input[0], producers)
    for root_index in range(len(above) - 1, -1, -1):  # the highest root whose layout tracks down to the BN
        layouts = _layouts_down(graph, shapes, above[:root_index + 1], producers)
        if layouts is None:
            continue
        bn_layout = layouts[bn.input[0]]
        if len(bn_layout) < 2 or len(bn_layout[1]) != 1 or bn_layout[1][0].size.static != affine[0].size:
            return False
        channel = bn_layout[1][0]
        targets = _targets(graph, shapes, bn, bn_layout, channel, into, producers, consumers)
        for target in targets:
            _apply(graph, bn, target, layouts, affine, consumers, producers)
        if targets:
            _bypass_for_shape_readers(graph, bn)
        return bool(targets)
    return False


def _bypass_for_shape_readers(graph: Graph, bn) -> None:
    """Let branches that only read the BatchNorm output's shape read its input instead (same shape)."""
    consumers = graph.consumers()
    if bn.output[0] in graph.graph_outputs():
        return

    def only_shapes_read(tensor: str) -> bool:
        if tensor in graph.graph_outputs():
            return False
        return all(user.op_type in SHAPE_READERS or
                   (user.op_type in LAYOUT_OPS and user.input[0] == tensor and only_shapes_read(user.output[0]))
                   for user in consumers.get(tensor, []))

    if only_shapes_read(bn.output[0]):
        graph.replace_input(bn.output[0], bn.input[0])


def _path_above(tensor: str, producers) -> list[str]:
    """``tensor`` and the tensors it comes from through layout-only ops, nearest first."""
    path = [tensor]
    producer = producers.get(tensor)
    while producer is not None and producer.op_type in LAYOUT_OPS:
        path.append(producer.input[0])
        producer = producers.get(producer.input[0])
    return path


def _layouts_down(graph, shapes, path_up: list[str], producers) -> dict | None:
    """Layouts of the tensors on ``path_up`` (nearest first, root last), labelled from the root."""
    root = path_up[-1]
    layout = source_layout(shapes, root, root)
    if layout is None:
        return None
    layouts = {root: layout}
    for tensor in reversed(path_up[:-1]):
        layout = layout_after(graph, shapes, producers[tensor], layout, producers)
        if layout is None:
            return None
        layouts[tensor] = layout
    return layouts


def _targets(graph, shapes, bn, bn_layout, channel: Atom, into: str, producers, consumers) -> list[Target]:
    found = []
    stack = [(bn.output[0], bn_layout, [])]
    while stack:
        tensor, layout, path = stack.pop()
        for user in consumers.get(tensor, []):
            if not user.input or user.input[0] != tensor:
                continue
            if user.op_type in LAYOUT_OPS:
                after = layout_after(graph, shapes, user, layout, producers)
            elif user.op_type == "Gather":
                after = _gathered_layout(shapes, user, layout, channel)
            else:
                after = None
            if after is not None:
                stack.append((user.output[0], after, path + [user]))
                continue
            if into == "rnn" and _rnn_accepts(graph, user, layout, channel, producers):
                found.append(Target(user, path, layout))
            elif into == "matmul" and _matmul_accepts(graph, user, layout, channel, producers):
                found.append(Target(user, path, layout))
    return found


def _gathered_layout(shapes: Shapes, node, layout, channel: Atom):
    """Layout after a Gather that picks along an axis without the channel (e.g. sorting a batch)."""
    axis = normalize_axis(int(attribute(node, "axis", 0)), len(layout))
    if channel in layout[axis]:
        return None
    index_sizes = shapes.sizes(node.input[1])
    if index_sizes is None or any(s is None for s in index_sizes):
        return None
    new = tuple((Atom(f"{node.output[0]}:{i}", size),) for i, size in enumerate(index_sizes))
    return layout[:axis] + new + layout[axis + 1:]


def _rnn_accepts(graph, node, layout, channel, producers) -> bool:
    return (rnn.is_recurrent(node) and len(layout) == 3 and layout[2] == (channel,)
            and graph.constant(node.input[rnn.W], producers) is not None
            and (not input_at(node, rnn.B) or graph.constant(node.input[rnn.B], producers) is not None))


def _matmul_accepts(graph, node, layout, channel, producers) -> bool:
    if not layout or layout[-1] != (channel,):
        return False
    if node.op_type == "MatMul":
        weight = graph.constant(node.input[1], producers)
        return weight is not None and weight.ndim == 2
    if node.op_type == "Gemm":
        c = input_at(node, 2)
        return (int(attribute(node, "transA", 0)) == 0 and graph.constant(node.input[1], producers) is not None
                and (not c or graph.constant(c, producers) is not None))
    return False


def _apply(graph: Graph, bn, target: Target, layouts: dict, affine, consumers, producers) -> None:
    """Point ``target`` (and shape readers along the way) at BatchNorm-free tensors, then fold the weights."""
    twin = {bn.output[0]: bn.input[0]}  # tensor after the BN → the same tensor computed without it
    for node in target.path:
        clone = onnx.NodeProto()
        clone.CopyFrom(node)
        clone.name = graph.unique(f"{node.name or node.op_type}_without_bn")
        clone.input[0] = twin[node.input[0]]
        del clone.output[:]
        clone.output.append(graph.unique(f"{node.output[0]}_without_bn"))
        graph.graph.node.append(clone)
        twin[node.output[0]] = clone.output[0]
    read = target.path[-1].output[0] if target.path else bn.output[0]
    # Skip the Reshapes entirely when the target's input is arranged exactly like a tensor above the BN.
    for tensor, layout in sorted(layouts.items(), key=lambda item: len(_path_above(item[0], producers))):
        if layout == target.layout:
            twin[read] = tensor
            break
    for tensor, replacement in twin.items():
        readers = [n for n in consumers.get(tensor, []) if n.op_type in SHAPE_READERS]
        graph.replace_input(tensor, replacement, only=readers)
    graph.replace_input(read, twin[read], only=[target.node])
    if target.node.op_type == "MatMul":
        _fold_into_matmul(graph, target.node, affine, producers)
    elif target.node.op_type == "Gemm":
        _fold_into_gemm(graph, target.node, affine, producers)
    else:
        _fold_into_rnn(graph, target.node, affine, producers)


def _fold_into_rnn(graph: Graph, node, affine, producers) -> None:
    a, b = affine
    weights = graph.constant(node.input[rnn.W], producers)
    directions, rows, _ = weights.shape
    bias = graph.constant(input_at(node, rnn.B), producers)
    if bias is None:
        bias = np.zeros((directions, 2 * rows), dtype=weights.dtype)
    bias = bias.astype(np.float64)
    bias[:, :rows] += np.einsum("dgi,i->dg", weights.astype(np.float64), b)
    name = node.name or node.op_type
    while len(node.input) <= rnn.B:
        node.input.append("")
    node.input[rnn.W] = graph.add_initializer((weights * a[None, None, :]).astype(weights.dtype), f"{name}_W_bn")
    node.input[rnn.B] = graph.add_initializer(bias.astype(weights.dtype), f"{name}_B_bn")


def _fold_into_matmul(graph: Graph, node, affine, producers) -> None:
    a, b = affine
    weight = graph.constant(node.input[1], producers)
    name = node.name or node.op_type
    node.input[1] = graph.add_initializer((weight * a[:, None]).astype(weight.dtype), f"{name}_weight_bn")
    output = node.output[0]
    node.output[0] = graph.unique(f"{output}_before_bn_bias")
    bias = graph.add_initializer((b @ weight.astype(np.float64)).astype(weight.dtype), f"{name}_bn_bias")
    graph.op("Add", [node.output[0], bias], f"{name}_bn_bias", output=output)


def _fold_into_gemm(graph: Graph, node, affine, producers) -> None:
    a, b = affine
    weight = graph.constant(node.input[1], producers)
    transposed = int(attribute(node, "transB", 0)) == 1
    matrix = (weight.T if transposed else weight).astype(np.float64)  # [C, K]
    alpha = float(attribute(node, "alpha", 1.0))
    beta = float(attribute(node, "beta", 1.0))
    c = graph.constant(input_at(node, 2), producers)
    shift = alpha * (b @ matrix)
    c = shift if c is None else beta * c.astype(np.float64) + shift
    scaled = matrix * a[:, None]
    name = node.name or node.op_type
    node.input[1] = graph.add_initializer((scaled.T if transposed else scaled).astype(weight.dtype),
                                          f"{name}_B_bn")
    while len(node.input) < 3:
        node.input.append("")
    node.input[2] = graph.add_initializer(c.astype(weight.dtype), f"{name}_C_bn")
    set_attribute(node, "beta", 1.0)
