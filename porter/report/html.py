"""report.html: one self-contained page per run (inline CSS, plots as inline PNG, no scripts, no links out).

The page is rendered from ``templates/report.html.j2`` by a Jinja2 environment with autoescaping on, so every
string that came from a recipe, a plugin or a model's output (hypotheses are model output and may hold anything)
is escaped by the template engine, not by hand. This module only turns a :class:`RunReport` into plain rows.
"""
from __future__ import annotations

import base64
import difflib
from dataclasses import dataclass, field
from functools import lru_cache

from porter.report import plots
from porter.report.model import RunReport, VariantReport
from porter.report.pareto import default_accuracy_metric
from porter.report.samples import WORST_SAMPLES, worst_samples
from porter.report.table import table_columns

# kept under its old name for callers of the first HTML report
WORST_UTTERANCES = WORST_SAMPLES


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)
    row_classes: list[str] = field(default_factory=list)
    sticky: bool = False  # keep the first column visible while the table scrolls sideways

    def row_class(self, i: int) -> str:
        return self.row_classes[i] if i < len(self.row_classes) else ""


@dataclass
class Group:
    names: str
    table: Table


@dataclass
class SampleRow:
    id: str
    errors: list[str]
    reference: list[tuple[str, str]]  # (kind, text): kind "" for equal words, "del"/"ins" for differences
    hypothesis: list[tuple[str, str]]


@dataclass
class WorstOf:
    variant: str
    total: int
    metric_names: list[str]
    rows: list[SampleRow]
    open: bool


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(loader=PackageLoader("porter.report", "templates"),
                       autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def fmt(value, digits: int = 3) -> str:
    v = plots.num(value)
    if v is None:
        return "-"
    if v != 0 and (abs(v) < 10 ** -digits or abs(v) >= 1e6):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}f}"


def _row_class(v: VariantReport) -> str:
    return "pareto" if v.pareto else (v.status if v.status != "ok" else "")


def _variants_tables(report: RunReport) -> tuple[Table, Table | None]:
    columns = table_columns(report)
    main = [c for c in columns if not c.subset]
    subset = [c for c in columns if c.subset]
    classes = [_row_class(v) for v in report.variants]
    rows = [[c.cells[i] for c in main] + [fmt(v.peak_rss_mb, 0)] for i, v in enumerate(report.variants)]
    table = Table([c.header for c in main] + ["peak RSS MB"], rows,
                  numeric={i for i, c in enumerate(main) if c.numeric} | {len(main)}, row_classes=classes,
                  sticky=True)
    if not subset:
        return table, None
    sub_rows = [[v.name] + [c.cells[i] for c in subset] for i, v in enumerate(report.variants)]
    return table, Table(["variant"] + [c.header for c in subset], sub_rows,
                        numeric=set(range(1, 1 + len(subset))), row_classes=classes, sticky=True)


def _verdicts_table(report: RunReport) -> Table | None:
    if not report.verdicts:
        return None
    rows = [["ok" if v.ok else "BROKEN", v.variant, v.budget, fmt(v.value, 4)] for v in report.verdicts]
    return Table(["verdict", "variant", "budget", "value"], rows, numeric={3},
                 row_classes=["" if v.ok else "failed" for v in report.verdicts])


def _pairs(mapping) -> str:
    return ", ".join(f"{k}={val}" for k, val in sorted(mapping.items())) or "-"


def _settings_table(report: RunReport) -> Table:
    rows = [[v.name, v.target, " → ".join(v.passes) or "-", _pairs(v.flags), _pairs(v.compile_details),
             _pairs(v.run_details)] for v in report.variants]
    return Table(["variant", "target", "passes (in order)", "all target flags", "compile details", "run details"],
                 rows, sticky=True)


def grouped(report: RunReport, items_of) -> list[tuple[list[str], list]]:
    """Variants that share identical records (same export, same pass chain) are shown once."""
    groups: list[tuple[list[str], list]] = []
    for v in report.variants:
        items = list(items_of(v))
        if not items:
            continue
        for names, seen in groups:
            if seen == items:
                names.append(v.name)
                break
        else:
            groups.append(([v.name], items))
    return groups


def op_changes(before, after) -> str:
    changes = [f"{op} {before.get(op, 0)}→{after.get(op, 0)}" for op in sorted(set(before) | set(after))
               if before.get(op, 0) != after.get(op, 0)]
    return ", ".join(changes) or "no op-count change"


def _passes_groups(report: RunReport) -> list[Group]:
    out = []
    for names, records in grouped(report, lambda v: v.pass_records):
        rows, classes = [], []
        for rec in records:
            passed = rec.check.passed
            rows.append([rec.name, str(sum(rec.ops_before.values())), str(sum(rec.ops_after.values())),
                         op_changes(rec.ops_before, rec.ops_after), fmt(rec.check.max_abs_diff, 3),
                         fmt(rec.check.tolerance, 3), str(rec.check.samples), fmt(rec.seconds, 2),
                         "ok" if passed else "FAILED"])
            classes.append("" if passed else "failed")
        out.append(Group(", ".join(names), Table(
            ["pass", "ops before", "ops after", "op counts changed", "max abs diff", "tolerance", "samples",
             "seconds", "parity"], rows, numeric={1, 2, 4, 5, 6, 7}, row_classes=classes)))
    return out


