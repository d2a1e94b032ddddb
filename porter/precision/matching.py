"""Which tensor of a variant's graph holds the values of which tensor of the reference graph.

By name first (porter's passes and the precision emulation keep the names of the tensors they rewrite), then by
the provenance passes record when they rename or split a tensor (:mod:`porter.precision.provenance`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from porter.precision.provenance import Slice, read_provenance

# Casts between float types are what precision emulation inserts; the layer a tensor belongs to is the node
# that computed it before those
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE,
                onnx.TensorProto.BFLOAT16}


@dataclass(frozen=True)
class TensorMatch:
    reference: str
    variant: str
    matched_by: str  # "name" or "provenance"
    slices: tuple[Slice, ...] = ()  # applied to the variant's tensor
    source_slices: tuple[Slice, ...] = ()  # applied to the reference's tensor


@dataclass(frozen=True)
class Producer:
    depth: int  # 0 for a graph input, else 1 + the node's position in the graph's (topological) node order
    node: str  # node name ("" for a graph input or an unnamed node)
    op_type: str  # "input" for a graph input


def tensor_order(model: onnx.ModelProto) -> list[str]:
    """Graph inputs, then every node output in node order."""
    inits = {i.name for i in model.graph.initializer}
    names = [i.name for i in model.graph.input if i.name not in inits]
    for node in model.graph.node:
        names.extend(n for n in node.output if n)
    return names


def producers(model: onnx.ModelProto) -> dict[str, Producer]:
    """Tensor name → what computed it; a float→float Cast is looked through to the node before it."""
    inits = {i.name for i in model.graph.initializer}
    out: dict[str, Producer] = {i.name: Producer(0, "", "input") for i in model.graph.input if i.name not in inits}
    for depth, node in enumerate(model.graph.node, start=1):
        for name in node.output:
            if name:
                out[name] = Producer(depth, node.name, node.op_type)
    for node in model.graph.node:
        if node.op_type == "Cast" and node.input and _float_cast(node):
            seen = set()
            source = node.input[0]
            # follow a chain of float Casts back to the node that computed the value
            while source in out and out[source].op_type == "Cast" and source not in seen:
                seen.add(source)
                cast = next((n for n in model.graph.node if source in n.output), None)
                if cast is None or not _float_cast(cast):
                    break
                source = cast.input[0]
            if source in out:
                out[node.output[0]] = out[source]
    return out


def _float_cast(node: onnx.NodeProto) -> bool:
    to = next((a.i for a in node.attribute if a.name == "to"), None)
    return to in _FLOAT_TYPES


def match_tensors(reference: onnx.ModelProto, variant: onnx.ModelProto) -> list[TensorMatch]:
    """One match per reference tensor found in the variant (several where a pass split it), in the reference's
    order."""
    variant_names = set(tensor_order(variant))
    provenance = read_provenance(variant)
    by_source: dict[str, list] = {}
    for entry in provenance.values():
        if entry.tensor in variant_names:
            by_source.setdefault(entry.source, []).append(entry)
    matches = []
    for name in tensor_order(reference):
        renamed = provenance.get(name)
        if name in variant_names and (renamed is None or renamed.source == name):
            matches.append(TensorMatch(name, name, "name", renamed.slices if renamed else (),
                                       renamed.source_slices if renamed else ()))
        for entry in by_source.get(name, ()):
            if entry.tensor != name:
                matches.append(TensorMatch(name, entry.tensor, "provenance", entry.slices, entry.source_slices))
    return matches


def take(array: np.ndarray, slices) -> np.ndarray:
    """``array`` restricted to ``(axis, start, stop)`` ranges."""
    index = [slice(None)] * array.ndim
    for axis, start, stop in slices:
        if axis >= array.ndim:
            return array
        index[axis] = slice(start, stop)
    return array[tuple(index)]


def aligned(reference: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """``variant`` in the reference's dtype, and in its shape where the two differ only by size-1 axes (one
    direction of an LSTM's [T, 2, B, H] against a pass's squeezed [T, B, H]): the values are the question."""
    if variant.dtype != reference.dtype:
        variant = variant.astype(reference.dtype)
    if (variant.shape != reference.shape and variant.size == reference.size
            and np.squeeze(variant).shape == np.squeeze(reference).shape):
        variant = variant.reshape(reference.shape)
    return variant
