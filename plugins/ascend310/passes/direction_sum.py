"""direction_sum_to_add: summing a bidirectional RNN's two directions without the Reshape/ReduceSum detour.

Exporters sum directions as ``Transpose → Reshape [T,B,2H] → Reshape [T,B,2,H] → ReduceSum(axis 2)`` (torch's
``view(T, B, 2, H).sum(2)``) or as ``Slice[..., :H] + Slice[..., H:]``. Both are traced back, axis by axis, to
the tensor that holds the directions on one axis: a bidirectional node's Y ([T, 2, B, H]) or the Concat that
split_bidirectional_lstm builds from two [T, 1, B, H] outputs. The sum then becomes ``Add(Squeeze(Y_fwd),
Squeeze(Y_bwd))`` for a Concat, or ``ReduceSum(Y, axis 1)`` for an unsplit node, followed by the Transpose /
Unsqueeze that gives the original result's axis order. Only sums proven to run over exactly the direction axis
are rewritten; everything else is left alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import onnx

from porter_ascend310.passes import rnn
from porter_ascend310.passes.graph import INT64_MAX, Graph, attribute
from porter_ascend310.passes.layout import (
    LAYOUT_OPS,
    Atom,
    Shapes,
    layout_after,
    normalize_axis,
    reduce_axes,
    source_layout,
)


@dataclass
class DirectionSource:
    tensor: str
    axis: int
    parts: list[str] | None  # Concat inputs, one per direction; None for an RNN node's Y


@dataclass(frozen=True)
class Reorder:
    """A Gather along a non-direction axis on the way (e.g. torch restoring the batch order after packing)."""

    old: Atom
    new: Atom
    indices: str


@dataclass(frozen=True)
class Trace:
    """A tensor reached from the source: its layout, the direction it holds (None: all) and the reorders."""

    tensor: str
    layout: tuple
    direction: int | None = None
    reorders: tuple = ()


def direction_sum_to_add(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = Graph(model)
    shapes = Shapes(model)
    changed = False
    for source in _direction_sources(graph, shapes):
        for _ in range(len(graph.graph.node)):  # each rewrite removes one sum; bounded in any case
            if not _rewrite_one_sum(graph, shapes, source):
                break
            changed = True
    if changed:
        graph.clear_value_info()
    return graph.finish()


def _direction_sources(graph: Graph, shapes: Shapes) -> list[DirectionSource]:
    sources = []
    for node in graph.graph.node:
        if rnn.is_recurrent(node) and rnn.num_directions(node) == 2 and node.output and node.output[0]:
            sources.append(DirectionSource(node.output[0], 2 if rnn.is_batch_first(node) else 1, None))
        elif node.op_type == "Concat" and len(node.input) >= 2:
            rank = shapes.rank(node.output[0])
            if rank is None:
                continue
            axis = normalize_axis(int(attribute(node, "axis")), rank)
            if all(shapes.static_dim(part, axis) == 1 for part in node.input):
                sources.append(DirectionSource(node.output[0], axis, list(node.input)))
    return sources


def _rewrite_one_sum(graph: Graph, shapes: Shapes, source: DirectionSource) -> bool:
    """Find one sum over the source's direction axis and rewrite it; False when none is left."""
    root = source_layout(shapes, source.tensor, source.tensor)
    if root is None or len(root[source.axis]) != 1:
        return False
    direction_atom = root[source.axis][0]
    count = direction_atom.size.static
    if count is None or count < 2:
        return False
    producers = graph.producers()
    consumers = graph.consumers()
    frontier = [Trace(source.tensor, root)]
    selections: dict[str, Trace] = {}
    while frontier:
        trace = frontier.pop()
        if trace.direction is not None:
            selections[trace.tensor] = trace
        for user in consumers.get(trace.tensor, []):
            if user.input[0] != trace.tensor:
                continue  # not the data input (Adds of two selections are matched below)
            following = _follow(graph, shapes, user, trace, direction_atom, count, producers)
            if following is not None:
                frontier.append(following)
            elif (trace.direction is None and user.op_type == "ReduceSum" and trace.tensor != source.tensor):
                # (a ReduceSum right on the source is already the direct form this pass emits)
                target = _reduced_layout(graph, user, trace.layout, direction_atom, producers)
                if target is not None and _emit_sum(graph, source, root, target, trace.reorders, user, producers):
                    return True
    if count != 2:
        return False
    for trace in selections.values():
        for user in consumers.get(trace.tensor, []):
            if user.op_type != "Add" or len(user.input) != 2:
                continue
            first, second = (selections.get(name) for name in user.input)
            if first is None or second is None or first.layout != second.layout:
                continue
            if {first.direction, second.direction} != {0, 1} or first.reorders != second.reorders:
                continue
            if _emit_sum(graph, source, root, first.layout, first.reorders, user, producers):
                return True
    return False


