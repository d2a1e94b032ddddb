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
from porter_ascend310.passes.layout import LAYOUT_OPS, Atom, Layout, Shapes, layout_after, normalize_axis, source_layout

# Ops that only read their input's shape: they may read the BatchNorm-free twin of a tensor instead.
SHAPE_READERS = {"Shape", "Size"}


@dataclass
class Target:
    node: onnx.NodeProto
    path: list  # (node, layout of its output) from the BatchNorm's output to the target, in order
    layout: tuple  # layout of the tensor the target reads


def fold_batchnorm_into_lstm(model: onnx.ModelProto) -> onnx.ModelProto:
    return _fold(model, into="rnn")


def fold_batchnorm_into_matmul(model: onnx.ModelProto) -> onnx.ModelProto:
    return _fold(model, into="matmul")


def fold_batchnorm_into_conv(model: onnx.ModelProto) -> onnx.ModelProto:
    """Fold BatchNormalization into the Conv before it, also across masking ``Where(cond, v, x)`` nodes.

    DeepSpeech's MaskConv zeroes padded frames between Conv and BatchNorm2d (``Where(mask, 0, conv)``), which
    keeps exporters from folding them. BN(Where(m, v, y)) = Where(m, a*v + b, a*y + b): the Conv takes a*y + b
    into its weights and bias, and each masking constant v becomes the per-channel a*v + b.
    """
    graph = Graph(model)
    shapes = Shapes(model)
    changed = False
    for bn in [n for n in graph.graph.node if n.op_type == "BatchNormalization"]:
        changed |= _fold_into_conv(graph, shapes, bn)
    if changed:
        graph.clear_value_info()
    return graph.finish()


def _fold_into_conv(graph: Graph, shapes: Shapes, bn) -> bool:
    producers = graph.producers()
    consumers = graph.consumers()
    affine = batchnorm_affine(graph, bn, producers)
    if affine is None or bn.output[0] in graph.graph_outputs():
        return False
    masks = []  # (Where node, index of its constant branch)
    tensor = bn.input[0]
    while True:
        readers = [n for n in consumers.get(tensor, []) if n.op_type not in SHAPE_READERS]
        if len(readers) != 1 or tensor in graph.graph_outputs():
            return False  # someone else reads the un-normalized value (its shape does not change)
        producer = producers.get(tensor)
        if producer is None or producer.op_type != "Where":
            break
        constant_branches = [i for i in (1, 2) if _scalar(graph.constant(producer.input[i], producers))]
        if len(constant_branches) != 1 or shapes.dims.get(tensor) is None:
            return False
        data = producer.input[3 - constant_branches[0]]
        if shapes.dims.get(data) != shapes.dims.get(tensor):
            return False  # the mask broadcasts the data to a bigger shape: axis 1 might not be channels
        masks.append((producer, constant_branches[0]))
        tensor = data
    conv = producers.get(tensor)
    if conv is None or conv.op_type != "Conv":
        return False
    weight = graph.constant(conv.input[1], producers)
    bias_name = input_at(conv, 2)
    bias = graph.constant(bias_name, producers) if bias_name else np.zeros(weight.shape[0] if weight is not None
                                                                           else 0)
    a, b = affine
    if weight is None or bias is None or weight.shape[0] != a.size:
        return False
    name = conv.name or "Conv"
    conv.input[1] = graph.add_initializer((weight * a.reshape((-1,) + (1,) * (weight.ndim - 1))).astype(weight.dtype),
                                          f"{name}_W_bn")
    while len(conv.input) < 3:
        conv.input.append("")
    conv.input[2] = graph.add_initializer((a * bias.astype(np.float64) + b).astype(weight.dtype), f"{name}_B_bn")
    for where, branch in masks:
        value = float(graph.required_constant(where.input[branch], where, producers).reshape(-1)[0])
        rank = len(shapes.dims[where.output[0]])
        per_channel = (a * value + b).reshape((-1,) + (1,) * (rank - 2)).astype(weight.dtype)
        where.input[branch] = graph.add_initializer(per_channel, f"{where.name or 'Where'}_bn_fill")
    graph.replace_input(bn.output[0], bn.input[0])
    graph.remove([bn])
    return True


