"""Repeated measurements: untimed warm-up runs, then the median (and spread) of the timed ones."""
from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable


@dataclass
class Sample:
    """A measured quantity over repeated runs."""

    median: float
    runs: list[float]
    unit: str

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the runs were."""
        return (max(self.runs) - min(self.runs)) / self.median if self.median else float("nan")

    def as_dict(self) -> dict:
        return {**asdict(self), "spread": self.spread}


def of_values(values, unit: str) -> Sample:
    values = [float(v) for v in values]
    return Sample(statistics.median(values), values, unit)


def time_calls(fn: Callable[[], object], *, repeats: int, warmup: int) -> Sample:
    """Seconds per call of ``fn``: ``warmup`` untimed calls, then the median of ``repeats`` timed ones."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return of_values(runs, "s")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


__all__ = ["Sample", "of_values", "time_calls", "ratio"]
