"""report.html: one self-contained page per run (inline CSS, plots as inline PNG, no scripts, no links out).

It holds the comparison table (the same columns as the printed table), three plots (latency vs accuracy with
the Pareto front, time per stage, latency distribution), what each graph pass did, the export parity checks,
the run's provenance and the worst utterances of each variant. Every string that came from a recipe, a plugin
or a model's output is HTML-escaped: hypotheses are model output and may contain anything.
"""
from __future__ import annotations

import base64
import difflib
import html
import io
import math
from collections.abc import Mapping
from typing import Any

from porter.pareto import default_accuracy_metric, front_points
from porter.report import RunReport, table_rows

# how many utterances per variant the per-utterance section shows
WORST_UTTERANCES = 10

STAGE_ORDER = ("preprocess", "export", "graph_fix", "compile", "run", "run_reference", "score")
STAGE_COLOURS = {"preprocess": "#8c8c8c", "export": "#1f77b4", "graph_fix": "#9467bd", "compile": "#ff7f0e",
                 "run": "#2ca02c", "run_reference": "#98df8a", "score": "#d62728"}

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")

CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 24px auto;
       max-width: 1600px; padding: 0 16px; color: #1a1a1a; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 1.8em; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.meta { color: #555; margin-top: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px 0; }
th, td { border: 1px solid #d0d0d0; padding: 3px 6px; vertical-align: top; }
th { background: #eef1f5; text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fafafa; }
tr.pareto td { background: #eaf6ea; }
tr.failed td { background: #fbeaea; }
tr.skipped td { background: #fdf6e3; }
.bad { color: #b00020; font-weight: bold; }
.good { color: #1b7a1b; }
.note { color: #555; font-size: 13px; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
img.plot { max-width: 100%; height: auto; border: 1px solid #e0e0e0; margin: 6px 0; }
details { margin: 6px 0; }
summary { cursor: pointer; font-weight: bold; }
del { background: #fbdada; text-decoration: line-through; }
ins { background: #d6f5d6; text-decoration: none; }
.legend span { margin-right: 16px; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _attr(obj: Any, name: str, default: Any = None) -> Any:
    """Stage/pass/check records are dataclasses in a fresh report and dicts in one read back from JSON."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    if v is None:
        return "-"
    if v != 0 and (abs(v) < 10 ** -digits or abs(v) >= 1e6):
        return f"{v:.{digits}g}"
    return f"{v:.{digits}f}"


def _table(header: list[str], rows: list[list[str]], *, numeric: set[int] = frozenset(),
           row_classes: list[str] | None = None, raw: bool = False) -> str:
    """A table; cells are escaped unless ``raw`` (then the caller has escaped them)."""
    out = ['<div class="scroll"><table>', "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, cell in enumerate(row):
            text = cell if raw else _e(cell)
            cells.append(f'<td class="num">{text}</td>' if j in numeric else f"<td>{text}</td>")
        out.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ plots

def _figure(width: float, height: float):
    # Figure + Agg canvas directly: no pyplot, so no global backend switch and no figures kept alive
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    # no Software text chunk: it would carry a URL into the page
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{data}">'


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _maybe_log(ax, values: list[float], axis: str = "x") -> None:
    positive = [v for v in values if v and v > 0]
    if positive and max(positive) / min(positive) > 30:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def plot_latency_vs_accuracy(report: RunReport, metric: str) -> str | None:
    points = front_points(report.variants, metric, include_estimates=True)
    if not points:
        return None
    fig = _figure(14, 5.8)
    ax = fig.add_subplot(1, 2, 1)
    # the Pareto front is on latency, which a batched run pays per batch; throughput is where batching shows
    tax = fig.add_subplot(1, 2, 2, sharey=ax)
    colours = _colours(len(points))
    rates = []
    xs = []
    for i, ((v, p50, err), colour) in enumerate(zip(points, colours)):
        p90 = _num(v.latency_ms.get("p90"))
        p99 = _num(v.latency_ms.get("p99"))
        if p99 is not None and p99 > p50:
            ax.plot([p50, p99], [err, err], color=colour, lw=1.2, alpha=0.8, zorder=2)
            ax.plot([p99], [err], marker="|", ms=12, color=colour, zorder=2)
        if p90 is not None and p90 > p50:
            ax.plot([p50, p90], [err, err], color=colour, lw=4, alpha=0.6, zorder=2, solid_capstyle="butt")
        label = v.name + (" (ref)" if v.reference else "") + (" [estimate]" if v.estimate else "") \
            + ("  \u2605 Pareto" if v.pareto else "")
        # shapes as well as colours: variants with equal accuracy and similar speed sit on top of each other
        ax.plot([p50], [err], linestyle="none", marker=MARKERS[i % len(MARKERS)],
                ms=12 if v.pareto else 9, markerfacecolor="white" if v.estimate else colour,
                markeredgecolor="black" if v.pareto else colour, markeredgewidth=1.6, color=colour,
                label=label, zorder=3)
        xs += [p50] + [x for x in (p90, p99) if x is not None]
        rate = _num(v.throughput)
        if rate is not None:
            tax.plot([rate], [err], linestyle="none", marker=MARKERS[i % len(MARKERS)], ms=12 if v.pareto else 9,
                     markerfacecolor="white" if v.estimate else colour,
                     markeredgecolor="black" if v.pareto else colour, markeredgewidth=1.6, zorder=3)
            rates.append(rate)
    front = sorted((p50, err) for v, p50, err in points if v.pareto)
    if front:
        fx, fy = zip(*front)
        ax.plot(fx, fy, drawstyle="steps-post", color="black", lw=1.2, ls="--", zorder=1,
                label="Pareto front")
    _maybe_log(ax, xs)
    ax.set_xlabel("latency per utterance, ms (dot: p50; thick whisker to p90, thin to p99)")
    ax.set_ylabel(f"{metric} (lower is better)")
    ax.set_title(f"Latency vs {metric} per variant (dashed: Pareto front)")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.08, y=0.15)
    _maybe_log(tax, rates)
    tax.set_xlabel("throughput, utterances/s (higher is better)")
    tax.set_title(f"Throughput vs {metric}")
    tax.grid(True, which="both", alpha=0.3)
    tax.margins(x=0.1)
    tax.tick_params(labelleft=False)
    tax.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
               frameon=False)
    fig.tight_layout()
    return _png(fig)


def _stage_kind(record) -> str:
    return str(_attr(record, "stage", "?"))


def plot_stage_times(report: RunReport) -> str | None:
    variants = [v for v in report.variants if v.stages]
    if not variants:
        return None
    from matplotlib.patches import Patch

    fig = _figure(11, 1.2 + 0.55 * len(variants))
    ax = fig.add_subplot(1, 1, 1)
    kinds_seen: list[str] = []
    totals = []
    for row, v in enumerate(variants):
        left = 0.0
        computed = 0.0
        cached = 0
        for rec in v.stages:
            seconds = _num(_attr(rec, "seconds")) or 0.0
            kind = _stage_kind(rec)
            hit = bool(_attr(rec, "cache_hit", False))
            if kind not in kinds_seen:
                kinds_seen.append(kind)
            ax.barh(row, seconds, left=left, color=STAGE_COLOURS.get(kind, "#17becf"),
                    alpha=0.35 if hit else 0.95, hatch="///" if hit else None, edgecolor="white", linewidth=1)
            left += seconds
            if hit:
                cached += 1
            else:
                computed += seconds
        totals.append(left)
        note = f" {computed:.2f} s computed" + (f", {cached} stage(s) cached" if cached else "")
        ax.text(left, row, note, va="center", fontsize=9)
    ax.set_yticks(range(len(variants)), [v.name for v in variants])
    ax.invert_yaxis()
    ax.set_xlim(0, max(totals + [1e-3]) * 1.45)
    ax.set_xlabel("seconds (hatched, pale: taken from the cache; the bar shows the time it took when computed)")
    ax.set_title("Time per stage per variant")
    handles = [Patch(color=STAGE_COLOURS.get(k, "#17becf"), label=k)
               for k in sorted(kinds_seen, key=lambda k: STAGE_ORDER.index(k) if k in STAGE_ORDER else 99)]
    handles.append(Patch(facecolor="#bbbbbb", hatch="///", edgecolor="white", label="cached"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    ax.grid(True, axis="x", alpha=0.3)
    return _png(fig)


def variant_latencies(v) -> list[float]:
    values = v.details.get("latencies_ms") if isinstance(v.details, Mapping) else None
    return [float(x) for x in values or () if _num(x) is not None]


def plot_latency_distribution(report: RunReport) -> str | None:
    data = [(v, variant_latencies(v)) for v in report.variants if v.status == "ok"]
    data = [(v, lat) for v, lat in data if lat]
    if not data:
        return None
    import numpy as np

    fig = _figure(11, 1.3 + 0.6 * len(data))
    ax = fig.add_subplot(1, 1, 1)
    colours = _colours(len(data))
    ax.boxplot([lat for _, lat in data], orientation="horizontal", whis=(1, 99), showfliers=False, widths=0.6,
               medianprops={"color": "black", "lw": 1.5})
    rng = np.random.default_rng(0)  # jitter only; fixed so the same report renders the same picture
    for i, ((_, lat), colour) in enumerate(zip(data, colours), start=1):
        y = i + rng.uniform(-0.22, 0.22, size=len(lat))
        ax.scatter(lat, y, s=22, color=colour, alpha=0.7, zorder=3, linewidths=0)
        ax.text(1.0, i, f"  n={len(lat)}", va="center", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_yticks(range(1, len(data) + 1),
                  [v.name + (f" (batch {v.details.get('run', {}).get('batch_size')})"
                             if v.details.get("run", {}).get("batch_size", 1) not in (1, None) else "")
                   for v, _ in data])
    ax.invert_yaxis()
    _maybe_log(ax, [x for _, lat in data for x in lat])
    ax.set_xlabel("latency per utterance, ms (box: quartiles; whiskers: p1 to p99; dots: every utterance; "
                  "batched runs give each utterance its batch's time)")
    ax.set_title("Latency distribution")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return _png(fig)


# ------------------------------------------------------------------------------------------------ sections

def _variants_section(report: RunReport, metric: str | None) -> str:
    header, rows = table_rows(report)
    # per-subset metrics (``wer/unseen_voices``) get their own table: in one table the page scrolls sideways
    subset_metrics = {m for v in report.variants for m in v.metrics if "/" in m}
    subset_cols = [i for i, h in enumerate(header) if h in subset_metrics]
    main_cols = [i for i in range(len(header)) if i not in subset_cols]
    main_header = [header[i] for i in main_cols] + ["peak RSS MB"]
    main_rows, subset_rows, classes = [], [], []
    for v, row in zip(report.variants, rows):
        # the text table joins flags with bare commas; spaces let the browser wrap a long flag list
        row[3] = row[3].replace(",", ", ")
        main_rows.append([row[i] for i in main_cols] + [_fmt(v.peak_rss_mb, 0)])
        subset_rows.append([row[0]] + [row[i] for i in subset_cols])
        classes.append("pareto" if v.pareto else (v.status if v.status != "ok" else ""))
    text_cols = {0, 1, 2, 3, main_header.index("cache"), main_header.index("status")} \
        if "cache" in main_header and "status" in main_header else {0, 1, 2, 3}
    out = [_table(main_header, main_rows, numeric=set(range(len(main_header))) - text_cols, row_classes=classes)]
    legend = ["* on the accuracy/latency Pareto front" + (f" ({_e(metric)} vs p50 latency)" if metric else ""),
              "(ref) the reference variant the Δ columns are measured against",
              "[estimate] a CPU emulation of a device's precision: its accuracy is an estimate and its latency "
              "is not the device's",
              "run MB: memory the run stage added; peak RSS MB: the process's peak during the variant's stages; "
              "cache: stages taken from the cache / stages"]
    out.append('<p class="note">' + "<br>".join(legend) + "</p>")
    if subset_cols:
        out.append("<h3>Metrics per subset</h3>")
        out.append(_table([header[0]] + [header[i] for i in subset_cols], subset_rows,
                          numeric=set(range(1, 1 + len(subset_cols))), row_classes=classes))
    for v in report.variants:
        if v.status != "ok":
            out.append(f'<p><span class="bad">{_e(v.name)}: {_e(v.status)}</span>: {_e(v.message)}</p>')
    for v in report.variants:
        if v.details.get("random_inputs"):
            out.append(f'<p class="note">{_e(v.name)}: {_e(v.details["random_inputs"])}</p>')
    return "\n".join(out)


def _verdicts_section(report: RunReport) -> str:
    if not report.verdicts:
        return ""
    rows, classes = [], []
    for verdict in report.verdicts:
        ok = bool(verdict.get("ok"))
        rows.append(["ok" if ok else "BROKEN", str(verdict.get("variant", "")), str(verdict.get("budget", "")),
                     _fmt(verdict.get("value"), 4)])
        classes.append("" if ok else "failed")
    return "<h2>Budgets</h2>\n" + _table(["verdict", "variant", "budget", "value"], rows, numeric={3},
                                         row_classes=classes)


def _settings_section(report: RunReport) -> str:
    rows = []
    for v in report.variants:
        flags = ", ".join(f"{k}={val}" for k, val in sorted(v.flags.items())) or "-"
        run = v.details.get("run", {}) if isinstance(v.details, Mapping) else {}
        compiled = v.details.get("compile", {}) if isinstance(v.details, Mapping) else {}
        rows.append([v.name, v.target, " → ".join(v.passes) or "-", flags,
                     ", ".join(f"{k}={val}" for k, val in sorted(compiled.items())) or "-",
                     ", ".join(f"{k}={val}" for k, val in sorted(run.items())) or "-"])
    return _table(["variant", "target", "passes (in order)", "all target flags", "compile details",
                   "run details"], rows)


def _op_changes(before: Mapping, after: Mapping) -> str:
    changes = [f"{op} {before.get(op, 0)}→{after.get(op, 0)}" for op in sorted(set(before) | set(after))
               if before.get(op, 0) != after.get(op, 0)]
    return ", ".join(changes) or "no op-count change"


def _grouped(report: RunReport, items_of) -> list[tuple[list[str], list]]:
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


def _passes_section(report: RunReport) -> str:
    groups = _grouped(report, lambda v: v.pass_records)
    if not groups:
        return "<h2>Graph passes</h2>\n<p class=\"note\">No variant applied graph passes.</p>"
    out = ["<h2>Graph passes</h2>",
           '<p class="note">Each pass is checked on real inputs: the model before and after it, max abs '
           "difference of the outputs against the pass's tolerance.</p>"]
    for names, records in groups:
        rows, classes = [], []
        for rec in records:
            before = dict(_attr(rec, "ops_before", {}) or {})
            after = dict(_attr(rec, "ops_after", {}) or {})
            check = _attr(rec, "check", {}) or {}
            diff, tol = _num(_attr(check, "max_abs_diff")), _num(_attr(check, "tolerance"))
            passed = diff is not None and tol is not None and diff <= tol
            rows.append([str(_attr(rec, "name", "?")), str(sum(before.values())), str(sum(after.values())),
                         _op_changes(before, after), _fmt(diff, 3), _fmt(tol, 3),
                         str(_attr(check, "samples", "-")), _fmt(_attr(rec, "seconds"), 2),
                         "ok" if passed else "FAILED"])
            classes.append("" if passed else "failed")
        out.append(f"<h3>{_e(', '.join(names))}</h3>")
        out.append(_table(["pass", "ops before", "ops after", "op counts changed", "max abs diff", "tolerance",
                           "samples", "seconds", "parity"], rows, numeric={1, 2, 4, 5, 6, 7},
                          row_classes=classes))
    return "\n".join(out)


def _checks_section(report: RunReport) -> str:
    groups = _grouped(report, lambda v: v.checks)
    if not groups:
        return "<h2>Export parity</h2>\n<p class=\"note\">No export checks in this run.</p>"
    out = ["<h2>Export parity</h2>",
           '<p class="note">The exported ONNX model against the framework model on real inputs.</p>']
    for names, checks in groups:
        rows, classes = [], []
        for c in checks:
            diff, tol = _num(_attr(c, "max_abs_diff")), _num(_attr(c, "tolerance"))
            passed = diff is not None and tol is not None and diff <= tol
            rows.append([str(_attr(c, "label", "")), _fmt(diff, 3), _fmt(tol, 3), str(_attr(c, "samples", "-")),
                         "ok" if passed else "FAILED", str(_attr(c, "detail", "") or "")])
            classes.append("" if passed else "failed")
        out.append(f"<h3>{_e(', '.join(names))}</h3>")
        out.append(_table(["check", "max abs diff", "tolerance", "samples", "parity", "detail"], rows,
                          numeric={1, 2, 3}, row_classes=classes))
    return "\n".join(out)


def _kv_table(title: str, mapping: Mapping) -> str:
    if not mapping:
        return ""
    return f"<h3>{_e(title)}</h3>\n" + _table(["name", "value"], [[str(k), str(v)] for k, v in mapping.items()])


def _provenance_section(report: RunReport) -> str:
    out = ["<h2>Provenance</h2>"]
    run = {"recipe": report.recipe, "recipe sha256": report.recipe_digest, "run name": report.name,
           "workspace": report.workspace, "started (UTC)": report.started,
           "wall time": f"{report.wall_seconds:.2f} s", "executor": report.executor,
           "porter": report.porter_version,
           "stages": ", ".join(f"{k} {v}" for k, v in report.stage_counts.items())}
    out.append(_kv_table("Run", run))
    if report.plugins:
        rows = [[str(p.get("name", "")), str(p.get("version", "")), str(p.get("module", "")),
                 str(p.get("source", ""))] for p in report.plugins]
        out.append("<h3>Plugins</h3>\n" + _table(["plugin", "version", "module", "source"], rows))
    out.append(_kv_table("Libraries", report.libraries))
    out.append(_kv_table("Tools", report.tools) if report.tools else
               '<h3>Tools</h3>\n<p class="note">No vendor tool reported a version.</p>')
    out.append(_kv_table("Host", report.host))
    rows = [[v.name, key, digest] for v in report.variants for key, digest in v.artifacts.items()]
    if rows:
        out.append("<h3>Artifact digests (sha256)</h3>\n" + _table(["variant", "stage:label", "digest"],
                                                                 [[a, b, c] for a, b, c in rows]))
    return "\n".join(out)


def _word_diff(reference: str, hypothesis: str) -> tuple[str, str]:
    """Both strings, escaped, with the words that differ marked (deleted in the reference, inserted in the
    hypothesis)."""
    ref_words, hyp_words = str(reference).split(), str(hypothesis).split()
    ref_out, hyp_out = [], []
    matcher = difflib.SequenceMatcher(a=ref_words, b=hyp_words, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        ref_part = " ".join(_e(w) for w in ref_words[a0:a1])
        hyp_part = " ".join(_e(w) for w in hyp_words[b0:b1])
        if op == "equal":
            ref_out.append(ref_part)
            hyp_out.append(hyp_part)
        else:
            if ref_part:
                ref_out.append(f"<del>{ref_part}</del>")
            if hyp_part:
                hyp_out.append(f"<ins>{hyp_part}</ins>")
    return " ".join(ref_out), " ".join(hyp_out)


def worst_samples(v, metric: str | None, n: int) -> list:
    """The ``n`` samples with the most errors on ``metric`` (ties broken by the other metrics, then id)."""
    def errors(s) -> Mapping:
        return _attr(s, "errors", {}) or {}

    def key(s):
        e = errors(s)
        primary = _num(e.get(metric)) if metric else None
        rest = sum(_num(x) or 0.0 for k, x in e.items() if k != metric)
        return (-(primary or 0.0), -rest, str(_attr(s, "id", "")))

    wrong = [s for s in v.samples if any((_num(x) or 0.0) > 0 for x in errors(s).values())]
    return sorted(wrong, key=key)[:n]


def _utterances_section(report: RunReport, metric: str | None, n: int) -> str:
    out = ["<h2>Worst utterances</h2>",
           f'<p class="note">Per variant, up to {n} utterances with the most errors'
           + (f" on {_e(metric)}" if metric else "") + '. In the reference column <del>struck</del> words are '
           'missing or replaced in the hypothesis; in the hypothesis column <ins>marked</ins> words are inserted '
           "or substituted.</p>"]
    for v in report.variants:
        if v.status != "ok" or not v.samples:
            continue
        worst = worst_samples(v, metric, n)
        total = len(v.samples)
        if not worst:
            out.append(f'<p><b>{_e(v.name)}</b>: all {total} utterances without errors.</p>')
            continue
        summary = f"{_e(v.name)}: {len(worst)} shown of {total} utterances"
        names: list[str] = []
        for s in worst:
            for k in (_attr(s, "errors", {}) or {}):
                if k not in names:
                    names.append(k)
        rows = []
        for s in worst:
            ref, hyp = _word_diff(_attr(s, "reference", ""), _attr(s, "hypothesis", ""))
            errs = _attr(s, "errors", {}) or {}
            rows.append([_e(_attr(s, "id", ""))] + [_e(_fmt(errs.get(k), 1)) for k in names] + [ref, hyp])
        table = _table(["id"] + names + ["reference", "hypothesis"], rows, raw=True,
                       numeric=set(range(1, 1 + len(names))))
        open_attr = " open" if v.pareto or v.reference else ""
        out.append(f"<details{open_attr}><summary>{summary}</summary>\n{table}</details>")
    if len(out) == 2:
        out.append('<p class="note">No per-utterance scores in this run.</p>')
    return "\n".join(out)


def _plots_section(report: RunReport, metric: str | None) -> str:
    out = ["<h2>Plots</h2>"]
    missing = []
    plot = plot_latency_vs_accuracy(report, metric) if metric else None
    if plot:
        out.append(plot)
    else:
        missing.append("latency vs accuracy (no variant has both a latency and an accuracy metric)")
    plot = plot_stage_times(report)
    if plot:
        out.append(plot)
    else:
        missing.append("time per stage (no stage records)")
    plot = plot_latency_distribution(report)
    if plot:
        out.append(plot)
    else:
        missing.append("latency distribution (the report stores no per-utterance latencies)")
    if missing:
        out.append('<p class="note">Not drawn: ' + "; ".join(_e(m) for m in missing) + "</p>")
    return "\n".join(out)


def render_html(report: RunReport, *, worst_n: int = WORST_UTTERANCES) -> str:
    metric = default_accuracy_metric(report.variants)
    title = f"porter report: {report.name}"
    ref = f"; reference variant: {_e(report.reference)}" if report.reference else ""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">recipe <code>{_e(report.recipe)}</code> (sha256 {_e(report.recipe_digest[:12])}), '
        f"porter {_e(report.porter_version)}, started {_e(report.started)}, {report.wall_seconds:.1f} s{ref}</p>",
        "<h2>Variants</h2>",
        _variants_section(report, metric),
        _verdicts_section(report),
        _plots_section(report, metric),
        "<h2>Variant settings</h2>",
        _settings_section(report),
        _passes_section(report),
        _checks_section(report),
        _utterances_section(report, metric, worst_n),
        _provenance_section(report),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


__all__ = ["render_html", "worst_samples", "WORST_UTTERANCES"]
