"""report.md: the run as a document a reviewer reads in a pull request.

Variants table, per-subset metrics, budget verdicts, what every graph pass did, each variant's parity checks, the
worst samples with reference and hypothesis, and provenance (recipe hash, versions, host CPU and its features).
Cells are escaped for Markdown tables: model output may hold ``|``, backticks or markup.
"""
from __future__ import annotations

from collections.abc import Collection

from porter.report.html import fmt, grouped, op_changes
from porter.report.model import RunReport
from porter.report.pareto import default_accuracy_metric
from porter.report.samples import WORST_SAMPLES, worst_samples
from porter.report.table import table_columns

_ESCAPES = str.maketrans({"|": "\\|", "<": "&lt;", ">": "&gt;", "`": "\\`", "*": "\\*", "_": "\\_",
                          "\n": " ", "\r": " ", "[": "\\[", "]": "\\]"})


def cell(value) -> str:
    return str(value).translate(_ESCAPES) if value not in (None, "") else "-"


def md_table(header: list[str], rows: list[list], numeric: Collection[int] = ()) -> list[str]:
    align = ["---:" if i in numeric else "---" for i in range(len(header))]
    return (["| " + " | ".join(cell(h) for h in header) + " |", "| " + " | ".join(align) + " |"]
            + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows] + [""])


def _variants(report: RunReport) -> list[str]:
    cols = table_columns(report)
    main = [c for c in cols if not c.subset]
    out = ["## Variants", ""]
    out += md_table([c.header for c in main], [[c.cells[i] for c in main] for i in range(len(report.variants))],
                    {i for i, c in enumerate(main) if c.numeric})
    out += ["\\* on the accuracy/latency Pareto front; (ref) the reference the Δ columns are measured against; "
            "flags: the target flags that set a variant apart (all of them under Variant settings).", ""]
    subset = [c for c in cols if c.subset]
    if subset:
        out += ["### Metrics per subset", ""]
        out += md_table(["variant"] + [c.header for c in subset],
                        [[v.name] + [c.cells[i] for c in subset] for i, v in enumerate(report.variants)],
                        set(range(1, 1 + len(subset))))
    for v in report.variants:
        if v.status != "ok":
            out += [f"- **{cell(v.name)}: {cell(v.status)}**: {cell(v.message)}"]
    notes = [f"- {cell(v.name)}: {cell(note)}" for v in report.variants for note in v.notes]
    if notes or any(v.status != "ok" for v in report.variants):
        out += notes + [""]
    return out


def _verdicts(report: RunReport) -> list[str]:
    if not report.verdicts:
        return ["## Budgets", "", "No budgets were set (recipe `budgets:` or `--budget`).", ""]
    rows = [["ok" if v.ok else "BROKEN", v.variant, v.budget, fmt(v.value, 4)] for v in report.verdicts]
    return ["## Budgets", ""] + md_table(["verdict", "variant", "budget", "value"], rows, {3})


def _settings(report: RunReport) -> list[str]:
    def pairs(mapping) -> str:
        return ", ".join(f"{k}={val}" for k, val in sorted(mapping.items())) or "-"

    rows = [[v.name, v.target, " → ".join(v.passes) or "-", pairs(v.flags), pairs(v.run_details)]
            for v in report.variants]
    return ["## Variant settings", ""] + md_table(["variant", "target", "passes (in order)", "target flags",
                                                   "run details"], rows)


def _passes(report: RunReport) -> list[str]:
    out = ["## Graph passes", ""]
    groups = grouped(report, lambda v: v.pass_records)
    if not groups:
        return out + ["No variant applied graph passes.", ""]
    out += ["Each pass is checked on real inputs against the model before it (max abs difference of the outputs "
            "within the pass's tolerance).", ""]
    for names, records in groups:
        out += [f"### {cell(', '.join(names))}", ""]
        out += md_table(["pass", "ops before", "ops after", "op counts changed", "max abs diff", "tolerance",
                         "parity"],
                        [[r.name, sum(r.ops_before.values()), sum(r.ops_after.values()),
                          op_changes(r.ops_before, r.ops_after), fmt(r.check.max_abs_diff),
                          fmt(r.check.tolerance), "ok" if r.check.passed else "FAILED"] for r in records],
                        {1, 2, 4, 5})
    return out


