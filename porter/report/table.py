"""The variants table printed at the end of ``porter run``: fitted to the terminal, or every column with --wide.

The narrow table always has the variant, its target, the recipe's overall metrics with their Δ against the
reference, p50 latency, throughput and status; the other columns (flags that set the variant apart, p99, cache
hits, p90, passes, compile time, size, per-subset metrics) join in that order while they fit. Per-subset
metrics that do not fit get a second small table. Cells never hold a long path: a flag whose value is a path
shows its last component. Colour only on a terminal; piped output is plain text, 100 columns.
"""
from __future__ import annotations

import math
import shutil
import textwrap
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import PurePath

from porter.report.model import RunReport, VariantReport

PIPED_WIDTH = 100
FLAGS_CELL = 30  # at most this many characters of flags in a narrow table's cell

ESSENTIAL = ("variant", "target", "metric", "delta", "p50", "throughput", "status")
OPTIONAL = ("flags", "p99", "cache", "p90", "passes", "compile", "size")
ORDER = ("variant", "target", "passes", "flags", "metric", "delta", "subset", "p50", "p90", "p99", "throughput",
         "compile", "size", "cache", "status")

BOLD, RED, YELLOW, RESET = "\033[1m", "\033[31m", "\033[33m", "\033[0m"


@dataclass(frozen=True)
class Column:
    key: str  # which kind of column (ORDER): placement and whether the narrow table keeps it
    header: str
    cells: tuple[str, ...]
    numeric: bool = False
    subset: bool = False

    @property
    def width(self) -> int:
        return max([len(self.header)] + [len(c) for c in self.cells])


def fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    if isinstance(value, float):
        # agreement metrics live far below what two decimals show (max abs error 3e-07)
        if value != 0 and abs(value) < 0.5 * 10 ** -digits:
            return f"{value:.2g}"
        return f"{value:.{digits}f}"
    return str(value)


