"""Regression budgets: ``[VARIANT:]QUANTITY OP NUMBER``, e.g. ``delta_wer <= 0.5`` or ``ort_fp32:p99_ms < 40``.

QUANTITY is a metric name (``wer``, ``cer``, ``wer/unseen_voices``...), ``delta_<metric>`` (difference from the
reference variant), ``p50_ms``, ``p90_ms``, ``p99_ms``, ``throughput``, ``peak_mb``, ``compile_s`` or
``size_mb``. Without a variant prefix a budget applies to every variant except the reference.
"""
from __future__ import annotations

import math
import operator
import re

from porter.errors import EXIT_BUDGET, InputError
from porter.report.model import RunReport, VariantReport, Verdict

_BUDGET = re.compile(r"^\s*(?:(?P<variant>[A-Za-z0-9_.-]+)\s*:\s*)?(?P<qty>[A-Za-z0-9_/Δ.-]+)\s*"
                     r"(?P<op><=|>=|<|>|==)\s*(?P<num>[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def quantity(variant: VariantReport, name: str) -> float:
    if name.startswith("Δ"):
        name = "delta_" + name[1:]
    fixed = {
        "p50_ms": variant.latency_ms.p50, "p90_ms": variant.latency_ms.p90,
        "p99_ms": variant.latency_ms.p99, "throughput": variant.throughput,
        "peak_mb": variant.peak_rss_mb, "compile_s": variant.compile_seconds,
        "size_mb": variant.model_size_bytes / 1e6 if variant.model_size_bytes else None,
    }
    if name in fixed:
        value = fixed[name]
    elif name.startswith("delta_"):
        value = variant.deltas.get(name[len("delta_"):])
    else:
        value = variant.metrics.get(name)
    return math.nan if value is None else float(value)


def evaluate_budgets(report: RunReport, budgets) -> list[Verdict]:
    """Check each budget on the report's variants; returns one verdict per (budget, variant)."""
    verdicts = []
    for text in budgets:
        m = _BUDGET.match(text)
        if not m:
            raise InputError(f"bad budget {text!r}: expected [VARIANT:]QUANTITY OP NUMBER, e.g. 'delta_wer<=0.5'",
                             field="budgets")
        targets = [v for v in report.variants if (v.name == m["variant"] if m["variant"] else not v.reference)]
        if m["variant"] and not targets:
            raise InputError(f"budget {text!r} names variant {m['variant']!r}, which the run does not have",
                             field="budgets")
        for v in targets:
            if v.status != "ok":
                continue
            value = quantity(v, m["qty"])
            ok = (not math.isnan(value)) and _OPS[m["op"]](value, float(m["num"]))
            verdicts.append(Verdict(budget=text.strip(), variant=v.name, value=value, ok=ok,
                                    text=f"{v.name}: {m['qty']} = {value:.4g} (budget {m['op']} {m['num']})"))
    report.verdicts = verdicts
    return verdicts


def format_verdict(verdict: Verdict) -> str:
    return ("BUDGET BROKEN: " if not verdict.ok else "budget ok: ") + verdict.text


def exit_code_for(verdicts: list[Verdict]) -> int:
    return EXIT_BUDGET if any(not v.ok for v in verdicts) else 0
