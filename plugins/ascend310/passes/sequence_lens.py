"""drop_full_length_sequence_lens: remove sequence lengths that provably equal the full time length.

An RNN reading ``sequence_lens`` where every length equals T computes exactly what it computes without them,
and a ReverseSequence whose lengths all equal T is a plain reversal. The pass only acts where it can prove
that equality from the graph and the static time length T of the node's input:

- the lengths are a constant, every element equal to T; or
- they are computed only from graph inputs that the ``full_length_inputs`` option asserts are full-length
  (``{"lengths": "features:0"}``: every element of input ``lengths`` equals the size of input ``features``
  along axis 0), plus Shape/Size of tensors whose shapes are static. The asserted inputs must have static
  shapes; the computation is then evaluated once with ONNX Runtime on those values and compared with T.

Dynamic input shapes, lengths that depend on any other data, or lengths that do not all equal T leave the
node untouched. The assertion is the user's: feeding shorter sequences to the rewritten model is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from porter.api import InputError
from porter_ascend310.passes import rnn
from porter_ascend310.passes.graph import Graph, attribute, input_at
from porter_ascend310.passes.layout import Shapes

SHAPE_READERS = {"Shape", "Size"}


@dataclass
class LengthUse:
    node: onnx.NodeProto
    lengths: str
    full_length: int
    time_axis: int


def drop_full_length_sequence_lens(model: onnx.ModelProto, full_length_inputs=None) -> onnx.ModelProto:
    graph = Graph(model)
    shapes = Shapes(model)
    asserted = _asserted_values(graph, full_length_inputs or {})
    uses = _length_uses(graph, shapes)
    values = _evaluate(graph, shapes, {use.lengths for use in uses}, asserted)
    changed = False
    for use in uses:
        value = values.get(use.lengths)
        if value is None or value.size == 0 or not np.all(value == use.full_length):
            continue
        if use.node.op_type == "ReverseSequence":
            output = use.node.output[0]
            graph.remove([use.node])
            graph.slice(use.node.input[0], [-1], [np.iinfo(np.int64).min], [use.time_axis], [-1],
                        hint=f"{use.node.name or 'ReverseSequence'}_full_length", output=output)
        else:
            use.node.input[rnn.SEQUENCE_LENS] = ""
        changed = True
    if changed:
        graph.clear_value_info()
    return graph.finish()


def _asserted_values(graph: Graph, assertions) -> dict[str, np.ndarray]:
    """Each asserted length input filled with its full length, from the option ``{input: "tensor:axis"}``."""
    if not isinstance(assertions, dict):
        raise InputError(f"expected a mapping of length input to 'tensor:axis', got {assertions!r}",
                         field="drop_full_length_sequence_lens.full_length_inputs")
    inputs = graph.graph_inputs()
    values = {}
    for name, where in assertions.items():
        field = f"drop_full_length_sequence_lens.full_length_inputs.{name}"
        tensor, _, axis_text = str(where).rpartition(":")
        if name not in inputs:
            raise InputError(f"{name!r} is not a graph input; inputs are {sorted(inputs)}", field=field)
        if tensor not in inputs or not axis_text.lstrip("-").isdigit():
            raise InputError(f"{where!r} should be 'input:axis' with input one of {sorted(inputs)}", field=field)
        length = _static_dims(inputs[tensor])
        size = _static_dims(inputs[name])
        axis = int(axis_text)
        if length is None or size is None or not -len(length) <= axis < len(length):
            continue  # dynamic shapes: nothing can be proven, so nothing is dropped
        dtype = helper.tensor_dtype_to_np_dtype(inputs[name].type.tensor_type.elem_type)
        values[name] = np.full(size, length[axis], dtype=dtype)
    return values


def _static_dims(value: onnx.ValueInfoProto) -> list[int] | None:
    dims = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
    static = [d for d in dims if d is not None and d > 0]
    return static if len(static) == len(dims) else None


def _length_uses(graph: Graph, shapes: Shapes) -> list[LengthUse]:
    uses = []
    for node in graph.graph.node:
        if rnn.is_recurrent(node) and input_at(node, rnn.SEQUENCE_LENS):
            axis = 1 if rnn.is_batch_first(node) else 0
            full = shapes.static_dim(node.input[rnn.X], axis)
            if full is not None:
                uses.append(LengthUse(node, node.input[rnn.SEQUENCE_LENS], full, axis))
        elif node.op_type == "ReverseSequence":
            axis = int(attribute(node, "time_axis", 0))
            full = shapes.static_dim(node.input[0], axis)
            if full is not None:
                uses.append(LengthUse(node, node.input[1], full, axis))
    return uses


def _evaluate(graph: Graph, shapes: Shapes, tensors: set[str], asserted: dict) -> dict[str, np.ndarray]:
    """Values of the length tensors that depend only on constants, asserted inputs and static shapes."""
    producers = graph.producers()
    values = {}
    computable = []
    for tensor in tensors:
        constant = graph.constant(tensor, producers)
        if constant is not None:
            values[tensor] = constant
        elif _provable(graph, shapes, tensor, asserted, producers, set()):
            computable.append(tensor)
    if computable:
        values.update(_run(graph, shapes, computable, asserted))
    return values


def _provable(graph, shapes, tensor, asserted, producers, seen) -> bool:
    if tensor in seen or not tensor:
        return True
    seen.add(tensor)
    if tensor in asserted or graph.constant(tensor, producers) is not None:
        return True
    node = producers.get(tensor)
    if node is None:
        return False  # a graph input nobody vouched for
    if node.op_type in SHAPE_READERS:
        dims = shapes.dims.get(node.input[0])
        return dims is not None and all(isinstance(d, int) and d >= 0 for d in dims)
    if node.attribute and any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute):
        return False  # control flow: not followed
    return all(_provable(graph, shapes, name, asserted, producers, seen) for name in node.input)


def _run(graph: Graph, shapes: Shapes, tensors: list[str], asserted: dict) -> dict[str, np.ndarray]:
    """Evaluate ``tensors`` in a model of just their ancestors, Shape/Size of static tensors made constants."""
    import onnxruntime as ort

    producers = graph.producers()
    nodes, initializers, seen = [], [], set()
    stack = list(tensors)
    while stack:
        tensor = stack.pop()
        if tensor in seen or not tensor:
            continue
        seen.add(tensor)
        node = producers.get(tensor)
        if node is None:
            initializer = graph.initializer(tensor)
            if initializer is not None:
                initializers.append(initializer)
            continue
        if node.op_type in SHAPE_READERS:
            dims = np.asarray(shapes.dims[node.input[0]], dtype=np.int64)
            if node.op_type == "Size":
                value = np.asarray(int(np.prod(dims)), dtype=np.int64)
            else:
                value = dims[attribute(node, "start", 0):attribute(node, "end", None)]
            nodes.append(helper.make_node("Constant", [], [tensor], value=onnx.numpy_helper.from_array(value)))
            continue
        nodes.append(node)
        stack.extend(node.input)
    inputs = graph.graph_inputs()
    feeds = {name: value for name, value in asserted.items() if name in seen}
    sub = helper.make_graph(list(reversed(nodes)), "lengths", [inputs[name] for name in feeds],
                            [helper.make_empty_tensor_value_info(t) for t in tensors], initializers)
    model = helper.make_model(sub, opset_imports=graph.model.opset_import, ir_version=graph.model.ir_version)
    Graph(model).toposort()
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return dict(zip(tensors, session.run(tensors, feeds)))
