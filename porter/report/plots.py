"""report.html's plots, drawn with matplotlib's Agg canvas and returned as PNG bytes (no pyplot, no globals)."""
from __future__ import annotations

import io
import math
from typing import Any

from porter.report.model import RunReport
from porter.report.pareto import front_points

STAGE_ORDER = ("preprocess", "export", "graph_fix", "compile", "run", "run_reference", "score")
STAGE_COLOURS = {"preprocess": "#8c8c8c", "export": "#1f77b4", "graph_fix": "#9467bd", "compile": "#ff7f0e",
                 "run": "#2ca02c", "run_reference": "#98df8a", "score": "#d62728"}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")


def num(value: Any) -> float | None:
    """A finite float, or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) or math.isinf(value) else value


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    # no Software text chunk: it would carry a URL into the page
    fig.savefig(buf, format="png", bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _colours(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _maybe_log(ax, values: list[float], axis: str = "x") -> None:
    positive = [v for v in values if v and v > 0]
    if positive and max(positive) / min(positive) > 30:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def readable_span(values: list[float]) -> tuple[float, float]:
    """y limits that show ``values`` with a span of at least 10 % of their size (0.5 at least).

    Equally accurate variants would otherwise get an axis of a few hundredths, every point on one line and the
    tick labels suggesting differences that are rounding.
    """
    lo, hi = min(values), max(values)
    need = max(0.1 * max(abs(lo), abs(hi)), 0.5)
    if hi - lo >= need:
        pad = 0.12 * (hi - lo)
        return lo - pad, hi + pad
    mid = (lo + hi) / 2
    bottom = mid - need / 2
    if lo >= 0 and bottom < 0:  # error rates are not negative
        bottom = 0.0
    return bottom, bottom + need


def _label_offsets(points: list[tuple[float, float]], log_x: bool = False) -> list[tuple[int, int]]:
    """Text offsets (points) for each point's label, all above their point: a label is raised one line for each
    earlier point at the same y that sits within a quarter of the axis' width, so tied variants' names stack
    instead of printing over each other."""
    def pos(x: float) -> float:
        return math.log10(x) if log_x and x > 0 else x

    xs = [pos(x) for x, _ in points]
    width = (max(xs) - min(xs)) or 1.0
    out = []
    for i, (_, y) in enumerate(points):
        near = sum(1 for j in range(i) if round(points[j][1], 6) == round(y, 6)
                   and abs(xs[j] - xs[i]) / width < 0.25)
        out.append((6, 7 + 11 * near))
    return out


def latency_vs_accuracy(report: RunReport, metric: str) -> bytes | None:
    points = front_points(report.variants, metric, include_estimates=True)
    if not points:
        return None
    unit = report.unit
    fig = _figure(14, 5.8)
    ax = fig.add_subplot(1, 2, 1)
    # the Pareto front is on latency, which a batched run pays per batch; throughput is where batching shows
    tax = fig.add_subplot(1, 2, 2, sharey=ax)
    colours = _colours(len(points))
    rates, xs = [], []
    p50s = [p50 for _, p50, _ in points]
    positive = [x for x in p50s if x > 0]
    log_x = bool(positive) and max(positive) / min(positive) > 30
    offsets = _label_offsets([(p50, err) for _, p50, err in points], log_x)
    for i, ((v, p50, err), colour) in enumerate(zip(points, colours)):
        p90, p99 = num(v.latency_ms.p90), num(v.latency_ms.p99)
        if p99 is not None and p99 > p50:
            ax.plot([p50, p99], [err, err], color=colour, lw=1.2, alpha=0.8, zorder=2)
            ax.plot([p99], [err], marker="|", ms=12, color=colour, zorder=2)
        if p90 is not None and p90 > p50:
            ax.plot([p50, p90], [err, err], color=colour, lw=4, alpha=0.6, zorder=2, solid_capstyle="butt")
        label = v.name + (" (ref)" if v.reference else "") + (" [estimate]" if v.estimate else "") \
            + ("  \u2605 Pareto" if v.pareto else "")
        style = dict(linestyle="none", marker=MARKERS[i % len(MARKERS)], ms=12 if v.pareto else 9,
                     markerfacecolor="white" if v.estimate else colour,
                     markeredgecolor="black" if v.pareto else colour, markeredgewidth=1.6, zorder=3)
        ax.plot([p50], [err], color=colour, label=label, **style)
        # the name next to the point: shapes and colours alone do not tell apart five points on one line
        ax.annotate(v.name, (p50, err), xytext=offsets[i], textcoords="offset points", fontsize=8,
                    color=colour, zorder=4)
        xs += [p50] + [x for x in (p90, p99) if x is not None]
        rate = num(v.throughput)
        if rate is not None:
            tax.plot([rate], [err], color=colour, **style)
            rates.append(rate)
    front = sorted((p50, err) for v, p50, err in points if v.pareto)
    if front:
        fx, fy = zip(*front)
        ax.plot(fx, fy, drawstyle="steps-post", color="black", lw=1.2, ls="--", zorder=1, label="Pareto front")
    _maybe_log(ax, xs)
    ax.set_ylim(*readable_span([err for _, _, err in points]))
    ax.set_xlabel(f"latency per {unit}, ms (dot: p50; thick whisker to p90, thin to p99)")
    ax.set_ylabel(f"{metric} (lower is better)")
    ax.set_title(f"Latency vs {metric} per variant (dashed: Pareto front)")
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.12)
    _maybe_log(tax, rates)
    tax.set_xlabel(f"throughput, {unit}s/s (higher is better)")
    tax.set_title(f"Throughput vs {metric}")
    tax.grid(True, which="both", alpha=0.3)
    tax.margins(x=0.15)
    tax.tick_params(labelleft=False)
    tax.legend(*ax.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9,
               frameon=False)
    fig.tight_layout()
    return _png(fig)


def stage_times(report: RunReport) -> bytes | None:
    variants = [v for v in report.variants if v.stages]
    if not variants:
        return None
    from matplotlib.patches import Patch

    fig = _figure(11, 1.2 + 0.55 * len(variants))
    ax = fig.add_subplot(1, 1, 1)
    kinds_seen: list[str] = []
    totals = []
    for row, v in enumerate(variants):
        left = computed = 0.0
        cached = 0
        for rec in v.stages:
            seconds = num(rec.seconds) or 0.0
            if rec.stage not in kinds_seen:
                kinds_seen.append(rec.stage)
            ax.barh(row, seconds, left=left, color=STAGE_COLOURS.get(rec.stage, "#17becf"),
                    alpha=0.35 if rec.cache_hit else 0.95, hatch="///" if rec.cache_hit else None,
                    edgecolor="white", linewidth=1)
            left += seconds
            if rec.cache_hit:
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


def latency_distribution(report: RunReport) -> bytes | None:
    data = [(v, [x for x in v.latency_ms.samples if num(x) is not None]) for v in report.variants
            if v.status == "ok"]
    data = [(v, lat) for v, lat in data if lat]
    if not data:
        return None
    import numpy as np

    unit = report.unit
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

    def name(v) -> str:
        batch = v.run_details.get("batch_size", 1)
        return v.name + (f" (batch {batch})" if batch not in (1, None) else "")

    ax.set_yticks(range(1, len(data) + 1), [name(v) for v, _ in data])
    ax.invert_yaxis()
    _maybe_log(ax, [x for _, lat in data for x in lat])
    ax.set_xlabel(f"latency per {unit}, ms (box: quartiles; whiskers: p1 to p99; dots: every {unit}; "
                  f"batched runs give each {unit} its batch's time)")
    ax.set_title("Latency distribution")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return _png(fig)


__all__ = ["latency_distribution", "latency_vs_accuracy", "num", "readable_span", "stage_times"]
