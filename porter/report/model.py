"""The run report's typed model: one record per variant, the verdicts, the provenance.

A fresh run builds these objects (``porter.pipeline.build_report``) and a saved ``report.json`` reads back into the
same objects (:func:`porter.report.reader.read_report`), so every renderer — the terminal table, report.md,
report.html, ``porter compare`` — reads attributes, never string keys of a dict that may or may not be there.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from porter.artifacts import ParityCheck, PassRecord, SampleScore
from porter.codec import encode
from porter.fsutil import atomic_write_text
from porter.plugins import PluginInfo

NAN = float("nan")


@dataclass
class StageRecord:
    """How one stage node of a variant went: cached or computed, how long it took, where it ran."""

    key: str
    stage: str
    plugin: str
    label: str
    cache_hit: bool
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    added_mb: float = 0.0
    worker: str = ""
    waited_seconds: float = 0.0
    artifact_digest: str = ""
    status: str = "ok"  # ok, skipped (tool missing), failed
    message: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Latency:
    """The run stage's latency per sample (ms): percentiles, mean, and every sample's value in dataset order."""

    p50: float = NAN
    p90: float = NAN
    p99: float = NAN
    mean: float = NAN
    samples: tuple[float, ...] = ()

    def percentile(self, name: str) -> float:
        """``p50``/``p90``/``p99``/``mean`` by name (budgets and tables name them)."""
        if name not in ("p50", "p90", "p99", "mean"):
            raise KeyError(name)
        return getattr(self, name)


@dataclass(frozen=True)
class Verdict:
    """One budget checked on one variant."""

    budget: str
    variant: str
    value: float
    ok: bool
    text: str


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
    latency_ms: Latency = field(default_factory=Latency)
    throughput: float = NAN
    peak_rss_mb: float = NAN  # the process's peak resident set during the variant's stages
    # what the run stage added on top of what was resident before it; kept for benchmarks, not shown in tables:
    # in a process that ran other stages first the allocator reuses their freed memory and this undercounts
    run_memory_mb: float = NAN
    compile_seconds: float = NAN
    model_size_bytes: int = 0
    estimate: bool = False
    pareto: bool = False
    stages: list[StageRecord] = field(default_factory=list)
    checks: list[ParityCheck] = field(default_factory=list)  # export parity
    pass_records: list[PassRecord] = field(default_factory=list)
    samples: list[SampleScore] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)  # stage:label → content digest
    details: dict[str, Any] = field(default_factory=dict)  # what the stages reported: "run", "compile"
    # sentences a reader of this variant's figures should know, in the plugins' words: the data's (InputSet.notes),
    # the compiler's (CompiledModel.notes: a precision the device lacks, run in another) and the run's
    # (OutputSet.notes: a model compiled elsewhere, run here in another precision)
    notes: list[str] = field(default_factory=list)

    @property
    def cache_hits(self) -> int:
        return sum(1 for s in self.stages if s.cache_hit)

    @property
    def run_details(self) -> dict[str, Any]:
        run = self.details.get("run")
        return run if isinstance(run, dict) else {}

    @property
    def compile_details(self) -> dict[str, Any]:
        compiled = self.details.get("compile")
        return compiled if isinstance(compiled, dict) else {}


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
    plugins: list[PluginInfo]
    libraries: dict[str, str]
    tools: dict[str, str]
    host: dict[str, Any]
    variants: list[VariantReport]
    reference: str | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    stage_counts: dict[str, int] = field(default_factory=dict)  # computed / cached / skipped / failed
    allow_missing_tools: bool = False  # the recipe's: a variant skipped for a missing vendor tool is no failure
    # what one item of the dataset is called ("utterance" for speech), from the datasets' DatasetSpec.unit
    unit: str = "sample"
    unit_abbrev: str = ""

    def variant(self, name: str) -> VariantReport:
        return next(v for v in self.variants if v.name == name)

    @property
    def unit_short(self) -> str:
        return self.unit_abbrev or self.unit

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


__all__ = ["Latency", "PluginInfo", "RunReport", "StageRecord", "VariantReport", "Verdict"]