def signed(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value != 0 and abs(value) < 0.005:
        return f"{value:+.2g}"
    return f"{value:+.2f}"


def _flag_value(value) -> str:
    text = str(value)
    if ("/" in text or "\\" in text) and len(text) > 12:  # a path: its last component says which one
        return "…/" + PurePath(text).name
    return text


def short_flags(flags: dict) -> str:
    parts = [f"{k}={_flag_value(v)}" for k, v in sorted(flags.items()) if v not in (None, False, [], {}, "")]
    return ",".join(parts) or "-"


def distinct_flags(report: RunReport, v: VariantReport) -> dict:
    """The flags that set ``v`` apart: changed from the target's defaults and not a base setting. A base setting
    is one every variant of the same target shares (the recipe's ``target.flags``); for a variant alone on its
    target, one that every other variant setting that flag sets the same way (``warmup: 2`` across targets)."""
    others = [o for o in report.variants if not o.reference]
    peers = [o for o in others if o.target == v.target]

    def base(key, value) -> bool:
        if len(peers) >= 2:
            return all(o.changed_flags.get(key, object()) == value for o in peers)
        having = [o for o in others if key in o.changed_flags]
        return len(having) > 2 and all(o.changed_flags[key] == value for o in having)

    return {k: val for k, val in v.changed_flags.items() if not base(k, val)}


def short_passes(passes: list[str]) -> str:
    """The table names up to two passes; longer chains show their count (report.md/.html list them all)."""
    if not passes:
        return "-"
    if len(passes) <= 2:
        return ",".join(passes)
    return f"{len(passes)} passes"


def metric_names(report: RunReport) -> list[str]:
    names: list[str] = []
    for v in report.variants:
        names += [m for m in v.metrics if m not in names]
    return names


def table_columns(report: RunReport) -> list[Column]:
    """Every column of the table, in display order (what --wide prints, and report.md/.html show)."""
    vs = report.variants

    def col(key, header, values, **kw) -> Column:
        return Column(key, header, tuple(values), **kw)

    cols = [
        col("variant", "variant", [v.name + (" *" if v.pareto else "") + (" (ref)" if v.reference else "")
                                   for v in vs]),
        col("target", "target", [v.target + (" [estimate]" if v.estimate else "") for v in vs]),
        col("passes", "passes", [short_passes(v.passes) for v in vs]),
        col("flags", "flags", [short_flags(distinct_flags(report, v)) for v in vs]),
    ]
    for m in metric_names(report):
        subset = "/" in m
        cols.append(col("subset" if subset else "metric", m, [fmt(v.metrics.get(m)) for v in vs], numeric=True,
                        subset=subset))
        if report.reference and not subset:
            cols.append(col("delta", f"Δ{m}", [signed(v.deltas.get(m)) for v in vs], numeric=True))
    size = [v.model_size_bytes / 1e6 if v.model_size_bytes else None for v in vs]
    cols += [
        col("p50", "p50 ms", [fmt(v.latency_ms.p50) for v in vs], numeric=True),
        col("p90", "p90 ms", [fmt(v.latency_ms.p90) for v in vs], numeric=True),
        col("p99", "p99 ms", [fmt(v.latency_ms.p99) for v in vs], numeric=True),
        col("throughput", f"{report.unit_short}/s", [fmt(v.throughput) for v in vs], numeric=True),
        col("compile", "compile s", [fmt(v.compile_seconds) for v in vs], numeric=True),
        col("size", "size MB", [fmt(s, 1) for s in size], numeric=True),
        col("cache", "cache", [f"{v.cache_hits}/{len(v.stages)}" for v in vs]),
        col("status", "status", [v.status for v in vs]),
    ]
    # delta columns sit right after their metric; the rest follow ORDER
    rank = {k: i for i, k in enumerate(ORDER)}
    metric_block = {"metric", "delta", "subset"}
    return sorted(cols, key=lambda c: rank["metric"] if c.key in metric_block else rank[c.key])


def _span(cols: list[Column]) -> int:
    return sum(c.width for c in cols) + 2 * max(len(cols) - 1, 0)


def _truncate(col: Column, width: int) -> Column:
    cells = tuple(c if len(c) <= width else c[:width - 1] + "…" for c in col.cells)
    return Column(col.key, col.header[:width], cells, col.numeric, col.subset)


def fit_columns(cols: list[Column], width: int) -> tuple[list[Column], list[Column]]:
    """(the columns that fit ``width``, in display order; the per-subset columns left out)."""
    cols = [_truncate(c, FLAGS_CELL) if c.key == "flags" else c for c in cols]
    keep = {i for i, c in enumerate(cols) if c.key in ESSENTIAL}

    def span(indices) -> int:
        return _span([cols[i] for i in indices])

    for key in OPTIONAL + ("subset",):
        for i in [i for i, c in enumerate(cols) if c.key == key]:
            if span(keep | {i}) <= width:
                keep.add(i)
            elif key != "subset":  # a kind of column shows for every variant or not at all
                break
    shown = [cols[i] for i in sorted(keep)]
    # still too wide (long variant names, many metrics): shorten the text columns rather than wrap
    for _ in range(2):
        over = _span(shown) - width
        if over <= 0:
            break
        widest = max((c for c in shown if c.key in ("variant", "target")), key=lambda c: c.width)
        shown = [_truncate(c, max(8, c.width - over)) if c is widest else c for c in shown]
    return shown, [c for i, c in enumerate(cols) if c.subset and i not in keep]


def format_table(header: list[str], rows: list[list[str]], *, numeric: Collection[int] = (),
                 color: bool = False) -> str:
    """Columns separated by two spaces, numbers right-aligned, a rule under the header."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]

    def line(cells) -> str:
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    head = line(header)
    lines = [f"{BOLD}{head}{RESET}" if color else head, "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in rows]
    return "\n".join(lines)


def _colour_status(text: str, status: str) -> str:
    if status == "failed":
        return f"{RED}{text}{RESET}"
    if status == "skipped":
        return f"{YELLOW}{text}{RESET}"
    return text


def _render(cols: list[Column], report: RunReport, color: bool) -> str:
    rows = [[c.cells[i] for c in cols] for i in range(len(report.variants))]
    text = format_table([c.header for c in cols], rows, numeric={i for i, c in enumerate(cols) if c.numeric},
                        color=color)
    if not color:
        return text
    lines = text.split("\n")
    return "\n".join(lines[:2] + [_colour_status(line, v.status) for line, v in zip(lines[2:], report.variants)])


def _subset_tables(report: RunReport, subsets: list[Column], width: int, color: bool) -> list[str]:
    """The per-subset metrics the main table had no room for, as small tables that fit ``width``."""
    out = []
    names = Column("variant", "variant", tuple(v.name for v in report.variants))
    chunk: list[Column] = []
    for c in subsets:
        if chunk and _span([names] + chunk + [c]) > width:
            out += [_render([names] + chunk, report, color), ""]
            chunk = []
        chunk.append(c)
    if chunk:
        out.append(_render([names] + chunk, report, color))
    return out


def terminal_width(stream) -> int | None:
    """The terminal's width when ``stream`` is one; None for a pipe or a file."""
    try:
        if not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return shutil.get_terminal_size((PIPED_WIDTH, 24)).columns


def render_table(report: RunReport, *, width: int | None = None, wide: bool = False, color: bool = False) -> str:
    """The variants table; ``width`` None means :data:`PIPED_WIDTH`; ``wide`` prints every column."""
    width = width or PIPED_WIDTH
    cols = table_columns(report)
    if wide:
        out = [_render(cols, report, color)]
    else:
        shown, left_out = fit_columns(cols, width)
        out = [_render(shown, report, color)]
        if left_out:
            out.append("")
            out += _subset_tables(report, left_out, width, color)
        shown_keys = {c.key for c in shown}
        flags = next(c for c in cols if c.key == "flags")
        hidden = [c.header for c in cols if c.key not in shown_keys and not c.subset and c.key != "flags"]
        if "flags" not in shown_keys and any(cell != "-" for cell in flags.cells):
            # no room for a flags column: the variants that have distinct flags, one line each
            out.append("")
            out += [_variant_line(v.name, cell.replace(",", ", "), width)
                    for v, cell in zip(report.variants, flags.cells) if cell != "-"]
        notes = []
        if any(v.pareto for v in report.variants):
            notes.append("* Pareto front")
        if report.reference:
            notes.append("Δ against (ref)")
        if hidden:
            notes.append(f"not shown: {', '.join(hidden)} (--wide, or report.md)")
        if notes:
            out.append(textwrap.fill("; ".join(notes), width=width))
    line_width = None if wide else width
    for v in report.variants:
        if v.status != "ok":
            line = _variant_line(v.name, f"{v.status}: {v.message}", line_width)
            out.append(_colour_status(line, v.status) if color else line)
    out += [_variant_line(v.name, note, line_width) for v in report.variants for note in v.notes]
    return "\n".join(out)


def _variant_line(name: str, text: str, width: int | None) -> str:
    """``name: text`` below the table, wrapped to ``width`` with its continuation indented (None: one line)."""
    line = f"{name}: {text}"
    return line if width is None else textwrap.fill(line, width=width, subsequent_indent="    ",
                                                    break_long_words=False)


__all__ = [
    "PIPED_WIDTH",
    "Column",
    "distinct_flags",
    "fit_columns",
    "format_table",
    "render_table",
    "short_flags",
    "table_columns",
    "terminal_width",
]
