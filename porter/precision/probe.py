"""Every intermediate tensor of an ONNX graph, captured on real inputs.

The graph is copied with each node output added as a graph output (ONNX Runtime infers their types), then run
on ONNX Runtime with graph optimisations off: a tensor that is a graph output cannot be fused away, and running
unoptimised keeps the tensors the graph names rather than ones the optimiser invents.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from porter.artifacts import InputSet, TensorSpec
from porter.onnx_io import feeds_for, model_io, session, stack_batch


@dataclass(frozen=True)
class Feed:
    """One input to run both graphs on: a single sample, or several samples zero-padded into one batch."""

    label: str
    samples: tuple[int, ...]

    @property
    def batched(self) -> bool:
        return len(self.samples) > 1


def choose_feeds(inputs: InputSet, specs: Sequence[TensorSpec], count: int) -> tuple[Feed, ...]:
    """The first ``count`` samples one at a time, and all of them as one padded batch when every input of
    the model has a dynamic batch axis (padding is where batched graphs go wrong)."""
    chosen = tuple(range(min(count, len(inputs))))
    feeds = [Feed(f"sample {i} ({inputs.sample_ids[i]})", (i,)) for i in chosen]
    if len(chosen) > 1 and specs and all(not isinstance(s.shape[0], int) for s in specs if s.shape):
        feeds.append(Feed(f"padded batch of samples {chosen[0]}-{chosen[-1]}", chosen))
    return tuple(feeds)


def feed_arrays(feed: Feed, inputs: InputSet, specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    samples = [inputs.load(i) for i in feed.samples]
    if feed.batched:
        return feeds_for(stack_batch(samples, [s.name for s in specs]), specs)
    return feeds_for(samples[0], specs)


def exposed(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are its own outputs and then every node output, in node order."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    seen = {o.name for o in copy.graph.output}
    for node in copy.graph.node:
        for name in node.output:
            if name and name not in seen:
                copy.graph.output.append(onnx.ValueInfoProto(name=name))
                seen.add(name)
    del copy.graph.value_info[:]  # stale shapes would contradict what ONNX Runtime infers
    return copy


class TensorProbe:
    """One graph with every tensor exposed, ready to run feed after feed (one feed's tensors in memory at a
    time)."""

    def __init__(self, model_path: Path, workdir: Path):
        model = onnx.load(str(model_path))
        self.model = model
        self.inputs, _ = model_io(model)
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / f"{model_path.stem}.all_tensors.onnx"
        onnx.save(exposed(model), str(path))
        try:
            self._session = session(path, opt_level="disable")
        finally:
            path.unlink()
        self._names = [o.name for o in self._session.get_outputs()]

    def run(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every floating-point tensor (graph inputs included) the graph computes on ``arrays``."""
        wanted = {s.name for s in self.inputs}
        feeds = {k: v for k, v in arrays.items() if k in wanted}
        values = dict(zip(self._names, self._session.run(None, feeds)))
        values.update(feeds)
        return {k: v for k, v in values.items()
                if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating)}


def input_specs(model_path: Path) -> tuple[TensorSpec, ...]:
    return model_io(onnx.load(str(model_path), load_external_data=False))[0]
