"""What a rewritten graph's tensors correspond to in the graph a pass started from.

Most passes keep tensor names, so the reference and a variant are matched by name. A pass that renames or
splits tensors records, in the model's ``metadata_props`` under :data:`PROVENANCE_KEY`, which earlier tensor each
new one stands for (and, for a split or a padded tensor, which slice of each side to compare). The metadata
travels inside the .onnx file, so it needs no side channel through the cache; the graph_fix stage carries
earlier entries forward when a pass rebuilds the model without them.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import onnx

PROVENANCE_KEY = "porter.provenance"

Slice = tuple[int, int, int]  # (axis, start, stop)


@dataclass(frozen=True)
class Provenance:
    """``tensor[slices]`` of the rewritten graph holds the values of ``source[source_slices]`` of the graph
    before (e.g. one direction's Y of a split LSTM is ``Y[:, 0:1]`` of the bidirectional node's Y)."""

    tensor: str
    source: str
    slices: tuple[Slice, ...] = ()
    source_slices: tuple[Slice, ...] = ()

    def to_json(self) -> dict:
        return {"source": self.source, "slices": [list(s) for s in self.slices],
                "source_slices": [list(s) for s in self.source_slices]}

    @classmethod
    def from_json(cls, tensor: str, data: Mapping) -> Provenance:
        def slices(key):
            return tuple((int(a), int(b), int(c)) for a, b, c in data.get(key, ()))
        return cls(tensor, str(data["source"]), slices("slices"), slices("source_slices"))


def read_provenance(model: onnx.ModelProto) -> dict[str, Provenance]:
    for prop in model.metadata_props:
        if prop.key == PROVENANCE_KEY:
            try:
                data = json.loads(prop.value)
            except ValueError:
                return {}
            return {name: Provenance.from_json(name, entry) for name, entry in data.items()}
    return {}


def _write(model: onnx.ModelProto, entries: Mapping[str, Provenance]) -> None:
    text = json.dumps({name: p.to_json() for name, p in sorted(entries.items())}, sort_keys=True)
    for prop in model.metadata_props:
        if prop.key == PROVENANCE_KEY:
            prop.value = text
            return
    model.metadata_props.add(key=PROVENANCE_KEY, value=text)


def note_provenance(model: onnx.ModelProto, entries: Iterable[Provenance]) -> None:
    """Record in ``model`` what some of its tensors stand for (for passes that rename or split tensors)."""
    current = read_provenance(model)
    current.update({p.tensor: p for p in entries})
    _write(model, current)


def _compose(new: Provenance, prior: Mapping[str, Provenance]) -> Provenance:
    """``new`` re-pointed past its source's own entry, where the two slicings compose without arithmetic."""
    earlier = prior.get(new.source)
    if earlier is None or earlier.tensor == new.tensor:
        return new
    if not new.source_slices and not earlier.slices:  # T[a] = S, S = R[d]
        return Provenance(new.tensor, earlier.source, new.slices, earlier.source_slices)
    if not new.slices and not new.source_slices:  # T = S, S[c] = R[d]
        return Provenance(new.tensor, earlier.source, earlier.slices, earlier.source_slices)
    if not earlier.slices and not earlier.source_slices:  # T[a] = S[b], S = R
        return Provenance(new.tensor, earlier.source, new.slices, new.source_slices)
    return new


def carry_provenance(prior: Mapping[str, Provenance], after: onnx.ModelProto) -> None:
    """Merge the entries earlier passes recorded (``prior``, read from the model the pass started from) into
    ``after``: those whose tensors ``after`` still has are kept unless the latest pass recorded its own, and the
    latest pass's entries that point at a tensor an earlier pass had renamed are followed back to its source."""
    current = read_provenance(after)
    if not prior and not current:
        return
    present = {name for node in after.graph.node for name in node.output} | {i.name for i in after.graph.input}
    merged = {name: p for name, p in prior.items() if name in present}
    merged.update({name: _compose(p, prior) for name, p in current.items()})
    _write(after, merged)