def _scalar(value) -> bool:
    return value is not None and value.size == 1


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
    if scale is None or bias is None or mean is None or var is None:
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
    stack: list[tuple[str, Layout, list[tuple[onnx.NodeProto, Layout]]]] = [(bn.output[0], bn_layout, [])]
    while stack:
        tensor, layout, path = stack.pop()
        for user in consumers.get(tensor, []):
            if not user.input or user.input[0] != tensor:
                continue
            if user.op_type in LAYOUT_OPS:
                after = layout_after(graph, shapes, user, layout, producers)
            elif user.op_type == "Gather":
                after = _gathered_layout(shapes, user, layout, channel)
            elif user.op_type == "ReverseSequence":
                after = _reversed_layout(user, layout, channel)
            else:
                after = None
            if after is not None:
                stack.append((user.output[0], after, path + [(user, after)]))
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
    index_sizes = shapes.known_sizes(node.input[1])
    if index_sizes is None:
        return None
    new = tuple(() if size.is_one else (Atom(f"{node.output[0]}:{i}", size),) for i, size in enumerate(index_sizes))
    return layout[:axis] + new + layout[axis + 1:]


def _reversed_layout(node, layout, channel: Atom):
    """Layout after a ReverseSequence (it reorders time steps per batch item, never channels)."""
    time_axis, batch_axis = int(attribute(node, "time_axis", 0)), int(attribute(node, "batch_axis", 1))
    if len(layout) < 3 or channel in layout[time_axis] or channel in layout[batch_axis]:
        return None
    reordered = tuple(Atom(f"{node.output[0]}:{atom.label}", atom.size) for atom in layout[time_axis])
    return layout[:time_axis] + (reordered,) + layout[time_axis + 1:]


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
    # Tensors above the BN, topmost first: one arranged exactly like a path tensor replaces it, which skips
    # the Reshape round trip (e.g. [T,B,C] → [T*B,C] → BN → [T,B,C] reads the first [T,B,C] directly).
    above = sorted(layouts.items(), key=lambda item: len(_path_above(item[0], producers)))
    for node, layout in target.path:
        same = next((tensor for tensor, candidate in above if candidate == layout), None)
        if same is not None:
            twin[node.output[0]] = same
            continue
        clone = onnx.NodeProto()
        clone.CopyFrom(node)
        clone.name = graph.unique(f"{node.name or node.op_type}_without_bn")
        clone.input[0] = twin[node.input[0]]
        del clone.output[:]
        clone.output.append(graph.unique(f"{node.output[0]}_without_bn"))
        graph.graph.node.append(clone)
        twin[node.output[0]] = clone.output[0]
    read = target.path[-1][0].output[0] if target.path else bn.output[0]
    if not target.path:
        same = next((tensor for tensor, candidate in above if candidate == target.layout), None)
        twin[read] = same or twin[read]
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
    weights = graph.required_constant(node.input[rnn.W], node, producers)
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
    weight = graph.required_constant(node.input[1], node, producers)
    name = node.name or node.op_type
    node.input[1] = graph.add_initializer((weight * a[:, None]).astype(weight.dtype), f"{name}_weight_bn")
    output = node.output[0]
    node.output[0] = graph.unique(f"{output}_before_bn_bias")
    bias = graph.add_initializer((b @ weight.astype(np.float64)).astype(weight.dtype), f"{name}_bn_bias")
    graph.op("Add", [node.output[0], bias], f"{name}_bn_bias", output=output)


def _fold_into_gemm(graph: Graph, node, affine, producers) -> None:
    a, b = affine
    weight = graph.required_constant(node.input[1], node, producers)
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
