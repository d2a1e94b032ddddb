"""The one reader of saved reports: ``report.json`` back into the typed :mod:`porter.report.model`.

``porter compare``, the HTML renderer and plugins (through ``porter.api.read_report``) all read saved runs here,
so a file that is not a porter report fails in one place, with one kind of message: the file, the field and what
was expected (exit code 2), never a KeyError three modules later or a comparison that says nothing differs.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from porter.artifacts import ParityCheck, PassRecord, SampleScore
from porter.errors import InputError
from porter.report.model import (
    Latency,
    PluginInfo,
    RunReport,
    StageRecord,
    VariantReport,
    Verdict,
)

NAN = float("nan")


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if value is None:
        return "null"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Fields:
    """Typed access to the JSON of one report file; every failure names the file and the field."""

    def __init__(self, file):
        self.file = file

    def fail(self, where: str, expected: str, value: Any):
        raise InputError(f"expected {expected}, found {_describe(value)}; is this a porter report.json?",
                         file=self.file, field=where)

    def obj(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            self.fail(where, "an object", value)
        return value

    def items(self, value: Any, where: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(where, "a list", value)
        return value

    def text(self, value: Any, where: str, default: str = "") -> str:
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(where, "a string", value)
        return value

    def number(self, value: Any, where: str) -> float:
        """A number, or NaN where the report wrote null (JSON has no NaN)."""
        if value is None:
            return NAN
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(where, "a number or null", value)
        return float(value)

    def integer(self, value: Any, where: str, default: int = 0) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(where, "an integer", value)
        return value

    def flag(self, value: Any, where: str, default: bool = False) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(where, "true or false", value)
        return value

    def numbers(self, value: Any, where: str) -> dict[str, float]:
        return {str(k): self.number(v, f"{where}.{k}") for k, v in self.obj(value or {}, where).items()
                if k != "__type__"}

    def strings(self, value: Any, where: str) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.obj(value or {}, where).items() if k != "__type__"}

    def plain(self, value: Any, where: str) -> dict[str, Any]:
        return {k: v for k, v in self.obj(value or {}, where).items() if k != "__type__"}


def _check(f: _Fields, data: Any, where: str) -> ParityCheck:
    data = f.obj(data, where)
    return ParityCheck(label=f.text(data.get("label"), f"{where}.label"),
                       max_abs_diff=f.number(data.get("max_abs_diff"), f"{where}.max_abs_diff"),
                       tolerance=f.number(data.get("tolerance"), f"{where}.tolerance"),
                       samples=f.integer(data.get("samples"), f"{where}.samples"),
                       detail=f.text(data.get("detail"), f"{where}.detail"),
                       problem=f.text(data.get("problem"), f"{where}.problem"))


def _pass_record(f: _Fields, data: Any, where: str) -> PassRecord:
    data = f.obj(data, where)
    ops = {}
    for key in ("ops_before", "ops_after"):
        ops[key] = {str(k): f.integer(v, f"{where}.{key}.{k}")
                    for k, v in f.obj(data.get(key) or {}, f"{where}.{key}").items() if k != "__type__"}
    return PassRecord(name=f.text(data.get("name"), f"{where}.name"), ops_before=ops["ops_before"],
                      ops_after=ops["ops_after"], check=_check(f, data.get("check") or {}, f"{where}.check"),
                      seconds=f.number(data.get("seconds"), f"{where}.seconds"))


def _sample(f: _Fields, data: Any, where: str) -> SampleScore:
    data = f.obj(data, where)
    return SampleScore(id=str(data.get("id", "")), reference=str(data.get("reference", "")),
                       hypothesis=str(data.get("hypothesis", "")),
                       errors=f.numbers(data.get("errors"), f"{where}.errors"))


def _stage(f: _Fields, data: Any, where: str) -> StageRecord:
    data = f.obj(data, where)
    return StageRecord(
        key=f.text(data.get("key"), f"{where}.key"), stage=f.text(data.get("stage"), f"{where}.stage"),
        plugin=f.text(data.get("plugin"), f"{where}.plugin"), label=f.text(data.get("label"), f"{where}.label"),
        cache_hit=f.flag(data.get("cache_hit"), f"{where}.cache_hit"),
        seconds=f.number(data.get("seconds"), f"{where}.seconds"),
        peak_rss_mb=f.number(data.get("peak_rss_mb"), f"{where}.peak_rss_mb"),
        added_mb=f.number(data.get("added_mb"), f"{where}.added_mb"),
        worker=f.text(data.get("worker"), f"{where}.worker"),
        waited_seconds=f.number(data.get("waited_seconds"), f"{where}.waited_seconds"),
        artifact_digest=f.text(data.get("artifact_digest"), f"{where}.artifact_digest"),
        status=f.text(data.get("status"), f"{where}.status", "ok"),
        message=f.text(data.get("message"), f"{where}.message"),
        extra=f.plain(data.get("extra"), f"{where}.extra"))


def _latency(f: _Fields, data: Any, where: str) -> Latency:
    data = f.obj(data or {}, where)
    samples = tuple(f.number(x, f"{where}.samples[{i}]") for i, x in enumerate(f.items(data.get("samples"),
                                                                                       f"{where}.samples")))
    return Latency(**{k: f.number(data.get(k), f"{where}.{k}") for k in ("p50", "p90", "p99", "mean")},
                   samples=samples)


def _variant(f: _Fields, data: Any, where: str) -> VariantReport:
    data = f.obj(data, where)
    if not isinstance(data.get("name"), str) or not data["name"]:
        f.fail(f"{where}.name", "the variant's name (a string)", data.get("name"))

    def each(key, read):
        return [read(f, x, f"{where}.{key}[{i}]") for i, x in enumerate(f.items(data.get(key), f"{where}.{key}"))]

    return VariantReport(
        name=data["name"], reference=f.flag(data.get("reference"), f"{where}.reference"),
        target=f.text(data.get("target"), f"{where}.target"),
        passes=[f.text(p, f"{where}.passes[{i}]") for i, p in enumerate(f.items(data.get("passes"),
                                                                                  f"{where}.passes"))],
        flags=f.plain(data.get("flags"), f"{where}.flags"),
        changed_flags=f.plain(data.get("changed_flags"), f"{where}.changed_flags"),
        status=f.text(data.get("status"), f"{where}.status", "ok"),
        message=f.text(data.get("message"), f"{where}.message"),
        metrics=f.numbers(data.get("metrics"), f"{where}.metrics"),
        deltas=f.numbers(data.get("deltas"), f"{where}.deltas"),
        latency_ms=_latency(f, data.get("latency_ms"), f"{where}.latency_ms"),
        throughput=f.number(data.get("throughput"), f"{where}.throughput"),
        peak_rss_mb=f.number(data.get("peak_rss_mb"), f"{where}.peak_rss_mb"),
        run_memory_mb=f.number(data.get("run_memory_mb"), f"{where}.run_memory_mb"),
        compile_seconds=f.number(data.get("compile_seconds"), f"{where}.compile_seconds"),
        model_size_bytes=f.integer(data.get("model_size_bytes"), f"{where}.model_size_bytes"),
        estimate=f.flag(data.get("estimate"), f"{where}.estimate"),
        pareto=f.flag(data.get("pareto"), f"{where}.pareto"),
        stages=each("stages", _stage), checks=each("checks", _check), pass_records=each("pass_records", _pass_record),
        samples=each("samples", _sample),
        artifacts=f.strings(data.get("artifacts"), f"{where}.artifacts"),
        details=f.plain(data.get("details"), f"{where}.details"),
        notes=[f.text(n, f"{where}.notes[{i}]") for i, n in enumerate(f.items(data.get("notes"), f"{where}.notes"))])


def _verdict(f: _Fields, data: Any, where: str) -> Verdict:
    data = f.obj(data, where)
    return Verdict(budget=f.text(data.get("budget"), f"{where}.budget"),
                   variant=f.text(data.get("variant"), f"{where}.variant"),
                   value=f.number(data.get("value"), f"{where}.value"), ok=f.flag(data.get("ok"), f"{where}.ok"),
                   text=f.text(data.get("text"), f"{where}.text"))


def _plugin(f: _Fields, data: Any, where: str) -> PluginInfo:
    data = f.obj(data, where)
    return PluginInfo(**{k: f.text(data.get(k), f"{where}.{k}") for k in ("name", "source", "module", "version")})


def report_from_data(data: Any, file=None) -> RunReport:
    """A :class:`RunReport` from decoded report.json data; ``file`` is named in errors."""
    f = _Fields(file)
    if not isinstance(data, dict):
        f.fail("", "a porter report (a JSON object with a 'variants' list)", data)
    if "variants" not in data:
        found = ", ".join(repr(k) for k in list(data)[:6]) or "no keys"
        raise InputError(f"not a porter report: expected a JSON object with a 'variants' list, found {found}",
                         file=file)
    variants = [_variant(f, v, f"variants[{i}]") for i, v in enumerate(f.items(data["variants"], "variants"))]
    return RunReport(
        recipe=f.text(data.get("recipe"), "recipe"), recipe_digest=f.text(data.get("recipe_digest"), "recipe_digest"),
        name=f.text(data.get("name"), "name"), workspace=f.text(data.get("workspace"), "workspace"),
        started=f.text(data.get("started"), "started"),
        wall_seconds=f.number(data.get("wall_seconds"), "wall_seconds"),
        porter_version=f.text(data.get("porter_version"), "porter_version"),
        executor=f.text(data.get("executor"), "executor"),
        plugins=[_plugin(f, p, f"plugins[{i}]") for i, p in enumerate(f.items(data.get("plugins"), "plugins"))],
        libraries=f.strings(data.get("libraries"), "libraries"), tools=f.strings(data.get("tools"), "tools"),
        host=f.plain(data.get("host"), "host"), variants=variants,
        reference=f.text(data.get("reference"), "reference") or None,
        verdicts=[_verdict(f, v, f"verdicts[{i}]") for i, v in enumerate(f.items(data.get("verdicts"), "verdicts"))],
        stage_counts={k: f.integer(v, f"stage_counts.{k}")
                      for k, v in f.obj(data.get("stage_counts") or {}, "stage_counts").items() if k != "__type__"},
        allow_missing_tools=f.flag(data.get("allow_missing_tools"), "allow_missing_tools"),
        unit=f.text(data.get("unit"), "unit", "sample"), unit_abbrev=f.text(data.get("unit_abbrev"), "unit_abbrev"))


def read_report(path) -> RunReport:
    """Read a saved ``report.json``; bad files raise :class:`InputError` naming the file and what was expected."""
    path = Path(path)
    if path.is_dir():
        hint = " (it holds a report.json: pass that)" if (path / "report.json").is_file() else ""
        raise InputError(f"is a folder; expected a porter report.json file{hint}", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("report not found", file=path) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text; expected a porter report.json", file=path) from None
    except OSError as exc:
        raise InputError(f"cannot read it: {exc.strerror or exc}", file=path) from None
    try:
        data = json.loads(text, parse_constant=lambda name: math.nan)
    except ValueError as exc:
        raise InputError(f"not JSON ({exc}); expected a porter report.json", file=path) from None
    return report_from_data(data, file=path)


__all__ = ["read_report", "report_from_data"]
