"""Running a target over an InputSet: one sample at a time, or sorted by length into padded batches.

Every target's run stage goes through :func:`run_samples`, so batch 1 and bucketed batching mean the same on
every target: the same batches, the same per-sample latency (a sample waits for its whole batch), the same
outputs on disk (each sample's slice of its batch, padded to the batch's length).
"""
from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from porter.artifacts import InputSet, TensorSpec, write_sample
from porter.errors import InputError
from porter.onnx_io import feeds_for, stack_batch
from porter.specs import Option

# the run flags every batching target accepts, so recipes read the same on every target
BATCHING_FLAGS = {
    "warmup": Option("int", 2, min=0, max=10_000, help="untimed runs before measuring"),
    "batching": Option("str", "none", ("none", "bucketed"),
                       "none: one sample at a time (padded to static shapes); bucketed: sort by length and batch "
                       "(needs dynamic batch and time axes)"),
    "batch_size": Option("int", 8, min=1, max=65_536, help="samples per batch when batching is bucketed"),
    "max_batch_frames": Option("int", 0, min=0, max=10**12,
                               help="bucketed batching: cap on samples x padded length, the length being "
                                              "a sample's extent along its inputs' dynamic non-batch axes (frames "
                                              "of a spectrogram), so batches of long samples hold fewer of them; "
                                              "0: no cap"),
}


@dataclass(frozen=True)
class BatchRun:
    """What a run over an InputSet measured."""

    latencies_ms: tuple[float, ...]  # per sample, in the InputSet's order
    wall_seconds: float
    batches: tuple[tuple[int, ...], ...]

    @property
    def largest_batch(self) -> int:
        return max(map(len, self.batches), default=0)


def padded_length(sample: Mapping[str, np.ndarray], specs: Sequence[TensorSpec]) -> int:
    """What padding a sample to a batch's longest stretches: the product of its extents along the dynamic
    non-batch axes, the largest over its inputs (a spectrogram's frames; 1 for a per-sample scalar)."""
    length = 1
    for spec in specs:
        shape = np.shape(sample[spec.name])
        dims = [shape[d] for d, size in enumerate(spec.shape)
                if 0 < d < len(shape) and not isinstance(size, int)]
        length = max(length, int(np.prod(dims)) if dims else 1)
    return length


def bucket_batches(lengths: list[int], batch_size: int, max_batch_frames: int = 0) -> list[list[int]]:
    """Sample indices in batches, longest first (like the reference's SortaGrad order) so neighbours have
    similar lengths and little padding is computed. A batch holds at most ``batch_size`` samples and, when
    ``max_batch_frames`` is set, at most that many padded frames (samples x its longest length); a sample
    longer than the cap still runs, alone."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        # sorted longest first, so a batch's padded length is its first sample's
        if batch is None or len(batch) >= batch_size or (
                max_batch_frames and (len(batch) + 1) * lengths[batch[0]] > max_batch_frames):
            batches.append([i])
        else:
            batch.append(i)
    return batches


def require_dynamic_batch(specs: Sequence[TensorSpec], *, field: str = "target.flags.batching") -> None:
    for spec in specs:
        if isinstance(spec.shape[0], int):
            raise InputError(
                f"bucketed batching needs a model with a dynamic batch axis, but input {spec.name!r} has static "
                f"shape {spec.shape}; export with dynamic axes (model.export.dynamic: true)", field=field)


def batch_feeds(samples: Sequence[Mapping[str, np.ndarray]], specs: Sequence[TensorSpec]) -> dict[str, np.ndarray]:
    """Samples stacked into one zero-padded batch, cast to the model's input types."""
    feeds = stack_batch(samples, [s.name for s in specs])
    return {s.name: feeds[s.name].astype(s.dtype, copy=False) for s in specs}


def _progress(total: int, what: str):
    """A per-sample bar on a terminal; nothing when output is piped, so logs stay clean."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="utt", leave=False, disable=not sys.stderr.isatty())


def run_samples(runner, inputs: InputSet, workdir: Path, *, batching: str = "none", batch_size: int = 1,
                max_batch_frames: int = 0, warmup: int = 0, label: str = "") -> BatchRun:
    """Run every sample through an active ``runner`` (a :class:`porter.runner.BaseRunner`) and write each
    sample's outputs under ``workdir``; the run stage of any target."""
    specs = runner.inputs
    if batching == "bucketed":
        require_dynamic_batch(specs)
        # lengths first, then one batch in memory at a time: a large test set never sits in memory whole
        lengths = [padded_length(inputs.load(i), specs) for i in range(len(inputs))]
        batches = bucket_batches(lengths, max(1, batch_size), max_batch_frames)
        load = lambda batch: batch_feeds([inputs.load(i) for i in batch], specs)
        label = f"{label}, bucketed"
    elif batching == "none":
        batches = [[i] for i in range(len(inputs))]
        load = lambda batch: feeds_for(inputs.load(batch[0]), specs)
    else:
        raise InputError(f"unknown batching {batching!r} (known: none, bucketed)", field="target.flags.batching")
    if batches:
        first = load(batches[0])
        for _ in range(warmup):
            runner.infer(first)
    latencies = [0.0] * len(inputs)
    wall = 0.0
    with _progress(len(inputs), label or "run") as bar:
        for batch in batches:
            feeds = load(batch)
            t0 = time.perf_counter()
            outs = runner.infer(feeds)
            dt = time.perf_counter() - t0
            wall += dt
            for j, i in enumerate(batch):
                # a sample's latency is the time until its result exists: its whole batch's time
                latencies[i] = dt * 1000
                write_sample(workdir, i, outs if batching == "none" else {n: o[j:j + 1] for n, o in outs.items()})
            bar.update(len(batch))
    return BatchRun(tuple(latencies), wall, tuple(tuple(b) for b in batches))


def run_details(run: BatchRun, *, batching: str, batch_size: int, max_batch_frames: int) -> dict:
    """The run stage's details, alike on every target."""
    if batching == "bucketed":
        return {"batching": batching, "batch_size": batch_size, "max_batch_frames": max_batch_frames,
                "batches": len(run.batches), "largest_batch": run.largest_batch}
    return {"batching": batching, "batch_size": 1, "batches": len(run.batches)}
