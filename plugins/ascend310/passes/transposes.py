"""cancel_transposes: consecutive Transposes composed into one, and Transposes that do nothing removed.

Each Transpose on Ascend is an ND-format op between fractal-format neighbours, so every one removed also
saves format conversions. ``Transpose(Transpose(x, p), q)`` equals ``Transpose(x, [p[i] for i in q])``; when
that composed permutation is the identity the pair disappears. A Transpose whose output is a graph output
is kept (its name is part of the model's interface).
"""
from __future__ import annotations

import onnx

from porter_ascend310.passes.graph import Graph, attribute, set_attribute


def cancel_transposes(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = Graph(model)
    while _simplify_one(graph):
        graph.prune()
    return graph.finish()


def _simplify_one(graph: Graph) -> bool:
    producers = graph.producers()
    outputs = graph.graph_outputs()
    for node in graph.graph.node:
        if node.op_type != "Transpose":
            continue
        perm = attribute(node, "perm")
        if perm is None:
            continue  # the default (reverse all axes) needs the rank; leave it
        perm = list(perm)
        producer = producers.get(node.input[0])
        if producer is not None and producer.op_type == "Transpose" and attribute(producer, "perm") is not None:
            first = list(attribute(producer, "perm"))
            node.input[0] = producer.input[0]
            set_attribute(node, "perm", [first[axis] for axis in perm])
            return True
        if perm == sorted(perm) and node.output[0] not in outputs:
            graph.replace_input(node.output[0], node.input[0])
            graph.remove([node])
            return True
    return False
