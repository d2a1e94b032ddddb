"""Which axis of a tensor holds what: symbolic shapes and axis tracking through Reshape and Transpose.

A pass that removes a Reshape/Transpose chain, or moves a per-channel operation across one, must prove the
chain keeps the axis it cares about (BatchNorm's channels, an LSTM's directions). Shapes come from ONNX
Runtime's symbolic shape inference, which resolves the Shape→Gather→Concat arithmetic exporters emit for
dynamic Reshapes (dims like ``B*T``). Each source axis becomes an *atom* (a label and a size); a tensor's
*layout* is one tuple of atoms per axis, in row-major order. A Reshape keeps the atoms' order and only
regroups them, which is checked by multiplying sizes symbolically; anything that cannot be proven makes the
tracking return None, and the pass then leaves that spot alone.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import onnx

from porter_ascend310.passes.graph import Graph, attribute


@dataclass(frozen=True)
class Size:
    """A dimension as a monomial: ``coefficient * prod(symbol ** power)``."""

    coefficient: int
    symbols: tuple[tuple[str, int], ...] = ()

    @staticmethod
    def of(dim) -> "Size | None":
        if dim is None:
            return None
        if isinstance(dim, int):
            return Size(dim)
        text = _strip_parentheses(str(dim).replace(" ", ""))
        if not text:
            return None
        coefficient = 1
        symbols: Counter = Counter()
        # Split products at the top level only: "batch*(floor(time/2-1/2)+1)" has two factors, and any factor
        # that is not a number (a sum, a floor, ...) stays one opaque symbol.
        for factor in _top_level_factors(text):
            factor = _strip_parentheses(factor)
            if factor.isdigit():
                coefficient *= int(factor)
            else:
                symbols[factor] += 1
        return Size(coefficient, tuple(sorted(symbols.items())))

    def __mul__(self, other: "Size") -> "Size":
        symbols = Counter(dict(self.symbols))
        symbols.update(dict(other.symbols))
        return Size(self.coefficient * other.coefficient, tuple(sorted(symbols.items())))

    def divides(self, other: "Size") -> bool:
        """Whether ``other / self`` is again a monomial with a whole coefficient."""
        if self.coefficient == 0 or other.coefficient % self.coefficient:
            return False
        mine = dict(self.symbols)
        theirs = dict(other.symbols)
        return all(theirs.get(s, 0) >= p for s, p in mine.items())

    @property
    def is_one(self) -> bool:
        return self.coefficient == 1 and not self.symbols

    @property
    def static(self) -> int | None:
        return None if self.symbols else self.coefficient


def _top_level_factors(text: str) -> list[str]:
    factors, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and char in "+-/" and index > 0:
            return [text]  # a sum or quotient at the top level: not a product
        if depth == 0 and char == "*":
            if text[index + 1:index + 2] == "*" or text[index - 1:index] == "*":
                return [text]  # a power
            factors.append(text[start:index])
            start = index + 1
    factors.append(text[start:])
    return factors


def _strip_parentheses(text: str) -> str:
    """``(x)`` → ``x`` while the outer parentheses enclose the whole text."""
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for index, char in enumerate(text):
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth == 0 and index < len(text) - 1:
                return text  # "(a)*(b)": the first ")" closes before the end
        text = text[1:-1]
    return text


@dataclass(frozen=True)
class Atom:
    label: str
    size: Size


Layout = tuple  # tuple[tuple[Atom, ...], ...]: one tuple of atoms per axis


class Shapes:
    """Symbolic shapes of every tensor in a model, as inferred when the pass started."""

    def __init__(self, model: onnx.ModelProto):
        self.dims: dict[str, list] = {}
        self.types: dict[str, int] = {}
        inferred = _infer(model)
        for collection in (inferred.graph.input, inferred.graph.output, inferred.graph.value_info):
            for value in collection:
                tensor_type = value.type.tensor_type
                if not value.type.HasField("tensor_type"):
                    continue
                self.types[value.name] = tensor_type.elem_type
                if tensor_type.HasField("shape"):
                    self.dims[value.name] = [
                        d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                        for d in tensor_type.shape.dim
                    ]
        for tensor in inferred.graph.initializer:
            self.dims[tensor.name] = list(tensor.dims)
            self.types[tensor.name] = tensor.data_type

    def sizes(self, name: str) -> list[Size | None] | None:
        dims = self.dims.get(name)
        return None if dims is None else [Size.of(d) for d in dims]

    def known_sizes(self, name: str) -> list[Size] | None:
        """The size of every axis, or None when the shape or any one of its dimensions is unknown."""
        sizes = self.sizes(name)
        if sizes is None:
            return None
        known = [s for s in sizes if s is not None]
        return known if len(known) == len(sizes) else None

    def rank(self, name: str) -> int | None:
        dims = self.dims.get(name)
        return None if dims is None else len(dims)

    def static_dim(self, name: str, axis: int) -> int | None:
        dims = self.dims.get(name)
        if dims is None or not -len(dims) <= axis < len(dims):
            return None
        dim = dims[axis]
        return dim if isinstance(dim, int) and dim > 0 else None


def _infer(model: onnx.ModelProto) -> onnx.ModelProto:
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # noqa: BLE001 - symbolic inference gives up on some ops; fall back to onnx's own
        try:
            return onnx.shape_inference.infer_shapes(model, data_prop=True)
        except Exception:  # noqa: BLE001
            return model


def source_layout(shapes: Shapes, name: str, tag: str) -> Layout | None:
    """Give each axis of ``name`` its own atom, labelled ``tag:axis``."""
    sizes = shapes.known_sizes(name)
    if sizes is None:
        return None
    # size-1 axes get no atom (as in regroup): they hold no arrangement worth tracking
    return tuple(() if size.is_one else (Atom(f"{tag}:{i}", size),) for i, size in enumerate(sizes))


def regroup(layout: Layout, out_sizes) -> Layout | None:
    """The layout after a row-major reshape to ``out_sizes``, if every new axis is a run of whole atoms."""
    if out_sizes is None or any(s is None for s in out_sizes):
        return None
    atoms = [a for group in layout for a in group if not a.size.is_one]
    groups = []
    position = 0
    for size in out_sizes:
        taken = []
        product = Size(1)
        while product != size:
            if position >= len(atoms):
                return None
            product = product * atoms[position].size
            taken.append(atoms[position])
            position += 1
            if not product.divides(size):
                return None
        groups.append(tuple(taken))
    if position != len(atoms):
        return None
    return tuple(groups)


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def reduce_axes(graph: Graph, node: onnx.NodeProto, producers) -> list[int] | None:
    """The constant axes of a Reduce* node (attribute before opset 13 / 18, input after), or None."""
    axes = attribute(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        value = graph.constant(node.input[1], producers)
        if value is None:
            return None
        axes = [int(a) for a in value.reshape(-1)]
    if axes is None:
        return None  # reduce over everything (or nothing): not a per-axis reduction we rewrite
    return list(axes)


# Ops through which a tensor keeps its element values and only changes its arrangement.
LAYOUT_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"}


def layout_after(graph: Graph, shapes: Shapes, node: onnx.NodeProto, layout: Layout, producers) -> Layout | None:
    """The layout of ``node``'s output given the layout of its data input (input 0), or None if unknown."""
    output = node.output[0]
    if node.op_type == "Identity":
        return layout
    if node.op_type == "Transpose":
        perm = attribute(node, "perm")
        if perm is None:
            perm = list(reversed(range(len(layout))))
        if len(perm) != len(layout):
            return None
        return tuple(layout[p] for p in perm)
    if node.op_type in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
        return regroup(layout, shapes.sizes(output))
    return None
