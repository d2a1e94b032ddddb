"""The typed objects that travel between stages.

Each names files inside the stage's artifact directory, plus small metadata; arrays never travel through
these objects or the cache key. Per-sample arrays live in one ``.npz`` per sample so that large test sets are
streamed, not held in memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple  # ints for static dims, strings for named dynamic dims
    dtype: str  # numpy dtype name, e.g. "float32"

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)


@dataclass(frozen=True)
class ParityCheck:
    """Outputs of a rewritten or exported model against the model it came from, on real inputs."""

    label: str
    max_abs_diff: float  # porter.agreement.worst_difference: +inf when the outputs could not be compared
    tolerance: float
    samples: int
    detail: str = ""
    problem: str = ""  # why the outputs could not be compared ("output 'probs': NaN/Inf where ..."), or ""

    @property
    def passed(self) -> bool:
        # written so that a NaN difference fails too
        return not self.problem and self.max_abs_diff <= self.tolerance

    def failure(self) -> str:
        """One line saying why the check failed."""
        if self.problem:
            return f"{self.label}: {self.problem}"
        return f"{self.label}: max abs diff {self.max_abs_diff:.3g} > tolerance {self.tolerance:.3g}"


@dataclass(frozen=True)
class PassRecord:
    """What one graph pass did: node counts by op type before and after, and its parity check."""

    name: str
    ops_before: Mapping[str, int]
    ops_after: Mapping[str, int]
    check: ParityCheck
    seconds: float = 0.0


@dataclass(frozen=True)
class OnnxModel:
    path: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    opset: int
    checks: tuple[ParityCheck, ...] = ()
    passes: tuple[PassRecord, ...] = ()


@dataclass(frozen=True)
class CompiledModel:
    target: str
    path: Path  # the artifact the run stage loads (an .onnx for ONNX Runtime, an .om for Ascend, ...)
    source: Path  # the ONNX model it was compiled from
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    compile_seconds: float = 0.0
    size_bytes: int = 0
    details: Mapping[str, Any] = field(default_factory=dict)  # argv, tool versions, session options
    # True when the compiled model computes in a reduced precision (bf16, int8): its figures are an estimate of
    # the fp32 model's and the parity check after compile uses the looser estimate tolerance
    estimate: bool = False
    # the max abs difference the core's parity check accepts against the exported ONNX; None: the core's default
    tolerance: float | None = None
    # the core's parity checks of this compiled model (padded batches and the same samples alone)
    checks: tuple[ParityCheck, ...] = ()
    # sentences the report shows with every variant this model serves: where the compiled model is not what the
    # recipe asked for (a precision this machine's device lacks, run in another), in the plugin's own words
    notes: tuple[str, ...] = ()


def _sample_file(root: Path, index: int) -> Path:
    return root / "samples" / f"{index:06d}.npz"


def write_sample(root: Path, index: int, arrays: Mapping[str, np.ndarray]) -> None:
    """Write one sample's arrays (used by preprocess and run stages inside their work directory)."""
    path = _sample_file(root, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    named: dict[str, Any] = {k: np.asarray(v) for k, v in arrays.items()}
    np.savez(path, **named)


def read_sample(root: Path, index: int) -> dict[str, np.ndarray]:
    with np.load(_sample_file(root, index), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@dataclass(frozen=True)
class InputSet:
    """Preprocessed model inputs, one sample per utterance/item, in dataset order.

    Each sample's arrays carry a leading batch axis of 1: exactly what a batch-1 model takes. Axes other than
    the batch may differ between samples (e.g. time); batching zero-pads them to the batch's maximum.
    ``references`` holds the ground truth the score stage compares against (a transcript, a class label);
    ``groups`` optionally tags each sample with a subset name (e.g. a test split) so metrics can be reported per
    subset as well as overall. ``notes`` are sentences the report shows with every variant these inputs feed
    (e.g. "dropped 5 transcript characters the labels cannot express"): what a reader of the figures should know
    about the data, in the plugin's own words; ``details`` holds the same facts as data.
    """

    path: Path
    sample_ids: tuple[str, ...]
    input_names: tuple[str, ...]
    references: tuple[Any, ...]
    groups: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.sample_ids)

    def load(self, index: int) -> dict[str, np.ndarray]:
        return read_sample(self.path, index)

    def sample_file(self, index: int) -> Path:
        """The file holding sample ``index`` (to hash or copy it whole; read its arrays with :meth:`load`)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} of an input set of {len(self)}")
        return _sample_file(self.path, index)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self)):
            yield self.load(i)


@dataclass(frozen=True)
class Timing:
    """Latency of the run stage, per sample after warm-up; in batched runs each sample gets its batch's time.

    ``wall_seconds`` is the measured time of all timed runs, so ``throughput`` is samples per second.
    """

    latencies_ms: tuple[float, ...]
    wall_seconds: float
    warmup: int = 0
    batch_size: int = 1

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def throughput(self) -> float:
        return len(self.latencies_ms) / self.wall_seconds if self.wall_seconds > 0 else float("nan")


@dataclass(frozen=True)
class OutputSet:
    """Model outputs, one ``.npz`` per sample in the InputSet's order, and how long producing them took."""

    path: Path
    sample_ids: tuple[str, ...]
    output_names: tuple[str, ...]
    timing: Timing
    estimate: bool = False  # True for a CPU emulation of a device's precision (labelled in reports)
    details: Mapping[str, Any] = field(default_factory=dict)
    # sentences the report shows with the variant: where the run was not what its compiled model promised (a
    # model compiled on another machine, run here in a precision this device lacks), in the plugin's words
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.sample_ids)

    def load(self, index: int) -> dict[str, np.ndarray]:
        return read_sample(self.path, index)


@dataclass(frozen=True)
class SampleScore:
    id: str
    reference: str
    hypothesis: str
    errors: Mapping[str, float]  # per-sample metric values, e.g. {"wer": 12.5, "cer": 3.1}


@dataclass(frozen=True)
class Metrics:
    """Metric values by name; per-subset values are named ``metric/subset`` (e.g. ``wer/unseen_voices``)."""

    values: Mapping[str, float]
    samples: tuple[SampleScore, ...] = ()