def _checks_groups(report: RunReport) -> list[Group]:
    out = []
    for names, checks in grouped(report, lambda v: v.checks):
        rows = [[c.label, fmt(c.max_abs_diff, 3), fmt(c.tolerance, 3), str(c.samples),
                 "ok" if c.passed else "FAILED", "; ".join(x for x in (c.problem, c.detail) if x)] for c in checks]
        out.append(Group(", ".join(names), Table(["check", "max abs diff", "tolerance", "samples", "parity",
                                                  "detail"], rows, numeric={1, 2, 3},
                                                 row_classes=["" if c.passed else "failed" for c in checks])))
    return out


def word_diff(reference: str, hypothesis: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Both texts as (kind, words) runs: "del" marks reference words missing or replaced in the hypothesis,
    "ins" hypothesis words inserted or substituted."""
    ref_words, hyp_words = str(reference).split(), str(hypothesis).split()
    ref_out: list[tuple[str, str]] = []
    hyp_out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=ref_words, b=hyp_words, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        ref_part, hyp_part = " ".join(ref_words[a0:a1]), " ".join(hyp_words[b0:b1])
        if op == "equal":
            ref_out.append(("", ref_part))
            hyp_out.append(("", hyp_part))
        else:
            if ref_part:
                ref_out.append(("del", ref_part))
            if hyp_part:
                hyp_out.append(("ins", hyp_part))
    return ref_out, hyp_out


def _worst(report: RunReport, metric: str | None, n: int) -> list[WorstOf]:
    out = []
    for v in report.variants:
        if v.status != "ok" or not v.samples:
            continue
        worst = worst_samples(v, metric, n)
        names: list[str] = []
        for s in worst:
            names += [k for k in s.errors if k not in names]
        rows = []
        for s in worst:
            ref, hyp = word_diff(s.reference, s.hypothesis)
            rows.append(SampleRow(s.id, [fmt(s.errors.get(k), 1) for k in names], ref, hyp))
        out.append(WorstOf(v.name, len(v.samples), names, rows, v.pareto or v.reference))
    return out


def _provenance(report: RunReport) -> list[tuple[str, Table]]:
    def kv(mapping) -> Table:
        return Table(["name", "value"], [[str(k), str(v)] for k, v in mapping.items()])

    run = {"recipe": report.recipe, "recipe sha256": report.recipe_digest, "run name": report.name,
           "workspace": report.workspace, "started (UTC)": report.started,
           "wall time": f"{report.wall_seconds:.2f} s", "executor": report.executor,
           "porter": report.porter_version,
           "stages": ", ".join(f"{k} {v}" for k, v in report.stage_counts.items())}
    out = [("Run", kv(run))]
    if report.plugins:
        out.append(("Plugins", Table(["plugin", "version", "module", "source"],
                                     [[p.name, p.version, p.module, p.source] for p in report.plugins])))
    if report.libraries:
        out.append(("Libraries", kv(report.libraries)))
    if report.tools:
        out.append(("Tools", kv(report.tools)))
    if report.host:
        out.append(("Host", kv(report.host)))
    digests = [[v.name, key, d] for v in report.variants for key, d in v.artifacts.items()]
    if digests:
        out.append(("Artifact digests (sha256)", Table(["variant", "stage:label", "digest"], digests)))
    return out


def _plots(report: RunReport, metric: str | None) -> tuple[list[str], list[str]]:
    images, missing = [], []
    drawn = [
        (plots.latency_vs_accuracy(report, metric) if metric else None,
         "latency vs accuracy (no variant has both a latency and an accuracy metric)"),
        (plots.stage_times(report), "time per stage (no stage records)"),
        (plots.latency_distribution(report), f"latency distribution (the report stores no per-{report.unit} "
                                             "latencies)"),
    ]
    for png, why in drawn:
        if png:
            images.append("data:image/png;base64," + base64.b64encode(png).decode("ascii"))
        else:
            missing.append(why)
    return images, missing


def render_html(report: RunReport, *, worst_n: int = WORST_SAMPLES) -> str:
    metric = default_accuracy_metric(report.variants)
    variants, subsets = _variants_tables(report)
    images, missing = _plots(report, metric)
    page = _environment().get_template("report.html.j2").render(
        report=report, title=f"porter report: {report.name}", metric=metric, variants=variants, subsets=subsets,
        failed=[v for v in report.variants if v.status != "ok"], verdicts=_verdicts_table(report),
        images=images, missing=missing, settings=_settings_table(report), passes=_passes_groups(report),
        checks=_checks_groups(report), worst=_worst(report, metric, worst_n), worst_n=worst_n,
        provenance=_provenance(report), unit=report.unit)
    return page.rstrip("\n") + "\n"


__all__ = ["WORST_UTTERANCES", "Table", "render_html", "word_diff"]