def _follow(graph, shapes, node, trace: Trace, direction_atom, count, producers) -> Trace | None:
    """The trace of ``node``'s output when the node keeps the direction axis traceable, else None."""
    output = node.output[0]
    if node.op_type in LAYOUT_OPS:
        after = layout_after(graph, shapes, node, trace.layout, producers)
        return None if after is None else Trace(output, after, trace.direction, trace.reorders)
    if node.op_type == "Gather":
        axis = normalize_axis(int(attribute(node, "axis", 0)), len(trace.layout))
        group = trace.layout[axis]
        if group == (direction_atom,) and trace.direction is None:
            picked = _selected(graph, node, trace.layout, direction_atom, count, producers)
            return None if picked is None else Trace(output, picked[1], picked[0], trace.reorders)
        index_sizes = shapes.sizes(node.input[1])
        if index_sizes is None or len(index_sizes) != 1 or index_sizes[0] is None:
            return None
        if not group and index_sizes[0].is_one:
            return Trace(output, trace.layout, trace.direction, trace.reorders)  # any valid pick of 1 is the identity
        if len(group) != 1:
            return None
        new = Atom(f"{output}:{axis}", index_sizes[0])
        layout = trace.layout[:axis] + ((new,),) + trace.layout[axis + 1:]
        return Trace(output, layout, trace.direction, trace.reorders + (Reorder(group[0], new, node.input[1]),))
    if node.op_type == "Slice" and trace.direction is None:
        picked = _selected(graph, node, trace.layout, direction_atom, count, producers)
        return None if picked is None else Trace(output, picked[1], picked[0], trace.reorders)
    return None


def _reduced_layout(graph, node, layout, direction_atom, producers):
    """The output layout of a ReduceSum that sums exactly the direction atom, else None."""
    axes = reduce_axes(graph, node, producers)
    if not axes:
        return None
    axes = {normalize_axis(a, len(layout)) for a in axes}
    reduced_atoms = [atom for axis in axes for atom in layout[axis] if not atom.size.is_one]
    if reduced_atoms != [direction_atom]:
        return None
    keepdims = int(attribute(node, "keepdims", 1))
    return tuple(() if i in axes else group for i, group in enumerate(layout) if keepdims or i not in axes)


def _selected(graph, node, layout, direction_atom, count, producers) -> tuple[int, tuple] | None:
    """The direction a Gather or Slice picks out, with the layout of what it returns, else None."""
    if node.op_type == "Gather":
        axis = normalize_axis(int(attribute(node, "axis", 0)), len(layout))
        index = graph.constant(node.input[1], producers)
        if index is None or layout[axis] != (direction_atom,) or index.size != 1:
            return None
        direction = int(index.reshape(-1)[0]) % count
        rest = list(layout)
        if index.ndim == 0:
            del rest[axis]
        else:
            rest[axis] = ()
        return direction, tuple(rest)
    bounds = _slice_bounds(graph, node, producers)
    if bounds is None:
        return None
    axis, start, end = bounds
    axis = normalize_axis(axis, len(layout))
    group = layout[axis]
    if not group or group[0] != direction_atom:
        return None
    inner = 1
    for atom in group[1:]:
        if atom.size.static is None:
            return None
        inner *= atom.size.static
    total = count * inner
    start = start + total if start < 0 else start
    end = min(end + total if end < 0 else end, total)
    if start % inner or end - start != inner:
        return None
    rest = list(layout)
    rest[axis] = group[1:]
    return start // inner, tuple(rest)