def _checks(report: RunReport) -> list[str]:
    out = ["## Parity checks", ""]
    rows = []
    for v in report.variants:
        for c in v.checks:
            rows.append(_check_row(v.name, c))
        for r in v.pass_records:
            rows.append(_check_row(v.name, r.check))
    if not rows:
        return out + ["No parity checks in this run.", ""]
    return out + md_table(["variant", "check", "max abs diff", "tolerance", "samples", "parity", "detail"], rows,
                          {2, 3, 4})


def _check_row(variant: str, c) -> list:
    return [variant, c.label, fmt(c.max_abs_diff), fmt(c.tolerance), c.samples, "ok" if c.passed else "FAILED",
            "; ".join(x for x in (c.problem, c.detail) if x) or "-"]


def _worst(report: RunReport, n: int) -> list[str]:
    metric = default_accuracy_metric(report.variants)
    unit = report.unit
    out = [f"## Worst {unit}s", ""]
    shown = False
    for v in report.variants:
        if v.status != "ok" or not v.samples:
            continue
        worst = worst_samples(v, metric, n)
        shown = True
        if not worst:
            out += [f"**{cell(v.name)}**: all {len(v.samples)} {unit}s without errors.", ""]
            continue
        names: list[str] = []
        for s in worst:
            names += [k for k in s.errors if k not in names]
        out += [f"**{cell(v.name)}**: {len(worst)} of {len(v.samples)} {unit}s"
                + (f", most errors on {metric} first" if metric else ""), ""]
        out += md_table(["id"] + names + ["reference", "hypothesis"],
                        [[s.id] + [fmt(s.errors.get(k), 1) for k in names] + [s.reference, s.hypothesis]
                         for s in worst], set(range(1, 1 + len(names))))
    if not shown:
        out += [f"No per-{unit} scores in this run.", ""]
    return out


def _provenance(report: RunReport) -> list[str]:
    out = ["## Provenance", "",
           f"- recipe: `{report.recipe}`, sha256 `{report.recipe_digest}`",
           f"- porter {cell(report.porter_version)}, executor {cell(report.executor)}, started {report.started}, "
           f"{report.wall_seconds:.1f} s",
           "- stages: " + (", ".join(f"{k} {v}" for k, v in report.stage_counts.items()) or "-")]
    host = report.host
    if host:
        out.append(f"- host: {cell(host.get('cpu'))}, {cell(host.get('cores'))} cores, {cell(host.get('platform'))}")
        out.append(f"- CPU features: {cell(host.get('cpu_features', 'not recorded'))}")
    if report.plugins:
        out.append("- plugins: " + ", ".join(f"{cell(p.name)} {cell(p.version)} ({cell(p.source)})"
                                            for p in report.plugins))
    if report.libraries:
        out.append("- libraries: " + ", ".join(f"{cell(k)} {cell(v)}" for k, v in report.libraries.items()))
    out.append("- tools: " + (", ".join(f"{cell(k)} {cell(v)}" for k, v in report.tools.items())
                              or "no vendor tool reported a version"))
    return out + [""]


def render_markdown(report: RunReport, *, worst_n: int = WORST_SAMPLES) -> str:
    head = [f"# porter report: {cell(report.name)}", "",
            f"recipe `{report.recipe}` (sha256 {report.recipe_digest[:12]}), porter {report.porter_version}, "
            f"{report.started}" + (f"; reference variant: {cell(report.reference)}" if report.reference else ""),
            ""]
    lines = (head + _variants(report) + _verdicts(report) + _settings(report) + _passes(report) + _checks(report)
             + _worst(report, worst_n) + _provenance(report))
    return "\n".join(lines).rstrip("\n") + "\n"


__all__ = ["render_markdown"]
