"""Comparing two saved runs: what differs (flags, passes, artifacts, versions) and how the metrics moved."""
from __future__ import annotations

import math

from porter.errors import InputError
from porter.report.model import VariantReport
from porter.report.reader import read_report
from porter.report.table import format_table
from porter.report.verdicts import evaluate_budgets, exit_code_for, format_verdict

_NUMBERS = (("p50_ms", lambda v: v.latency_ms.p50), ("p99_ms", lambda v: v.latency_ms.p99),
            ("throughput", lambda v: v.throughput))


def _diff_maps(label: str, a: dict, b: dict) -> list[list[str]]:
    rows = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            rows.append([label, k, str(a.get(k, "-")), str(b.get(k, "-"))])
    return rows


def _finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def _variant_rows(x: VariantReport, y: VariantReport) -> tuple[list[list[str]], list[list[str]]]:
    name = x.name
    diff_rows = _diff_maps(f"{name} flag", x.flags, y.flags)
    if x.passes != y.passes:
        diff_rows.append([f"{name} passes", "graph_fix", ",".join(x.passes), ",".join(y.passes)])
    for row in _diff_maps(f"{name} artifact", x.artifacts, y.artifacts):
        diff_rows.append([row[0], row[1], row[2][:12], row[3][:12]])
    metric_rows = []
    for m in sorted(set(x.metrics) & set(y.metrics)):
        ma, mb = x.metrics[m], y.metrics[m]
        if _finite(ma) and _finite(mb):
            metric_rows.append([name, m, f"{ma:.3f}", f"{mb:.3f}", f"{mb - ma:+.3f}"])
    for label, get in _NUMBERS:
        ma, mb = get(x), get(y)
        if _finite(ma) and _finite(mb):
            metric_rows.append([name, label, f"{ma:.3f}", f"{mb:.3f}", f"{mb - ma:+.3f}"])
    return diff_rows, metric_rows


def compare_reports(path_a, path_b, *, budgets=()) -> tuple[str, int]:
    """Return the comparison as text, and the exit code (non-zero when a budget is broken)."""
    a, b = read_report(path_a), read_report(path_b)
    va = {v.name: v for v in a.variants}
    vb = {v.name: v for v in b.variants}
    diff_rows: list[list[str]] = []
    diff_rows += _diff_maps("library", a.libraries, b.libraries)
    diff_rows += _diff_maps("tool", a.tools, b.tools)
    if a.recipe_digest != b.recipe_digest:
        diff_rows.append(["recipe", "sha256", a.recipe_digest[:12], b.recipe_digest[:12]])
    metric_rows: list[list[str]] = []
    for name in [n for n in va if n in vb]:
        d, m = _variant_rows(va[name], vb[name])
        diff_rows += d
        metric_rows += m
    only = [f"only in A: {n}" for n in va if n not in vb] + [f"only in B: {n}" for n in vb if n not in va]
    try:
        verdicts = evaluate_budgets(b, budgets) if budgets else []
    except InputError as exc:  # the budget is checked on REPORT_B: say so
        raise InputError(exc.message, file=path_b, field="--budget") from None
    parts = [f"A: {path_a}\nB: {path_b}", ""]
    parts.append("What differs:")
    parts.append(format_table(["where", "what", "A", "B"], diff_rows) if diff_rows else "  nothing")
    parts += ["", "Metrics:", format_table(["variant", "metric", "A", "B", "B-A"], metric_rows)]
    parts += only
    for v in verdicts:
        parts.append(format_verdict(v))
    return "\n".join(parts), exit_code_for(verdicts)
