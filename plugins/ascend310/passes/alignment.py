"""pad_rnn_to_multiple: hidden and input sizes of LSTM/GRU/RNN nodes padded to a multiple (16 for fp16 cubes).

Padding a hidden size H to Hp adds units whose weights (rows of W, R and B, columns of R and peepholes) are all
zero and whose initial states are zero. Such a unit stays exactly zero: an LSTM unit sees i = f = o = σ(0) and
g = tanh(0) = 0, so c stays 0 and h = o·tanh(0) = 0; a GRU unit gets h̃ = tanh(0) = 0 and h = z·0 + (1-z)·0;
an RNN unit tanh(0) = 0. Nodes whose activations do not map 0 to 0 are left alone. Zero columns added for the
new units in R keep them from influencing the real ones.

The padded outputs are sliced back to H, so every consumer sees the original tensors. The slice then moves
down through ops that treat the last axis elementwise (Squeeze, ReverseSequence, Add of two such slices, ...)
and disappears into the next layer where it can: an RNN input (zero columns in W) or a constant MatMul/Gemm
weight (zero rows); the padded features are finite and meet only zero weights. An input size that is still
not a multiple is padded with zero columns in W and a zero Pad of X (``pad_input``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from porter.api import InputError
from porter_ascend310.passes import rnn
from porter_ascend310.passes.graph import Graph, attribute, input_at, set_attribute
from porter_ascend310.passes.layout import Shapes, normalize_axis

# Activations with f(0) = 0: the ones a padded unit's candidate and output paths may use.
ZERO_PRESERVING = {"Tanh", "Relu", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "Softsign", "Elu"}
# Which activations of each direction's list must keep zero (LSTM f,g,h; GRU f,g; RNN f).
ZERO_NEEDED = {"LSTM": (1, 2), "GRU": (1,), "RNN": (0,)}

# Ops applied elementwise along the last axis (output feature j depends on input feature j only).
ELEMENTWISE_UNARY = {"Identity", "Relu", "Tanh", "Sigmoid", "LeakyRelu", "Clip", "Cast", "Abs", "Neg", "Elu",
                     "Softsign", "HardSigmoid", "Erf", "Dropout"}
ELEMENTWISE_BINARY = {"Add", "Sub", "Mul"}  # not Div: padded 0/0 would be NaN, and NaN·0 is NaN


@dataclass
class TrimmedSlice:
    """``output = padded[..., :size]``, where ``padded`` has ``padded_size`` features on its last axis."""

    output: str
    padded: str
    size: int
    padded_size: int
    rank: int


def pad_rnn_to_multiple(model: onnx.ModelProto, multiple: int = 16, pad_input: bool = True) -> onnx.ModelProto:
    if not isinstance(multiple, int) or isinstance(multiple, bool) or multiple < 1:
        raise InputError(f"multiple must be a whole number >= 1, got {multiple!r}",
                         field="pad_rnn_to_multiple.multiple")
    graph = Graph(model)
    shapes = Shapes(model)
    slices: list[TrimmedSlice] = []
    for node in [n for n in graph.graph.node if rnn.is_recurrent(n)]:
        _pad_hidden(graph, node, multiple, slices)
    _sink_slices(graph, shapes, slices)
    if pad_input:
        for node in [n for n in graph.graph.node if rnn.is_recurrent(n)]:
            _pad_input(graph, node, multiple)
    graph.clear_value_info()
    return graph.finish()


def round_up(size: int, multiple: int) -> int:
    return -(-size // multiple) * multiple


def _zero_preserving(node: onnx.NodeProto) -> bool:
    activations = attribute(node, "activations")
    if activations is None:
        return True
    names = [a.decode() if isinstance(a, bytes) else a for a in activations]
    per_direction = rnn.ACTIVATIONS_PER_DIRECTION[node.op_type]
    return all(names[start + i] in ZERO_PRESERVING
               for start in range(0, len(names), per_direction) for i in ZERO_NEEDED[node.op_type])


def _pad_blocks(array: np.ndarray, axis: int, blocks: int, size: int, padded: int) -> np.ndarray:
    """Zero-pad each of ``blocks`` consecutive blocks of ``size`` along ``axis`` to ``padded``."""
    shape = list(array.shape)
    split = shape[:axis] + [blocks, size] + shape[axis + 1:]
    widths = [(0, 0)] * len(split)
    widths[axis + 1] = (0, padded - size)
    result = np.pad(array.reshape(split), widths)
    return result.reshape(shape[:axis] + [blocks * padded] + shape[axis + 1:])


def _pad_hidden(graph: Graph, node: onnx.NodeProto, multiple: int, slices: list[TrimmedSlice]) -> None:
    producers = graph.producers()
    size = rnn.hidden_size(graph, node, producers)
    weights = graph.constant(node.input[rnn.W], producers)
    recurrent = graph.constant(node.input[rnn.R], producers)
    bias_name = input_at(node, rnn.B)
    bias = graph.constant(bias_name, producers)
    if size is None or weights is None or recurrent is None or (bias_name and bias is None):
        return
    padded = round_up(size, multiple)
    if padded == size or not _zero_preserving(node):
        return
    gates = rnn.GATES[node.op_type]
    name = node.name or node.op_type
    states = {slot: input_at(node, slot) for slot in rnn.state_inputs(node)}
    state_values = {slot: graph.constant(t, producers) if t else None for slot, t in states.items()}
    peepholes = input_at(node, rnn.PEEPHOLES) if node.op_type == "LSTM" else ""
    peephole_value = graph.constant(peepholes, producers) if peepholes else None
    if peepholes and peephole_value is None:
        return
    weights = _pad_blocks(weights, 1, gates, size, padded)
    recurrent = np.pad(_pad_blocks(recurrent, 1, gates, size, padded), [(0, 0), (0, 0), (0, padded - size)])
    while len(node.input) <= rnn.B:
        node.input.append("")
    node.input[rnn.W] = graph.add_initializer(weights, f"{name}_W_padded")
    node.input[rnn.R] = graph.add_initializer(recurrent, f"{name}_R_padded")
    if bias is not None:
        node.input[rnn.B] = graph.add_initializer(_pad_blocks(bias, 1, 2 * gates, size, padded), f"{name}_B_padded")
    if peephole_value is not None:
        node.input[rnn.PEEPHOLES] = graph.add_initializer(_pad_blocks(peephole_value, 1, 3, size, padded),
                                                          f"{name}_P_padded")
    for slot, state in states.items():
        if not state:
            continue
        value = state_values[slot]
        if value is not None:
            node.input[slot] = graph.add_initializer(
                np.pad(value, [(0, 0), (0, 0), (0, padded - size)]), f"{name}_state{slot}_padded")
        elif _is_zero_fill(graph, producers.get(state), producers):
            node.input[slot] = ""  # an all-zero initial state is the default: the padded units start at zero too
        else:
            node.input[slot] = graph.pad_last_axis(state, 3, padded - size, f"{name}_state{slot}_pad")
    set_attribute(node, "hidden_size", padded)
    consumers = graph.consumers()
    for slot, rank in [(rnn.Y, 4)] + [(s, 3) for s in rnn.state_outputs(node)]:
        if len(node.output) <= slot or not graph.is_used(node.output[slot], consumers):
            continue
        original = node.output[slot]
        node.output[slot] = graph.unique(f"{original}_padded")
        graph.slice(node.output[slot], [0], [size], [-1], hint=f"{name}_trim{slot}", output=original)
        slices.append(TrimmedSlice(original, node.output[slot], size, padded, rank))


# Ops that only select or rearrange elements: a tensor made by them from zeros is all zeros.
ZERO_KEEPING = {"Slice", "Reshape", "Identity", "Expand", "Squeeze", "Unsqueeze", "Transpose", "Gather"}


def _is_zero_fill(graph: Graph, node, producers) -> bool:
    """Whether ``node`` makes an all-zero tensor (ConstantOfShape(0), possibly sliced or reshaped)."""
    while node is not None and node.op_type in ZERO_KEEPING:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "ConstantOfShape":
        return False
    value = attribute(node, "value")
    return value is None or not np.any(onnx.numpy_helper.to_array(value))


def _pad_input(graph: Graph, node: onnx.NodeProto, multiple: int) -> None:
    producers = graph.producers()
    weights = graph.constant(node.input[rnn.W], producers)
    if weights is None:
        return
    size = weights.shape[2]
    padded = round_up(size, multiple)
    if padded == size:
        return
    name = node.name or node.op_type
    node.input[rnn.W] = graph.add_initializer(np.pad(weights, [(0, 0), (0, 0), (0, padded - size)]),
                                              f"{name}_W_input_padded")
    node.input[rnn.X] = graph.pad_last_axis(node.input[rnn.X], 3, padded - size, f"{name}_input_pad")


# ---------------------------------------------------------------------------------------------------------
# Moving the trimming slices down to where zero weights can absorb the padded features
# ---------------------------------------------------------------------------------------------------------


def _sink_slices(graph: Graph, shapes: Shapes, slices: list[TrimmedSlice]) -> None:
    work = list(slices)
    while work:
        trimmed = work.pop()
        by_output = {s.output: s for s in slices}
        for user in list(graph.consumers().get(trimmed.output, [])):
            moved = _sink_into(graph, shapes, trimmed, user, by_output)
            if moved is not None:
                slices.append(moved)
                work.append(moved)


def _sink_into(graph: Graph, shapes: Shapes, trimmed: TrimmedSlice, user, by_output) -> TrimmedSlice | None:
    """Rewrite ``user`` to read the padded tensor; returns the slice re-created after it, if any."""
    producers = graph.producers()
    last = trimmed.rank - 1
    op = user.op_type
    if rnn.is_recurrent(user) and user.input[rnn.X] == trimmed.output:
        weights = graph.constant(user.input[rnn.W], producers)
        if weights is None or weights.shape[2] != trimmed.size:
            return None
        user.input[rnn.X] = trimmed.padded
        user.input[rnn.W] = graph.add_initializer(
            np.pad(weights, [(0, 0), (0, 0), (0, trimmed.padded_size - trimmed.size)]),
            f"{user.name or user.op_type}_W_wide")
        return None
    if op in ("MatMul", "Gemm") and user.input[0] == trimmed.output:
        _absorb_into_matmul(graph, trimmed, user, producers)
        return None  # absorbed or not, the MatMul's output has no padded features to trim
    rank: int | None
    if op in ELEMENTWISE_UNARY and user.input[0] == trimmed.output:
        rank = trimmed.rank
    elif op == "ReverseSequence" and user.input[0] == trimmed.output:
        if last in (int(attribute(user, "time_axis", 0)), int(attribute(user, "batch_axis", 1))):
            return None
        rank = trimmed.rank
    elif op == "Transpose" and user.input[0] == trimmed.output:
        perm = attribute(user, "perm")
        if perm is None or list(perm)[-1] != last:
            return None
        rank = trimmed.rank
    elif op == "Gather" and user.input[0] == trimmed.output:
        rank = shapes.rank(user.output[0])
        axis = normalize_axis(int(attribute(user, "axis", 0)), trimmed.rank)
        if rank is None or axis == last:
            return None
    elif op in ("Squeeze", "Unsqueeze") and user.input[0] == trimmed.output:
        rank = shapes.rank(user.output[0])
        axes = _axes(graph, user, producers)
        if rank is None or axes is None:
            return None
        touched_rank = trimmed.rank if op == "Squeeze" else rank
        if (touched_rank - 1) in {normalize_axis(a, touched_rank) for a in axes}:
            return None
    elif op in ELEMENTWISE_BINARY or (op == "Concat" and len(user.input) >= 1):
        partners = [by_output.get(name) for name in user.input]
        if any(p is None or (p.size, p.padded_size, p.rank) != (trimmed.size, trimmed.padded_size, trimmed.rank)
               for p in partners):
            return None
        if op == "Concat" and normalize_axis(int(attribute(user, "axis")), trimmed.rank) == last:
            return None
        for index, partner in enumerate(partners):
            user.input[index] = partner.padded
        return _trim_after(graph, user, trimmed, trimmed.rank)
    else:
        return None
    user.input[0] = trimmed.padded
    return _trim_after(graph, user, trimmed, rank)


def _trim_after(graph: Graph, user, trimmed: TrimmedSlice, rank: int) -> TrimmedSlice:
    original = user.output[0]
    user.output[0] = graph.unique(f"{original}_padded")
    graph.slice(user.output[0], [0], [trimmed.size], [-1], hint=f"{user.name or user.op_type}_trim",
                output=original)
    return TrimmedSlice(original, user.output[0], trimmed.size, trimmed.padded_size, rank)


def _absorb_into_matmul(graph: Graph, trimmed: TrimmedSlice, user, producers) -> None:
    extra = trimmed.padded_size - trimmed.size
    weight = graph.constant(user.input[1], producers)
    if weight is None or weight.ndim != 2:
        return None
    if user.op_type == "Gemm":
        if int(attribute(user, "transA", 0)):
            return None
        transposed = int(attribute(user, "transB", 0)) == 1
        widths = [(0, 0), (0, extra)] if transposed else [(0, extra), (0, 0)]
        if weight.shape[1 if transposed else 0] != trimmed.size:
            return None
    else:
        widths = [(0, extra), (0, 0)]
        if weight.shape[0] != trimmed.size:
            return None
    user.input[0] = trimmed.padded
    user.input[1] = graph.add_initializer(np.pad(weight, widths), f"{user.name or user.op_type}_weight_wide")
    return None


def _axes(graph: Graph, node, producers) -> list[int] | None:
    axes = attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = graph.constant(node.input[1], producers)
        axes = None if value is None else [int(a) for a in value.reshape(-1)]
    return None if axes is None else list(axes)

