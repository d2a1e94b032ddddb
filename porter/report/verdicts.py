"""Regression budgets: ``[VARIANT:]QUANTITY OP NUMBER``, e.g. ``delta_wer <= 0.5`` or ``ort_fp32:p99_ms < 40``.

QUANTITY is a metric name (``wer``, ``cer``, ``wer/unseen_voices``...), ``delta_<metric>`` (difference from the
reference variant), ``p50_ms``, ``p90_ms``, ``p99_ms``, ``throughput``, ``peak_mb``, ``compile_s`` or
``size_mb``. Without a variant prefix a budget applies to every variant except the reference.
"""
from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from typing import Iterable

from porter.errors import EXIT_BUDGET, InputError
from porter.report.model import RunReport, VariantReport, Verdict
from porter.suggest import suggest

_BUDGET = re.compile(r"^\s*(?:(?P<variant>[A-Za-z0-9_.-]+)\s*:\s*)?(?P<qty>[A-Za-z0-9_/Δ.-]+)\s*"
                     r"(?P<op><=|>=|<|>|==)\s*(?P<num>[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}
FIXED_QUANTITIES = ("p50_ms", "p90_ms", "p99_ms", "throughput", "peak_mb", "compile_s", "size_mb")
DELTA = "delta_"


@dataclass(frozen=True)
class Budget:
    """One parsed budget: ``[variant:]quantity op limit``."""

    text: str
    variant: str | None
    quantity: str  # "delta_wer" for "Δwer"
    op: str
    limit: float

    @property
    def metric(self) -> str | None:
        """The metric the quantity reads ("wer" for "delta_wer/unseen"), or None for a fixed quantity."""
        if self.quantity in FIXED_QUANTITIES:
            return None
        return self.quantity[len(DELTA):] if self.quantity.startswith(DELTA) else self.quantity


def parse_budget(text, *, field: str = "budgets") -> Budget:
    """A budget string as a Budget; a malformed one is bad input naming ``field``."""
    m = _BUDGET.match(text) if isinstance(text, str) else None
    if not m:
        raise InputError(f"bad budget {text!r}: expected [VARIANT:]QUANTITY OP NUMBER, e.g. 'delta_wer<=0.5'",
                         field=field)
    qty = m["qty"]
    if qty.startswith("Δ"):
        qty = DELTA + qty[1:]
    return Budget(text.strip(), m["variant"], qty, m["op"], float(m["num"]))


def check_budget(budget: Budget, *, metrics: Iterable[str], variants: Iterable[str] | None = None,
                 field: str = "budgets", file=None) -> None:
    """Refuse a budget whose quantity no variant can have, or that names a variant the run lacks.

    ``metrics``: the metric names the variants report (a group's ``wer/a`` counts as ``wer`` too)."""
    known = set(metrics)
    known |= {name.partition("/")[0] for name in known}
    metric = budget.metric
    if metric is not None and metric not in known and metric.partition("/")[0] not in known:
        choices = sorted(FIXED_QUANTITIES) + sorted(known) + sorted(DELTA + m for m in known)
        hint = suggest(budget.quantity, choices)
        base = budget.quantity.removesuffix("_delta")
        if base != budget.quantity and base in known:  # the order porter's --help once gave
            hint = f"; did you mean {DELTA + base!r}?"
        raise InputError(f"budget {budget.text!r}: unknown quantity {budget.quantity!r}{hint} "
                         f"(known: {', '.join(choices)})", file=file, field=field)
    if variants is not None and budget.variant is not None:
        names = list(variants)
        if budget.variant not in names:
            raise InputError(f"budget {budget.text!r} names variant {budget.variant!r}, which the run does not "
                             f"have{suggest(budget.variant, names)} (variants: {', '.join(names)})",
                             file=file, field=field)


def quantity(variant: VariantReport, name: str) -> float:
    if name.startswith("Δ"):
        name = DELTA + name[1:]
    fixed = {
        "p50_ms": variant.latency_ms.p50, "p90_ms": variant.latency_ms.p90,
        "p99_ms": variant.latency_ms.p99, "throughput": variant.throughput,
        "peak_mb": variant.peak_rss_mb, "compile_s": variant.compile_seconds,
        "size_mb": variant.model_size_bytes / 1e6 if variant.model_size_bytes else None,
    }
    if name in fixed:
        value = fixed[name]
    elif name.startswith(DELTA):
        value = variant.deltas.get(name[len(DELTA):])
    else:
        value = variant.metrics.get(name)
    return math.nan if value is None else float(value)


def evaluate_budgets(report: RunReport, budgets, *, metrics: Iterable[str] = (), file=None) -> list[Verdict]:
    """Check each budget on the report's variants; returns one verdict per (budget, variant).

    A budget whose quantity neither ``metrics`` (the recipe's metric names) nor any variant's reported metrics
    hold is bad input (exit 2), not a broken budget; a known quantity a variant lacks a value for (its reference
    failed, say) breaks the budget. ``file`` is what an error names (the report or recipe the budgets are for)."""
    reported = {name for v in report.variants for name in (v.metrics or {})}
    names = [v.name for v in report.variants]
    parsed = []
    for text in budgets:
        budget = text if isinstance(text, Budget) else parse_budget(text)
        check_budget(budget, metrics={*metrics, *reported}, variants=names, file=file, field="budgets")
        parsed.append(budget)
    verdicts = []
    for budget in parsed:
        targets = [v for v in report.variants
                   if (v.name == budget.variant if budget.variant else not v.reference)]
        for v in targets:
            if v.status != "ok":
                continue
            value = quantity(v, budget.quantity)
            ok = (not math.isnan(value)) and _OPS[budget.op](value, budget.limit)
            shown = f"{value:.4g}" if not math.isnan(value) else "no value"
            verdicts.append(Verdict(budget=budget.text, variant=v.name, value=value, ok=ok,
                                    text=f"{v.name}: {budget.quantity} = {shown} (budget {budget.op} "
                                         f"{budget.limit:g})"))
    report.verdicts = verdicts
    return verdicts


def format_verdict(verdict: Verdict) -> str:
    return ("BUDGET BROKEN: " if not verdict.ok else "budget ok: ") + verdict.text


def exit_code_for(verdicts: list[Verdict]) -> int:
    return EXIT_BUDGET if any(not v.ok for v in verdicts) else 0
