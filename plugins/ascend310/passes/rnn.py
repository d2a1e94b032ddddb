"""Facts about the ONNX recurrent ops (LSTM, GRU, RNN) that several passes share."""
from __future__ import annotations

import onnx

from porter_ascend310.passes.graph import Graph, attribute, input_at, remove_attribute

# Gates stacked in the rows of W and R: LSTM i,o,f,c; GRU z,r,h; RNN one.
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
RECURRENT_OPS = frozenset(GATES)

X, W, R, B, SEQUENCE_LENS, INITIAL_H, INITIAL_C, PEEPHOLES = range(8)
Y, Y_H, Y_C = range(3)

# Activations per direction, in the order of the `activations` attribute.
ACTIVATIONS_PER_DIRECTION = {"LSTM": 3, "GRU": 2, "RNN": 1}


def is_recurrent(node: onnx.NodeProto) -> bool:
    return node.op_type in RECURRENT_OPS and node.domain in ("", "ai.onnx")


def direction(node: onnx.NodeProto) -> str:
    value = attribute(node, "direction", b"forward")
    return value.decode() if isinstance(value, bytes) else str(value)


def num_directions(node: onnx.NodeProto) -> int:
    return 2 if direction(node) == "bidirectional" else 1


def hidden_size(graph: Graph, node: onnx.NodeProto, producers=None) -> int | None:
    size = attribute(node, "hidden_size")
    if size is not None:
        return int(size)
    weights = graph.constant(node.input[R], producers)
    return None if weights is None else int(weights.shape[-1])


def is_batch_first(node: onnx.NodeProto) -> bool:
    return int(attribute(node, "layout", 0)) == 1


def state_inputs(node: onnx.NodeProto) -> list[int]:
    """Input slots holding per-direction initial states ([num_directions, batch, hidden] in layout 0)."""
    return [INITIAL_H, INITIAL_C] if node.op_type == "LSTM" else [INITIAL_H]


def state_outputs(node: onnx.NodeProto) -> list[int]:
    return [Y_H, Y_C] if node.op_type == "LSTM" else [Y_H]


def make_time_major(graph: Graph, node: onnx.NodeProto) -> None:
    """Rewrite a ``layout=1`` (batch-first) node as a layout-0 node wrapped in Transposes.

    Layout 1 has X [B,T,I], Y [B,T,D,H], states [B,D,H]; layout 0 has X [T,B,I], Y [T,D,B,H], states
    [D,B,H]. cancel_transposes can remove the wrappers where neighbouring Transposes undo them.
    """
    if not is_batch_first(node):
        return
    name = node.name or node.op_type
    node.input[X] = graph.op("Transpose", [node.input[X]], f"{name}_x_time_major", perm=[1, 0, 2])
    for slot in state_inputs(node):
        state = input_at(node, slot)
        if state:
            node.input[slot] = graph.op("Transpose", [state], f"{name}_state_in", perm=[1, 0, 2])
    outputs = list(node.output)
    if len(outputs) > Y and outputs[Y]:
        time_major_y = graph.unique(f"{name}_y_time_major")
        node.output[Y] = time_major_y
        graph.op("Transpose", [time_major_y], f"{name}_y_batch_first", output=outputs[Y], perm=[2, 0, 1, 3])
    for slot in state_outputs(node):
        if len(outputs) > slot and outputs[slot]:
            time_major_state = graph.unique(f"{name}_state_out")
            node.output[slot] = time_major_state
            graph.op("Transpose", [time_major_state], f"{name}_state_batch_first", output=outputs[slot],
                     perm=[1, 0, 2])
    remove_attribute(node, "layout")  # 0 is the default
