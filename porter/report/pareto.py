"""Which variants are on the accuracy/latency Pareto front: no other variant is at least as accurate and at
least as fast while being strictly better in one of the two.

Both axes are lower-is-better: the accuracy metric is an error rate (WER, CER, error_rate) and latency is the
median (p50) per sample. Only variants that ran ("ok") and have both numbers take part. Estimates (a CPU
emulation of a device's precision) are left out by default: their latency is the emulation's, not the
device's, so calling one "fastest" would mislead.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from porter.report.model import VariantReport


def default_accuracy_metric(variants: Iterable[VariantReport]) -> str | None:
    """The first overall metric (no ``/subset`` suffix) in report order, e.g. ``wer``."""
    for v in variants:
        for name in v.metrics:
            if "/" not in name:
                return name
    return None


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def front_points(variants: list[VariantReport], accuracy_metric: str,
                 include_estimates: bool = False) -> list[tuple[VariantReport, float, float]]:
    """(variant, p50 latency ms, metric) for each variant that can take part in the front."""
    points = []
    for v in variants:
        if v.status != "ok" or (v.estimate and not include_estimates):
            continue
        latency = _number(v.latency_ms.p50)
        error = _number(v.metrics.get(accuracy_metric))
        if latency is not None and error is not None:
            points.append((v, latency, error))
    return points


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] <= b[1] and (a[0] < b[0] or a[1] < b[1])


def mark_pareto(variants: list[VariantReport], accuracy_metric: str | None = None, *,
                include_estimates: bool = False) -> None:
    """Set ``.pareto`` on every variant: True on the front, False everywhere else.

    Variants with identical (latency, metric) do not dominate each other, so ties are all on the front.
    """
    metric = accuracy_metric or default_accuracy_metric(variants)
    for v in variants:
        v.pareto = False
    if metric is None:
        return
    points = front_points(variants, metric, include_estimates)
    for v, latency, error in points:
        v.pareto = not any(_dominates((ol, oe), (latency, error)) for _, ol, oe in points)


__all__ = ["default_accuracy_metric", "front_points", "mark_pareto"]
