"""The accuracy/latency Pareto front, on hand-made variant reports."""
from __future__ import annotations

import math

from porter.report.model import Latency, VariantReport
from porter.report.pareto import default_accuracy_metric, mark_pareto


def variant(name, wer, p50, *, status="ok", estimate=False, extra=None):
    metrics = {} if wer is None else {"wer": wer, "wer/unseen": wer + 1, "cer": wer / 3}
    metrics.update(extra or {})
    latency = Latency() if p50 is None else Latency(p50=p50, p90=p50 * 1.2, p99=p50 * 1.5)
    return VariantReport(name=name, reference=False, target="onnxruntime", passes=[], flags={}, status=status,
                         metrics=metrics, latency_ms=latency, estimate=estimate)


def names_on_front(variants):
    return sorted(v.name for v in variants if v.pareto)


def test_dominated_variants_are_not_on_the_front():
    vs = [variant("accurate_slow", 5.0, 100.0), variant("fast_worse", 8.0, 20.0), variant("middle", 6.0, 50.0),
          variant("dominated", 7.0, 60.0),  # middle is both faster and more accurate
          variant("slow_and_bad", 9.0, 120.0)]
    mark_pareto(vs)
    assert names_on_front(vs) == ["accurate_slow", "fast_worse", "middle"]


def test_equal_in_one_axis_and_worse_in_the_other_is_dominated():
    vs = [variant("a", 5.0, 30.0), variant("same_wer_slower", 5.0, 31.0), variant("same_speed_worse", 5.5, 30.0)]
    mark_pareto(vs)
    assert names_on_front(vs) == ["a"]


def test_identical_points_are_both_on_the_front():
    vs = [variant("a", 5.0, 30.0), variant("b", 5.0, 30.0)]
    mark_pareto(vs)
    assert names_on_front(vs) == ["a", "b"]


def test_failed_missing_and_estimated_variants_take_no_part():
    vs = [variant("ok", 9.0, 100.0), variant("failed", 1.0, 1.0, status="failed"),
          variant("no_latency", 1.0, None), variant("no_metric", None, 1.0),
          variant("nan_latency", 1.0, math.nan), variant("estimate", 1.0, 1.0, estimate=True)]
    vs[0].pareto = False
    for v in vs[1:]:
        v.pareto = True  # stale marks are cleared
    mark_pareto(vs)
    assert names_on_front(vs) == ["ok"]
    mark_pareto(vs, include_estimates=True)
    assert names_on_front(vs) == ["estimate"]


def test_default_metric_is_the_first_overall_one_and_can_be_overridden():
    vs = [variant("a", 5.0, 100.0, extra={"cer": 9.0}), variant("b", 6.0, 50.0, extra={"cer": 1.0})]
    assert default_accuracy_metric(vs) == "wer"
    mark_pareto(vs)
    assert names_on_front(vs) == ["a", "b"]
    # on CER b is both faster and more accurate
    mark_pareto(vs, "cer")
    assert names_on_front(vs) == ["b"]


def test_subset_metrics_are_never_the_default():
    v = VariantReport(name="a", reference=False, target="t", passes=[], flags={},
                      metrics={"wer/x": 1.0, "error_rate": 2.0}, latency_ms=Latency(p50=1.0))
    assert default_accuracy_metric([v]) == "error_rate"
    mark_pareto([v])
    assert v.pareto


def test_no_metrics_marks_nothing():
    vs = [variant("a", None, 10.0)]
    vs[0].pareto = True
    mark_pareto(vs)
    assert not vs[0].pareto
