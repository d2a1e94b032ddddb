"""Output agreement with the reference as porter metrics: per output and overall (the worst output).

Every number comes from porter's one comparison (:mod:`porter.agreement`, through ``porter.api``). A metric is
named ``<metric>/<output>`` for one output and plain ``<metric>`` for the worst over all outputs, so budgets
read ``max_abs_error <= 1e-4`` or ``cosine/logits >= 0.9999``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from porter.api import (
    InputError,
    InputSet,
    Metrics,
    MetricSpec,
    OutputSet,
    SampleScore,
    TensorAgreement,
    combine,
    compare_outputs,
    compare_samples,
    is_classifier_like,
    min_relative_tolerance,
    summary,
    top1_matches,
    worst_difference,
)

METRIC_SPECS = (
    MetricSpec("max_abs_error", "largest |output - reference| over all samples"),
    MetricSpec("max_rel_error", "max_abs_error divided by the reference's largest magnitude"),
    MetricSpec("cosine", "cosine similarity of output and reference, the worst sample",
               lower_is_better=False),
    MetricSpec("top1_agreement", "percent of positions whose top class (argmax over the last axis) is the "
               "reference's; classifier-like outputs only", lower_is_better=False, unit="%"),
    MetricSpec("min_rtol", "smallest relative tolerance every element passes alone (the smallest absolute one is "
               "max_abs_error)"),
)
METRICS = tuple(m.name for m in METRIC_SPECS)


@dataclass
class _OutputTally:
    """One output's agreement over the samples seen so far."""

    agreement: TensorAgreement
    min_rtol: float = 0.0
    top1: list[int] = field(default_factory=lambda: [0, 0])  # [agreeing positions, positions]
    classifier: bool = False

    def values(self) -> dict[str, float]:
        a = self.agreement
        out = {"max_abs_error": a.max_abs, "max_rel_error": a.max_rel, "cosine": a.cosine,
               "min_rtol": self.min_rtol}
        if self.classifier and self.top1[1]:
            out["top1_agreement"] = 100.0 * self.top1[0] / self.top1[1]
        return out


def with_batch_axis(reference: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Reference arrays given without the leading batch axis of 1 get it, when that is all that differs."""
    out = {}
    for name, ref in reference.items():
        ref = np.asarray(ref)
        other = new.get(name)
        if other is not None and np.ndim(other) == ref.ndim + 1 and np.shape(other)[0] == 1 \
                and tuple(np.shape(other)[1:]) == ref.shape:
            ref = ref[None]
        out[name] = ref
    return out


def worst_of(references: Sequence[Mapping], news: Sequence[Mapping]) -> tuple[float, str]:
    """(the largest abs difference, +inf on any problem; the line saying where) over samples of outputs."""
    agreements = compare_samples(references, news)
    return worst_difference(agreements), summary(agreements)


def score(metric_names: Sequence[str], inputs: InputSet, outputs: OutputSet, reference: OutputSet) -> Metrics:
    """Each output of ``outputs`` against ``reference``, sample by sample."""
    if len(outputs) != len(reference):
        raise InputError(f"{len(outputs)} samples of outputs but {len(reference)} of reference outputs; expected "
                         "one per input", field="outputs")
    wanted = [m for m in metric_names if m in METRICS] or list(METRICS)
    tallies: dict[str, _OutputTally] = {}
    samples = []
    for index in range(len(outputs)):
        new = outputs.load(index)
        ref = with_batch_axis(reference.load(index), new)
        # the reference decides what is scored: outputs it does not hold are the model's extras
        agreements = compare_outputs(ref, {n: a for n, a in new.items() if n in ref})
        for agreement in agreements:
            name = agreement.name
            tally = tallies.get(name)
            if tally is None:
                tally = tallies[name] = _OutputTally(agreement, classifier=is_classifier_like(ref[name]))
            else:
                tally.agreement = combine(tally.agreement, agreement)
            if agreement.problem:
                tally.min_rtol = math.inf
                if tally.classifier:  # no comparable top class: every position of the reference disagrees
                    tally.top1[1] += int(np.prod(np.shape(ref[name])[:-1]))
                continue
            tally.min_rtol = max(tally.min_rtol, min_relative_tolerance(ref[name], new[name]))
            top1 = top1_matches(ref[name], new[name]) if tally.classifier else None
            if top1 is not None:
                tally.top1[0] += top1[0]
                tally.top1[1] += top1[1]
        samples.append(SampleScore(id=outputs.sample_ids[index], reference="", hypothesis=summary(agreements),
                                   errors={"max_abs_error": worst_difference(agreements)}))
    values: dict[str, float] = {}
    per_output = {name: tally.values() for name, tally in tallies.items()}
    for metric in wanted:
        column = [v[metric] for v in per_output.values() if metric in v]
        if not column:
            continue
        worst = min if metric in ("cosine", "top1_agreement") else max
        values[metric] = worst(column)
    for name, output_values in per_output.items():
        for metric in wanted:
            if metric in output_values:
                values[f"{metric}/{name}"] = output_values[metric]
    return Metrics(values=values, samples=tuple(samples))