def _slice_bounds(graph: Graph, node, producers):
    """(axis, start, end) of a one-axis, step-1 Slice with constant bounds, else None."""
    if len(node.input) == 1:  # opset < 10: attributes
        starts, ends, axes, steps = attribute(node, "starts"), attribute(node, "ends"), attribute(node, "axes"), None
    else:
        names = (list(node.input[1:]) + [""] * 4)[:4]
        starts, ends, axes, steps = (graph.constant(name, producers) if name else None for name in names)
        if any(name and value is None for name, value in zip(names, (starts, ends, axes, steps))):
            return None  # a bound computed at run time
    if starts is None or ends is None:
        return None
    starts, ends = list(map(int, list(starts))), list(map(int, list(ends)))
    axes = list(map(int, list(axes))) if axes is not None else list(range(len(starts)))
    if len(starts) != 1 or (steps is not None and list(map(int, list(steps))) != [1]):
        return None
    return axes[0], starts[0], min(ends[0], INT64_MAX)


def _emit_sum(graph: Graph, source: DirectionSource, root, target, reorders, node, producers) -> bool:
    """Replace ``node`` (the ReduceSum or Add) by a direct sum over the source's direction axis."""
    if any(len(group) > 1 for group in target):
        return False  # the sum's result merges axes: would need a Reshape, not worth it
    # the summed tensor's axes, one atom each (None for a size-1 axis), after the reorders
    atoms = [group[0] if group else None for i, group in enumerate(root) if i != source.axis]
    current = list(atoms)
    for reorder in reorders:
        if reorder.old not in current:
            return False
        current[current.index(reorder.old)] = reorder.new
    wanted = [group[0] for group in target if group]
    kept = [atom for atom in current if atom is not None and not atom.size.is_one]
    if len(wanted) != len(kept) or set(wanted) != set(kept):
        return False
    hint = (node.name or node.op_type) + "_direction_sum"
    if source.parts is not None:
        terms = [_squeezed(graph, part, source.axis, hint, producers) for part in source.parts]
        summed = terms[0]
        for term in terms[1:]:
            summed = graph.op("Add", [summed, term], hint)
    else:
        summed = graph.reduce_sum(source.tensor, [source.axis], 0, hint)
    for reorder in reorders:
        axis = atoms.index(reorder.old)
        summed = graph.op("Gather", [summed, reorder.indices], f"{hint}_reorder", axis=axis)
        atoms[axis] = reorder.new
    ones = [i for i, atom in enumerate(atoms) if atom is None or atom.size.is_one]
    if ones:
        summed = graph.squeeze(summed, ones, f"{hint}_drop_unit_axes")
    perm = [kept.index(atom) for atom in wanted]
    if perm != sorted(perm):
        summed = graph.op("Transpose", [summed], f"{hint}_order", perm=perm)
    units = [i for i, group in enumerate(target) if not group]
    if units:
        summed = graph.unsqueeze(summed, units, f"{hint}_unit_axes")
    output = node.output[0]
    graph.remove([node])
    last = graph.graph.node[-1]
    assert last.output[0] == summed
    last.output[0] = output
    return True


def _squeezed(graph: Graph, part: str, axis: int, hint: str, producers) -> str:
    """``part`` without its size-1 direction axis, reusing the input of an Unsqueeze that added it."""
    producer = producers.get(part)
    if producer is not None and producer.op_type == "Unsqueeze":
        axes = attribute(producer, "axes")
        if axes is None and len(producer.input) > 1:
            value = graph.constant(producer.input[1], producers)
            axes = None if value is None else [int(a) for a in value.reshape(-1)]
        if axes is not None and list(axes) == [axis]:
            return producer.input[0]
    return graph.squeeze(part, [axis], f"{hint}_squeeze")
