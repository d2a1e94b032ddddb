"""The compiled-model parity check every target gets: after compile, the compiled model on a real padded
batch and on the same samples alone, each against the exported ONNX (before any graph pass) on ONNX Runtime.

Export parity proves the ONNX computes what the framework does; pass parity proves each rewrite keeps that; this
check proves the compiler does too, on the batches the run stage will feed it. Padded batches are where
compilers go wrong silently (a recurrent op that ignores ``sequence_lens`` for padded rows gives batch 1 exact
and batches wrong), so a batch is checked whenever the model has a dynamic batch axis.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from porter.agreement import compare_samples, first_problem, summary, worst_difference
from porter.artifacts import InputSet, ParityCheck, TensorSpec
from porter.batching import batch_feeds, padded_length
from porter.onnx_io import feeds_for, model_io, session

# fp32 compilers reorder sums and fuse ops: differences of 1e-6..1e-5 on probabilities are normal
EXACT_TOLERANCE = 1e-4
# bf16 keeps 8 mantissa bits and int8 quantises activations. Measured on the demo DeepSpeech's probabilities
# (4 real utterances, max abs against the fp32 export): OpenVINO bf16 0.021, ONNX Runtime int8_dynamic 0.12, NNCF
# int8 of every layer 0.19; OpenVINO's padded-batch bidirectional LSTM bug 0.78. Their WER difference is what the
# report shows; this only catches a compiler that computes something else
ESTIMATE_TOLERANCE = 0.25
# how far down the input set to look for samples of different lengths
_LOOK_AHEAD = 8


def variant_tolerance(target_tolerance: float, pass_tolerances: Sequence[float]) -> float:
    """What the compiled model may differ from the export by: the target's own tolerance plus each graph pass's.
    Each pass was already gated against the model before it, so a recipe that lets a pass move the outputs (an
    fp16 emulation at tolerance 1.0) cannot then have the compiled model failed for that same movement."""
    return float(target_tolerance) + float(sum(pass_tolerances))


@dataclass(frozen=True)
class ParityPlan:
    """The samples a check uses: indices into the InputSet, longest first."""

    indices: tuple[int, ...]
    lengths: tuple[int, ...]

    @property
    def padded(self) -> bool:
        return len(set(self.lengths)) > 1


def pick_samples(inputs: InputSet, specs: Sequence[TensorSpec], count: int) -> ParityPlan:
    """``count`` samples spread over the lengths found among the first few, so the batch holds padding."""
    pool = list(range(min(len(inputs), max(count, 1) * _LOOK_AHEAD)))
    lengths = {i: padded_length(inputs.load(i), specs) for i in pool}
    order = sorted(pool, key=lambda i: (-lengths[i], i))
    if len(order) > count:
        step = (len(order) - 1) / max(count - 1, 1)
        order = sorted({order[round(k * step)] for k in range(count)}, key=lambda i: (-lengths[i], i))
    return ParityPlan(tuple(order), tuple(lengths[i] for i in order))


def _crop(batch_outputs: Mapping[str, np.ndarray], row: int, like: Mapping[str, np.ndarray]) -> dict:
    """One row of a padded batch's outputs, cut to the sample's own extent (its outputs alone): the padded
    steps past a sample's length are not part of its result."""
    out = {}
    for name, value in batch_outputs.items():
        value = np.asarray(value)[row:row + 1]
        ref = like.get(name)
        if ref is not None and np.ndim(ref) == value.ndim:
            value = value[tuple(slice(0, min(a, b)) for a, b in zip(np.shape(ref), value.shape))]
        out[name] = value
    return out


def check_compiled(runner, reference: Path, inputs: InputSet, *, count: int, tolerance: float,
                   target: str) -> tuple[ParityCheck, ...]:
    """The compiled model (an active runner) alone and in one padded batch, against ``reference`` (an ONNX
    file) on ONNX Runtime; one ParityCheck each. The batch check is left out when the compiled model's batch
    axis is static."""
    plan = pick_samples(inputs, runner.inputs, count)
    ref_specs, _ = model_io(onnx.load(str(reference), load_external_data=False))
    ref_sess = session(reference)
    ref_names = [o.name for o in ref_sess.get_outputs()]
    samples = [inputs.load(i) for i in plan.indices]
    refs = [dict(zip(ref_names, ref_sess.run(None, feeds_for(s, ref_specs)))) for s in samples]
    alone = [runner.infer(feeds_for(s, runner.inputs)) for s in samples]
    ids = ", ".join(inputs.sample_ids[i] for i in plan.indices)
    checks = [_check(f"{target} alone vs exported ONNX", refs, alone, tolerance, f"samples {ids}, each at batch 1")]
    if samples and not any(isinstance(s.shape[0], int) for s in runner.inputs):
        batch = runner.infer(batch_feeds(samples, runner.inputs))
        rows = [_crop(batch, j, refs[j]) for j in range(len(samples))]
        checks.append(_check(
            f"{target} padded batch vs exported ONNX", refs, rows, tolerance,
            f"one batch of {len(samples)} (lengths {', '.join(map(str, plan.lengths))}"
            f"{'' if plan.padded else '; all one length, so no padding'}), each row cut to its own length"))
    return tuple(checks)


def _check(label: str, refs, news, tolerance: float, detail: str) -> ParityCheck:
    agreements = compare_samples(refs, news)
    return ParityCheck(label=label, max_abs_diff=worst_difference(agreements), tolerance=tolerance,
                       samples=len(refs), detail=f"{detail}; worst {summary(agreements)}",
                       problem=first_problem(agreements))


def failure_message(target: str, checks: Sequence[ParityCheck]) -> str:
    return "; ".join(f"target {target!r} is wrong: {c.failure()} ({c.detail})" for c in checks if not c.passed)
