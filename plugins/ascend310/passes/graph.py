"""A thin editing layer over an ``onnx.ModelProto`` shared by the graph passes.

Passes work on the raw protobuf (not onnx-graphsurgeon) so that names, attributes and initializers they do
not touch survive byte for byte. The helpers here build opset-correct nodes (Squeeze, Slice, ReduceSum and Pad
moved attributes to inputs over the opsets) and keep the node list topologically sorted.
"""
from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import onnx
from onnx import helper, numpy_helper

from porter.api import InputError

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max

# Node types that only move data around without changing values; used when tracing a tensor's origin.
VALUE_PRESERVING = {"Identity"}


def attribute(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def set_attribute(node: onnx.NodeProto, name: str, value) -> None:
    remove_attribute(node, name)
    node.attribute.append(helper.make_attribute(name, value))


def remove_attribute(node: onnx.NodeProto, name: str) -> None:
    kept = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(kept)


def input_at(node: onnx.NodeProto, index: int) -> str:
    """The name of an optional input, or '' when the node leaves it out."""
    return node.input[index] if len(node.input) > index else ""


class Graph:
    """A model being edited: lookups of producers, consumers and constants, plus node builders."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
        if opset is None:
            raise InputError("the model imports no default-domain opset", field="opset_import")
        self.opset: int = opset
        self._names = self._all_names()
        self._counter = itertools.count()

    # --- lookups -----------------------------------------------------------------------------------------

    def _all_names(self) -> set[str]:
        names = {t.name for t in self.graph.initializer}
        names.update(v.name for v in self.graph.input)
        names.update(v.name for v in self.graph.output)
        for node in self.graph.node:
            names.update(node.output)
            names.add(node.name)
        return names

    def producers(self) -> dict[str, onnx.NodeProto]:
        return {out: node for node in self.graph.node for out in node.output if out}

    def consumers(self) -> dict[str, list[onnx.NodeProto]]:
        users: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        for node in self.graph.node:
            for name in node.input:
                if name:
                    users[name].append(node)
        return users

    def graph_outputs(self) -> set[str]:
        return {v.name for v in self.graph.output}

    def graph_inputs(self) -> dict[str, onnx.ValueInfoProto]:
        initialized = {t.name for t in self.graph.initializer}
        return {v.name: v for v in self.graph.input if v.name not in initialized}

    def initializer(self, name: str) -> onnx.TensorProto | None:
        for tensor in self.graph.initializer:
            if tensor.name == name:
                return tensor
        return None

    def constant(self, name: str, producers: dict | None = None) -> np.ndarray | None:
        """The value of a tensor fixed at export time (initializer, Constant node, Identity of one), else None."""
        if not name:
            return None
        if name in self.graph_inputs():
            return None  # an input may override an initializer of the same name
        tensor = self.initializer(name)
        if tensor is not None:
            return numpy_helper.to_array(tensor)
        producers = self.producers() if producers is None else producers
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type == "Constant":
            return _constant_node_value(node)
        if node.op_type in VALUE_PRESERVING:
            return self.constant(node.input[0], producers)
        return None

    def required_constant(self, name: str, reader: onnx.NodeProto, producers: dict | None = None) -> np.ndarray:
        """``constant`` of a tensor the pass already checked is fixed: losing it since is a bug, not a skip."""
        value = self.constant(name, producers)
        if value is None:
            # the pass's own bug, not the model's: the stage fails with this message rather than exit 2
            raise ValueError(f"{reader.op_type} node {reader.name!r} reads {name!r}, which is no longer a constant "
                             "fixed at export time")
        return value

    def is_used(self, name: str, consumers: dict | None = None) -> bool:
        if not name:
            return False
        consumers = self.consumers() if consumers is None else consumers
        return bool(consumers.get(name)) or name in self.graph_outputs()

    # --- names and constants -------------------------------------------------------------------------------

    def unique(self, hint: str) -> str:
        base = hint
        name = base
        while name in self._names:
            name = f"{base}_{next(self._counter)}"
        self._names.add(name)
        return name

    def add_initializer(self, array: np.ndarray, hint: str) -> str:
        name = self.unique(hint)
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints(self, values, hint: str) -> str:
        return self.add_initializer(np.asarray(values, dtype=np.int64), hint)

    # --- node builders ---------------------------------------------------------------------------------------

    def add_node(self, op_type: str, inputs, outputs=None, hint: str | None = None, **attrs) -> onnx.NodeProto:
        """Append a node; ``outputs`` may be names, or None for one fresh output named after ``hint``."""
        hint = hint or op_type
        if outputs is None:
            outputs = [self.unique(f"{hint}_out")]
        node = helper.make_node(op_type, list(inputs), list(outputs), name=self.unique(hint), **attrs)
        self._names.update(outputs)
        self.graph.node.append(node)
        return node

    def op(self, op_type: str, inputs, hint: str | None = None, output: str | None = None, **attrs) -> str:
        """Append a one-output node and return its output name."""
        node = self.add_node(op_type, inputs, None if output is None else [output], hint, **attrs)
        return node.output[0]

    def squeeze(self, x: str, axes, hint: str, output: str | None = None) -> str:
        if self.opset >= 13:
            return self.op("Squeeze", [x, self.ints(axes, f"{hint}_axes")], hint, output)
        return self.op("Squeeze", [x], hint, output, axes=list(axes))

    def unsqueeze(self, x: str, axes, hint: str, output: str | None = None) -> str:
        if self.opset >= 13:
            return self.op("Unsqueeze", [x, self.ints(axes, f"{hint}_axes")], hint, output)
        return self.op("Unsqueeze", [x], hint, output, axes=list(axes))

    def reduce_sum(self, x: str, axes, keepdims: int, hint: str, output: str | None = None) -> str:
        if self.opset >= 13:
            return self.op("ReduceSum", [x, self.ints(axes, f"{hint}_axes")], hint, output, keepdims=keepdims)
        return self.op("ReduceSum", [x], hint, output, axes=list(axes), keepdims=keepdims)

    def slice(self, x: str, starts, ends, axes, steps=None, hint: str = "Slice", output: str | None = None) -> str:
        if self.opset < 10:
            if steps is not None and any(s != 1 for s in steps):
                raise InputError(f"reversing a tensor needs opset >= 10; the model has opset {self.opset}",
                                 field="opset_import")
            return self.op("Slice", [x], hint, output, starts=list(starts), ends=list(ends), axes=list(axes))
        inputs = [x, self.ints(starts, f"{hint}_starts"), self.ints(ends, f"{hint}_ends"),
                  self.ints(axes, f"{hint}_axes")]
        if steps is not None:
            inputs.append(self.ints(steps, f"{hint}_steps"))
        return self.op("Slice", inputs, hint, output)

    def reverse_time(self, x: str, hint: str, output: str | None = None) -> str:
        """Reverse axis 0 entirely (every sequence full length)."""
        return self.slice(x, [-1], [INT64_MIN], [0], [-1], hint, output)

    def pad_last_axis(self, x: str, rank: int, amount: int, hint: str, output: str | None = None) -> str:
        """Zero-pad the end of the last axis by ``amount``."""
        pads = [0] * (2 * rank)
        pads[2 * rank - 1] = amount
        if self.opset >= 11:
            return self.op("Pad", [x, self.ints(pads, f"{hint}_pads")], hint, output, mode="constant")
        return self.op("Pad", [x], hint, output, mode="constant", pads=pads, value=0.0)

    # --- edits -----------------------------------------------------------------------------------------------

    def replace_input(self, old: str, new: str, only=None) -> None:
        """Point every consumer (or just the nodes in ``only``) of ``old`` at ``new``."""
        for node in self.graph.node if only is None else only:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new

    def remove(self, nodes) -> None:
        # Matched by content (protobuf may hand out a fresh wrapper per access) and deleted in place: rebuilding
        # the list would copy the messages and silently detach every node reference a pass still holds.
        doomed = {_node_key(n) for n in nodes}
        for index in reversed(range(len(self.graph.node))):
            if _node_key(self.graph.node[index]) in doomed:
                del self.graph.node[index]

    def prune(self) -> None:
        """Drop nodes whose outputs nobody uses, then initializers nobody reads."""
        outputs = self.graph_outputs()
        while True:
            used = {name for node in self.graph.node for name in node.input} | outputs
            dead = [n for n in self.graph.node if not any(o in used for o in n.output if o)]
            if not dead:
                break
            self.remove(dead)
        used = {name for node in self.graph.node for name in node.input} | outputs
        kept = [t for t in self.graph.initializer if t.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        # value_info of tensors that no longer exist would mislead later shape inference
        produced = {o for n in self.graph.node for o in n.output}
        infos = [v for v in self.graph.value_info if v.name in produced]
        del self.graph.value_info[:]
        self.graph.value_info.extend(infos)

    def clear_value_info(self) -> None:
        """Forget inferred shapes: a pass that changes a tensor's shape must not leave a stale record behind."""
        del self.graph.value_info[:]

    def toposort(self) -> None:
        available = {t.name for t in self.graph.initializer} | {v.name for v in self.graph.input} | {""}
        pending = list(self.graph.node)
        ordered = []
        while pending:
            progressed = []
            rest = []
            for node in pending:
                if all(name in available for name in node.input):
                    progressed.append(node)
                    available.update(node.output)
                else:
                    rest.append(node)
            if not progressed:
                missing = sorted({n for node in rest for n in node.input if n not in available})
                raise ValueError(f"graph has a cycle or reads undefined tensors: {missing[:5]}")
            ordered.extend(progressed)
            pending = rest
        del self.graph.node[:]
        self.graph.node.extend(ordered)  # copies: node references held before a toposort are stale after it

    def finish(self) -> onnx.ModelProto:
        self.prune()
        self.toposort()
        return self.model


def _node_key(node: onnx.NodeProto) -> tuple:
    return node.op_type, node.name, tuple(node.input), tuple(node.output)


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray | None:
    for attr in node.attribute:
        if attr.name == "value":
            return numpy_helper.to_array(attr.t)
        if attr.name == "value_float":
            return np.asarray(attr.f, dtype=np.float32)
        if attr.name == "value_floats":
            return np.asarray(list(attr.floats), dtype=np.float32)
        if attr.name == "value_int":
            return np.asarray(attr.i, dtype=np.int64)
        if attr.name == "value_ints":
            return np.asarray(list(attr.ints), dtype=np.int64)
    return None
