"""The run report: one record per variant, written as report.json and printed as one table."""
from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from porter.codec import encode
from porter.fsutil import atomic_write_text

LIBRARIES = ("torch", "onnx", "onnxruntime", "onnxoptimizer", "onnx-graphsurgeon", "numpy", "librosa", "pluggy",
             "Levenshtein", "dask", "distributed")


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            pass
    return out


def host_info() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "node": platform.node()}


@dataclass
class VariantReport:
    name: str
    reference: bool
    target: str
    passes: list[str]
    flags: dict[str, Any]
    changed_flags: dict[str, Any] = field(default_factory=dict)  # flags that differ from the target's defaults
    status: str = "ok"
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    deltas: dict[str, float] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    throughput: float = float("nan")
    peak_rss_mb: float = float("nan")  # the process's peak resident set during the variant's stages
    run_memory_mb: float = float("nan")  # what the run stage added on top of what was resident before it
    compile_seconds: float = float("nan")
    model_size_bytes: int = 0
    estimate: bool = False
    pareto: bool = False
    stages: list = field(default_factory=list)  # StageRecord
    checks: list = field(default_factory=list)  # ParityCheck (export)
    pass_records: list = field(default_factory=list)  # PassRecord
    samples: list = field(default_factory=list)  # SampleScore
    artifacts: dict[str, str] = field(default_factory=dict)  # stage → content digest
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def cache_hits(self) -> int:
        return sum(1 for s in self.stages if s.cache_hit)


@dataclass
class RunReport:
    recipe: str
    recipe_digest: str
    name: str
    workspace: str
    started: str
    wall_seconds: float
    porter_version: str
    executor: str
    plugins: list[dict]
    libraries: dict[str, str]
    tools: dict[str, str]
    host: dict[str, Any]
    variants: list[VariantReport]
    reference: str | None = None
    verdicts: list[dict] = field(default_factory=list)
    stage_counts: dict[str, int] = field(default_factory=dict)  # computed / cached / skipped / failed
    allow_missing_tools: bool = False  # the recipe's: a variant skipped for a missing vendor tool is no failure

    def variant(self, name: str) -> VariantReport:
        return next(v for v in self.variants if v.name == name)

    def to_json(self) -> str:
        return json.dumps(_clean(encode(self)), indent=1, sort_keys=False, default=str, allow_nan=False)

    def write(self, path: Path) -> None:
        atomic_write_text(path, self.to_json())


def _clean(obj):
    """JSON has no NaN: write null for missing numbers."""
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj


def load_report(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ table

def _fmt(value, digits=2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        # agreement metrics live far below what two decimals show (max abs error 3e-07)
        if value != 0 and abs(value) < 0.5 * 10 ** -digits:
            return f"{value:.2g}"
        return f"{value:.{digits}f}"
    return str(value)


def _signed(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value != 0 and abs(value) < 0.005:
        return f"{value:+.2g}"
    return f"{value:+.2f}"


def short_flags(flags: dict) -> str:
    parts = [f"{k}={v}" for k, v in sorted(flags.items()) if v not in (None, False, [], {}, "")]
    return ",".join(parts) or "-"


def short_passes(passes: list[str]) -> str:
    """The table names up to two passes; longer chains show their count (report.json/.html list them all)."""
    if not passes:
        return "-"
    if len(passes) <= 2:
        return ",".join(passes)
    return f"{len(passes)} passes"


def table_rows(report: RunReport) -> tuple[list[str], list[list[str]]]:
    metric_names: list[str] = []
    for v in report.variants:
        for m in v.metrics:
            if m not in metric_names:
                metric_names.append(m)
    header = ["variant", "target", "passes", "flags"]
    for m in metric_names:
        header.append(m)
        if report.reference and "/" not in m:
            header.append(f"Δ{m}")
    header += ["p50 ms", "p90 ms", "p99 ms", "utt/s", "run MB", "compile s", "size MB", "cache", "status"]
    rows = []
    for v in report.variants:
        name = v.name + (" *" if v.pareto else "") + (" (ref)" if v.reference else "")
        row = [name, v.target + (" [estimate]" if v.estimate else ""), short_passes(v.passes),
               short_flags(v.changed_flags)]
        for m in metric_names:
            row.append(_fmt(v.metrics.get(m)))
            if report.reference and "/" not in m:
                row.append(_signed(v.deltas.get(m)))
        size = v.model_size_bytes / 1e6 if v.model_size_bytes else None
        row += [_fmt(v.latency_ms.get("p50")), _fmt(v.latency_ms.get("p90")), _fmt(v.latency_ms.get("p99")),
                _fmt(v.throughput), _fmt(v.run_memory_mb, 0), _fmt(v.compile_seconds),
                _fmt(size, 1), f"{v.cache_hits}/{len(v.stages)}", v.status if v.status == "ok" else v.status]
        rows.append(row)
    return header, rows


def format_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)] if rows else [len(h) for h in header]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(lines)


def render_table(report: RunReport) -> str:
    header, rows = table_rows(report)
    out = [format_table(header, rows)]
    for v in report.variants:
        if v.status != "ok":
            out.append(f"{v.name}: {v.status}: {v.message}")
    for v in report.variants:
        if v.details.get("random_inputs"):
            out.append(f"{v.name}: {v.details['random_inputs']}")
    return "\n".join(out)
