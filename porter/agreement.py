"""How far a model's outputs are from a reference's: the one numeric comparison every porter gate uses.

Export parity, the per-pass checks of graph_fix, per-target parity and the benches all compare a mapping of
output name → array against a reference mapping through :func:`compare_outputs`, and gate on
:func:`worst_difference`. A comparison that cannot be made (an output missing on one side, a changed shape or
dtype, NaN/Inf where the reference is finite) is never folded into a number that could pass a tolerance: it is a
``problem``, and :func:`worst_difference` is then ``+inf``.

Choices, stated once:

* Every name on either side is compared; a name only one side has is a problem.
* Shape and dtype must be equal; a difference is a problem (no broadcasting, no silent casts).
* Non-finite values: a NaN, +Inf or -Inf in the new outputs where the reference holds a finite number is a
  problem, and so is a finite number where the reference holds NaN/Inf. NaN on *both* sides at the same position
  is a problem too: a reference that is not a number there cannot show the new model right, and a gate that NaN
  could pass would hide a broken model (an all-NaN checkpoint gives NaN on both sides). The same infinity on
  both sides (+Inf with +Inf, -Inf with -Inf, e.g. a masked logit) agrees; such positions are counted in
  ``shared_nonfinite`` and the numbers are measured on the positions where both sides are finite.
* Numbers are computed in float64 whatever the tensors' dtype.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class TensorAgreement:
    """One output of a new model against the same output of the reference.

    ``max_abs``: the largest |new − reference| over the positions where both are finite.
    ``max_rel``: ``max_abs`` divided by the reference's largest magnitude (an infinity-norm relative error, so a
    near-zero reference element cannot blow it up); 0 when both are all zero, +inf when only the reference is.
    ``cosine``: cosine similarity of the two tensors flattened (1.0 when both are all zero or empty, 0.0 when
    exactly one is all zero).
    ``problem``: "" when the two are comparable, else why they are not (the numbers are then +inf / 0.0).
    """

    name: str
    max_abs: float
    max_rel: float
    cosine: float
    problem: str = ""
    shared_nonfinite: int = 0  # positions where both sides hold the same infinity

    @property
    def comparable(self) -> bool:
        return not self.problem

    def describe(self) -> str:
        """One line for a message: the problem, or the numbers."""
        if self.problem:
            return f"output {self.name!r}: {self.problem}"
        return (f"output {self.name!r}: max abs {self.max_abs:.3g}, max rel {self.max_rel:.3g}, "
                f"cosine {self.cosine:.6f}")


def _problem(name: str, problem: str) -> TensorAgreement:
    return TensorAgreement(name, math.inf, math.inf, 0.0, problem)


def _nonfinite_problem(ref: np.ndarray, new: np.ndarray) -> tuple[str, np.ndarray, int]:
    """(problem, mask of positions both sides hold finite, count of shared non-finite positions)."""
    ref_finite, new_finite = np.isfinite(ref), np.isfinite(new)
    new_bad = ref_finite & ~new_finite
    if new_bad.any():
        where = np.unravel_index(int(np.argmax(new_bad)), ref.shape)
        return (f"NaN/Inf where the reference is finite ({int(new_bad.sum())} of {ref.size} values, first at "
                f"index {tuple(int(i) for i in where)}: {new[where]!r})"), ref_finite, 0
    ref_bad = ~ref_finite & new_finite
    if ref_bad.any():
        where = np.unravel_index(int(np.argmax(ref_bad)), ref.shape)
        return (f"finite where the reference is NaN/Inf ({int(ref_bad.sum())} of {ref.size} values, first at "
                f"index {tuple(int(i) for i in where)})"), ref_finite, 0
    both_nan = np.isnan(ref) & np.isnan(new)
    if both_nan.any():
        where = np.unravel_index(int(np.argmax(both_nan)), ref.shape)
        return (f"NaN in the reference and the new outputs alike ({int(both_nan.sum())} of {ref.size} values, "
                f"first at index {tuple(int(i) for i in where)}): the reference itself is broken there"), \
            ref_finite, 0
    both_nonfinite = ~ref_finite & ~new_finite
    differ = both_nonfinite & (ref != new)  # an infinity matches only the same infinity
    if differ.any():
        where = np.unravel_index(int(np.argmax(differ)), ref.shape)
        return (f"a different non-finite value than the reference at index {tuple(int(i) for i in where)} "
                f"({new[where]!r} vs {ref[where]!r})"), ref_finite, 0
    return "", ref_finite & new_finite, int(both_nonfinite.sum())


def compare_tensors(name: str, reference, new) -> TensorAgreement:
    """``new`` against ``reference`` (array-likes), under the rules in the module's docstring."""
    ref, out = np.asarray(reference), np.asarray(new)
    if ref.shape != out.shape:
        return _problem(name, f"shape {tuple(ref.shape)} vs {tuple(out.shape)}")
    if ref.dtype != out.dtype:
        return _problem(name, f"dtype {ref.dtype} vs {out.dtype}")
    if ref.size == 0:
        return TensorAgreement(name, 0.0, 0.0, 1.0)
    if not (np.issubdtype(ref.dtype, np.number) or ref.dtype == np.bool_):
        return _problem(name, f"dtype {ref.dtype} is not numeric")
    ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
    problem, finite, shared = _nonfinite_problem(ref64, out64)
    if problem:
        return _problem(name, problem)
    ref64, out64 = ref64[finite], out64[finite]
    if ref64.size == 0:
        return TensorAgreement(name, 0.0, 0.0, 1.0, shared_nonfinite=shared)
    max_abs = float(np.max(np.abs(out64 - ref64)))
    scale = float(np.max(np.abs(ref64)))
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    norms = float(np.linalg.norm(ref64)) * float(np.linalg.norm(out64))
    if norms > 0:
        cosine = float(np.dot(ref64, out64)) / norms
    else:
        cosine = 1.0 if max_abs == 0 else 0.0
    return TensorAgreement(name, max_abs, max_rel, cosine, shared_nonfinite=shared)


