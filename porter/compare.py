"""Comparing two saved runs: what differs (flags, passes, artifacts, versions) and how the metrics moved."""
from __future__ import annotations

from pathlib import Path

from porter.errors import InputError
from porter.report import format_table, load_report
from porter.verdicts import evaluate_budgets, exit_code_for, format_verdict

_NUMBERS = (("p50_ms", ("latency_ms", "p50")), ("p99_ms", ("latency_ms", "p99")), ("throughput", ("throughput",)))


def _load(path) -> dict:
    try:
        return load_report(Path(path))
    except FileNotFoundError:
        raise InputError("report not found", file=path) from None
    except ValueError as exc:
        raise InputError(f"not a porter report.json: {exc}", file=path) from None


def _get(d: dict, keys):
    for k in keys:
        d = (d or {}).get(k)
    return d


def _diff_maps(label: str, a: dict, b: dict) -> list[list[str]]:
    rows = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            rows.append([label, k, str(a.get(k, "-")), str(b.get(k, "-"))])
    return rows


def compare_reports(path_a, path_b, *, budgets=()) -> tuple[str, int]:
    """Return the comparison as text, and the exit code (non-zero when a budget is broken)."""
    a, b = _load(path_a), _load(path_b)
    va = {v["name"]: v for v in a.get("variants", [])}
    vb = {v["name"]: v for v in b.get("variants", [])}
    diff_rows: list[list[str]] = []
    diff_rows += _diff_maps("library", a.get("libraries", {}), b.get("libraries", {}))
    diff_rows += _diff_maps("tool", a.get("tools", {}), b.get("tools", {}))
    if a.get("recipe_digest") != b.get("recipe_digest"):
        diff_rows.append(["recipe", "sha256", str(a.get("recipe_digest", ""))[:12],
                          str(b.get("recipe_digest", ""))[:12]])
    metric_rows: list[list[str]] = []
    for name in [n for n in va if n in vb]:
        x, y = va[name], vb[name]
        for row in _diff_maps(f"{name} flag", x.get("flags", {}), y.get("flags", {})):
            diff_rows.append(row)
        if x.get("passes") != y.get("passes"):
            diff_rows.append([f"{name} passes", "graph_fix", ",".join(x.get("passes", [])),
                              ",".join(y.get("passes", []))])
        for row in _diff_maps(f"{name} artifact", x.get("artifacts", {}), y.get("artifacts", {})):
            diff_rows.append([row[0], row[1], row[2][:12], row[3][:12]])
        for m in sorted(set(x.get("metrics", {})) & set(y.get("metrics", {}))):
            ma, mb = x["metrics"][m], y["metrics"][m]
            if ma is not None and mb is not None:
                metric_rows.append([name, m, f"{ma:.3f}", f"{mb:.3f}", f"{mb - ma:+.3f}"])
        for label, keys in _NUMBERS:
            ma, mb = _get(x, keys), _get(y, keys)
            if ma is not None and mb is not None:
                metric_rows.append([name, label, f"{ma:.3f}", f"{mb:.3f}", f"{mb - ma:+.3f}"])
    only = [f"only in A: {n}" for n in va if n not in vb] + [f"only in B: {n}" for n in vb if n not in va]
    try:
        verdicts = evaluate_budgets(_SavedReport(b), budgets) if budgets else []
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


class _SavedVariant:
    """A variant of a saved report.json, with the attributes budgets read."""

    def __init__(self, data: dict):
        self.name = data["name"]
        self.reference = data.get("reference", False)
        self.status = data.get("status", "ok")
        self.metrics = data.get("metrics") or {}
        self.deltas = data.get("deltas") or {}
        self.latency_ms = data.get("latency_ms") or {}
        self.throughput = data.get("throughput")
        self.peak_rss_mb = data.get("peak_rss_mb")
        self.compile_seconds = data.get("compile_seconds")
        self.model_size_bytes = data.get("model_size_bytes") or 0


class _SavedReport:
    def __init__(self, data: dict):
        self.variants = [_SavedVariant(v) for v in data.get("variants", [])]
        self.verdicts = []
