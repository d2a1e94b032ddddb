"""Which samples a report shows: the ones with the most errors."""
from __future__ import annotations

from porter.artifacts import SampleScore
from porter.report.model import VariantReport
from porter.report.plots import num

# how many samples per variant report.md and report.html show
WORST_SAMPLES = 10


def worst_samples(v: VariantReport, metric: str | None, n: int = WORST_SAMPLES) -> list[SampleScore]:
    """The ``n`` samples with the most errors on ``metric`` (ties broken by the other metrics, then id)."""
    def key(s: SampleScore):
        primary = num(s.errors.get(metric)) if metric else None
        rest = sum(num(x) or 0.0 for k, x in s.errors.items() if k != metric)
        return (-(primary or 0.0), -rest, str(s.id))

    wrong = [s for s in v.samples if any((num(x) or 0.0) > 0 for x in s.errors.values())]
    return sorted(wrong, key=key)[:n]


__all__ = ["WORST_SAMPLES", "worst_samples"]