def compare_outputs(reference: Mapping[str, object], new: Mapping[str, object]) -> tuple[TensorAgreement, ...]:
    """One TensorAgreement per name on either side: the reference's names in order, then names only ``new`` has."""
    results = []
    for name, ref in reference.items():
        if name not in new:
            results.append(_problem(name, "missing from the new outputs"))
        else:
            results.append(compare_tensors(name, ref, new[name]))
    for name in new:
        if name not in reference:
            results.append(_problem(name, "not among the reference's outputs"))
    return tuple(results)


def combine(first: TensorAgreement, second: TensorAgreement) -> TensorAgreement:
    """The worse of two comparisons of one output (e.g. on two samples): largest differences, smallest
    cosine, the first problem."""
    if first.problem:
        return first
    if second.problem:
        return second
    return replace(first, max_abs=max(first.max_abs, second.max_abs), max_rel=max(first.max_rel, second.max_rel),
                   cosine=min(first.cosine, second.cosine),
                   shared_nonfinite=first.shared_nonfinite + second.shared_nonfinite)


def compare_samples(references: Sequence[Mapping[str, object]],
                    news: Sequence[Mapping[str, object]]) -> tuple[TensorAgreement, ...]:
    """Outputs on several samples, one TensorAgreement per output name over all of them; a problem names the
    sample (its position) it was first seen on."""
    if len(references) != len(news):
        return (_problem("(all outputs)", f"{len(news)} samples of outputs vs {len(references)} in the reference"),)
    merged: dict[str, TensorAgreement] = {}
    for index, (ref, new) in enumerate(zip(references, news)):
        for agreement in compare_outputs(ref, new):
            if agreement.problem and len(references) > 1:
                agreement = replace(agreement, problem=f"{agreement.problem} (sample {index})")
            before = merged.get(agreement.name)
            merged[agreement.name] = agreement if before is None else combine(before, agreement)
    return tuple(merged.values())


def min_relative_tolerance(reference, new) -> float:
    """The smallest relative tolerance every element passes on its own: the largest |new − reference| /
    |reference| over the positions where both are finite (Polygraphy's element-wise "rel" requirement; the "abs"
    one is ``max_abs``). A position where the reference is 0 and ``new`` is not needs +inf; an output that
    :func:`compare_tensors` finds a problem with needs +inf too."""
    if compare_tensors("", reference, new).problem:
        return math.inf
    ref, out = np.asarray(reference, dtype=np.float64), np.asarray(new, dtype=np.float64)
    finite = np.isfinite(ref) & np.isfinite(out)
    diff, scale = np.abs(out[finite] - ref[finite]), np.abs(ref[finite])
    if diff.size == 0 or not diff.any():
        return 0.0
    if np.any((scale == 0) & (diff > 0)):
        return math.inf
    nonzero = scale > 0
    return float(np.max(diff[nonzero] / scale[nonzero]))


def is_classifier_like(array) -> bool:
    """A floating output whose last axis holds two or more scores (logits or probabilities per class)."""
    array = np.asarray(array)
    return array.ndim >= 1 and np.issubdtype(array.dtype, np.floating) and array.shape[-1] >= 2


def top1_matches(reference, new) -> tuple[int, int] | None:
    """For a classifier-like output: (positions whose argmax over the last axis is the reference's, positions);
    ``None`` for any other output or when the two cannot be compared (see :func:`compare_tensors`). A position
    holding NaN on either side counts as a disagreement."""
    ref, out = np.asarray(reference), np.asarray(new)
    if not is_classifier_like(ref) or ref.shape != out.shape or ref.dtype != out.dtype:
        return None
    ref64, out64 = ref.astype(np.float64), out.astype(np.float64)
    valid = np.isfinite(ref64).all(axis=-1) & np.isfinite(out64).all(axis=-1)
    agree = (np.argmax(ref64, axis=-1) == np.argmax(out64, axis=-1)) & valid
    return int(agree.sum()), int(agree.size)


def worst_difference(agreements: Iterable[TensorAgreement]) -> float:
    """The largest ``max_abs`` over ``agreements`` (0.0 for none); +inf when any of them has a problem, so a
    tolerance gate (``worst <= tolerance``) cannot pass."""
    worst = 0.0
    for agreement in agreements:
        if agreement.problem or not math.isfinite(agreement.max_abs):
            return math.inf
        worst = max(worst, agreement.max_abs)
    return worst


def first_problem(agreements: Iterable[TensorAgreement]) -> str:
    """"output 'name': problem" for the first comparison that has one, or ""."""
    for agreement in agreements:
        if agreement.problem:
            return agreement.describe()
    return ""


def summary(agreements: Sequence[TensorAgreement]) -> str:
    """What a failed gate says: the first problem if there is one, else the output with the largest difference."""
    problem = first_problem(agreements)
    if problem or not agreements:
        return problem
    return max(agreements, key=lambda a: a.max_abs).describe()


__all__ = ["TensorAgreement", "compare_tensors", "compare_outputs", "compare_samples", "combine",
           "worst_difference", "first_problem", "summary", "min_relative_tolerance", "is_classifier_like",
           "top1_matches"]
