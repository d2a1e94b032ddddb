"""split_bidirectional_lstm: every bidirectional (or reverse) LSTM/GRU/RNN becomes forward-only nodes.

Ascend's DynamicRNN/DynamicGRUV2 compute one direction, time-major. A bidirectional node becomes a forward
node on the input and a forward node on the time-reversed input whose output is reversed back; Y is rebuilt
as Concat on the direction axis and Y_h/Y_c as Concat on axis 0, so every consumer sees the same tensors.

With sequence_lens (padded batches) each sequence is reversed within its own length by ReverseSequence: a
plain flip of the padded tensor would start the backward pass on padding. Both new nodes get the same
sequence_lens, so each stops at its sequence's end and leaves zeros past it, as the original does.
"""
from __future__ import annotations

import copy

import onnx
from onnx import TensorProto

from porter.api import Provenance, note_provenance
from porter_ascend310.passes import rnn
from porter_ascend310.passes.graph import Graph, attribute, input_at

# Attributes rewritten per direction; everything else (hidden_size, clip, linear_before_reset, ...) is copied.
PER_DIRECTION_ATTRIBUTES = {"direction", "activations", "activation_alpha", "activation_beta", "layout"}


def split_bidirectional_lstm(model: onnx.ModelProto, include_reverse: bool = True) -> onnx.ModelProto:
    graph = Graph(model)
    wanted = {"bidirectional", "reverse"} if include_reverse else {"bidirectional"}
    targets = [n for n in graph.graph.node if rnn.is_recurrent(n) and rnn.direction(n) in wanted]
    for node in targets:
        _split(graph, node)
    if targets:
        graph.clear_value_info()
    return graph.finish()


def _split(graph: Graph, node: onnx.NodeProto) -> None:
    activations = _per_direction_attributes(node)
    if activations is None:
        return  # activation parameters we cannot attribute to a direction: leave the node as it is
    if not any(graph.is_used(out) for out in node.output):
        return  # a dead node: finish() prunes it
    rnn.make_time_major(graph, node)
    name = node.name or node.op_type
    bidirectional = rnn.direction(node) == "bidirectional"
    producers = graph.producers()
    consumers = graph.consumers()
    used_outputs = [out if graph.is_used(out, consumers) else "" for out in node.output]

    sequence_lens = input_at(node, rnn.SEQUENCE_LENS)
    lengths64 = None
    if sequence_lens:
        # ReverseSequence takes int64 lengths, the RNN ops int32
        lengths64 = graph.op("Cast", [sequence_lens], f"{name}_lengths_int64", to=TensorProto.INT64)

    def reverse(tensor: str, hint: str, output: str | None = None, direction_axis: bool = False) -> str:
        if lengths64 is None:
            return graph.reverse_time(tensor, hint, output)
        if direction_axis:  # Y is [T, 1, B, H]; ReverseSequence wants time and batch as axes 0 and 1
            squeezed = graph.squeeze(tensor, [1], f"{hint}_squeeze")
            flipped = graph.op("ReverseSequence", [squeezed, lengths64], hint, batch_axis=1, time_axis=0)
            return graph.unsqueeze(flipped, [1], f"{hint}_unsqueeze", output)
        return graph.op("ReverseSequence", [tensor, lengths64], hint, output, batch_axis=1, time_axis=0)

    directions = [0, 1] if bidirectional else [0]
    per_direction_outputs = []
    for index in directions:
        backward = not bidirectional or index == 1
        suffix = "reverse" if backward else "forward"
        inputs = list(node.input)
        if backward:
            inputs[rnn.X] = reverse(node.input[rnn.X], f"{name}_reverse_input")
        for slot in range(rnn.W, len(inputs)):
            if slot == rnn.SEQUENCE_LENS or not inputs[slot] or not bidirectional:
                continue
            inputs[slot] = _direction_slice(graph, inputs[slot], index, f"{name}_{suffix}_in{slot}", producers)
        outputs = [graph.unique(f"{name}_{suffix}_out{i}") if out else "" for i, out in enumerate(used_outputs)]
        while outputs and not outputs[-1]:
            outputs.pop()
        new = onnx.helper.make_node(node.op_type, inputs, outputs, name=graph.unique(f"{name}_{suffix}"))
        new.attribute.extend(copy.deepcopy(a) for a in node.attribute if a.name not in PER_DIRECTION_ATTRIBUTES)
        new.attribute.append(onnx.helper.make_attribute("direction", "forward"))
        for attr_name, values in activations.items():
            new.attribute.append(onnx.helper.make_attribute(attr_name, values[1 if backward else 0]))
        graph.graph.node.append(new)
        per_direction_outputs.append((backward, outputs))

    # Reassemble the original outputs under their original names.
    y_parts = []
    for backward, outputs in per_direction_outputs:
        if len(outputs) > rnn.Y and outputs[rnn.Y]:
            if backward:
                final = None if bidirectional else used_outputs[rnn.Y]
                y_parts.append(reverse(outputs[rnn.Y], f"{name}_reverse_output", final, direction_axis=True))
            else:
                y_parts.append(outputs[rnn.Y])
    if bidirectional and used_outputs[rnn.Y]:
        graph.op("Concat", y_parts, f"{name}_directions", output=used_outputs[rnn.Y], axis=1)
        # later passes (direction_sum_to_add) drop the Concat and read the halves, or the backward half before
        # its Unsqueeze: say which half of Y each one is
        halves = []
        for i, part in enumerate(y_parts):
            halves.append(Provenance(part, used_outputs[rnn.Y], source_slices=((1, i, i + 1),)))
            made = next((n for n in graph.graph.node if part in n.output), None)
            if made is not None and made.op_type == "Unsqueeze":
                halves.append(Provenance(made.input[0], used_outputs[rnn.Y], source_slices=((1, i, i + 1),)))
        note_provenance(graph.model, halves)
    for slot in rnn.state_outputs(node):
        if len(used_outputs) <= slot or not used_outputs[slot]:
            continue
        parts = [outputs[slot] for _, outputs in per_direction_outputs]
        if bidirectional:
            graph.op("Concat", parts, f"{name}_state{slot}", output=used_outputs[slot], axis=0)
        else:
            graph.op("Identity", parts, f"{name}_state{slot}", output=used_outputs[slot])
    graph.remove([node])


def _per_direction_attributes(node: onnx.NodeProto) -> dict | None:
    """Activation attributes split as {name: (forward part, backward part)}, or None if ambiguous."""
    directions = rnn.num_directions(node)
    result = {}
    for attr_name in ("activations", "activation_alpha", "activation_beta"):
        values = attribute(node, attr_name)
        if values is None:
            continue
        values = [v.decode() if isinstance(v, bytes) else v for v in values]
        if len(values) % directions:
            return None
        half = len(values) // directions
        parts = [values[i * half:(i + 1) * half] for i in range(directions)]
        result[attr_name] = (parts[0], parts[-1])  # forward, backward (the same list for a one-direction node)
    return result


def _direction_slice(graph: Graph, tensor: str, index: int, hint: str, producers) -> str:
    """Direction ``index`` of a per-direction tensor, keeping the leading num_directions=1 axis."""
    value = graph.constant(tensor, producers)
    if value is not None:
        return graph.add_initializer(value[index:index + 1], hint)
    return graph.slice(tensor, [index], [index + 1], [0], hint=hint)
