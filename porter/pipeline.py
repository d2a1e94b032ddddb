"""Running a recipe: plugins → recipe → plan → executor → report. The one entry point the CLI calls."""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from porter import __version__
from porter.artifacts import Metrics, OutputSet
from porter.dask_address import check_address
from porter.errors import InputError
from porter.exec import NodeResult, get_executor
from porter.fsutil import resolve_path
from porter.options import unknown_name_error
from porter.plan import Plan, build_plan
from porter.plugins import PluginSet, load_plugins
from porter.recipe import Recipe, read_recipe_file, recipe_plugin_modules, validate_recipe
from porter.report.host import host_info, library_versions
from porter.report.model import Latency, RunReport, VariantReport
from porter.report.outputs import write_outputs
from porter.report.pareto import mark_pareto
from porter.report.verdicts import check_budget, evaluate_budgets, parse_budget
from porter.workspace import Workspace


@contextmanager
def _importable_from(folder: Path):
    """Recipe-named plugin modules may sit next to the recipe file."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def prepare(recipe_path, *, workspace: Path | None = None, bundle: Path | None = None,
            extra_plugins=()) -> tuple[Recipe, PluginSet]:
    """Load plugins (including the recipe's own) and validate the recipe against them."""
    path = resolve_path(recipe_path)
    raw = read_recipe_file(path)
    modules = recipe_plugin_modules(raw, path)
    with _importable_from(path.parent):
        plugins = load_plugins(modules, extra_objects=extra_plugins)
    recipe = validate_recipe(raw, path, plugins, workspace=workspace)
    if bundle is not None and not bundle_writers(recipe, plugins):
        writers = sorted(n for n, s in plugins.registry.specs["targets"].items() if getattr(s, "writes_bundle", False))
        raise InputError(f"--bundle {bundle}: no variant of {path} has a target that writes device bundles "
                         f"(targets that do: {', '.join(writers) or 'none installed'})", field="--bundle")
    bundle = bundle or recipe.bundle
    if bundle is not None:
        recipe = with_bundle(recipe, plugins, resolve_path(bundle, field="--bundle"))
    return recipe, plugins


def with_bundle(recipe: Recipe, plugins: PluginSet, bundle: Path) -> Recipe:
    """Give every target that can write a device bundle (``TargetSpec.writes_bundle``) this bundle folder."""
    variants = []
    for v in recipe.variants:
        spec = plugins.registry.get("targets", v.target.name) if v.target else None
        if v.target is not None and spec is not None and spec.writes_bundle and v.target.bundle is None:
            v = dataclasses.replace(v, target=dataclasses.replace(v.target, bundle=bundle))
        variants.append(v)
    return dataclasses.replace(recipe, variants=tuple(variants), bundle=bundle)


def bundle_writers(recipe: Recipe, plugins: PluginSet, variants=None) -> list[str]:
    """The variants (of ``variants``, default all) whose target can write a device bundle."""
    names = []
    for v in recipe.variants:
        if v.target is None or (variants and v.name not in variants):
            continue
        spec = plugins.registry.get("targets", v.target.name)
        if spec is not None and spec.writes_bundle:
            names.append(v.name)
    return names


def run_recipe(recipe_path, *, workspace: Path | None = None, force_stages=(), force_all: bool = False,
               bundle: Path | None = None, executor: str | None = None, address: str | None = None,
               variants=None, progress=None, extra_plugins=(), budgets=(), on_plan=None,
               out_dirs=()) -> RunReport:
    """Run a recipe's variants and write report.json/.md/.html into the workspace, with the verdicts of the
    recipe's budgets and `budgets` (and into each of ``out_dirs``, rendered once)."""
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    t0 = time.perf_counter()
    recipe, plugins = prepare(recipe_path, workspace=workspace, bundle=bundle, extra_plugins=extra_plugins)
    known_variants = [v.name for v in recipe.variants]
    for name in variants or ():
        if name not in known_variants:
            # refused before anything runs, so the workspace's report.json of the last real run stays
            raise unknown_name_error(file=recipe.path, field="--variant", kind="variant", name=name,
                                     known=known_variants)
    metric_names = {m for v in recipe.variants for m in v.metrics}
    # before any stage runs: a mistyped --budget must not cost a whole run
    for text in budgets:
        check_budget(parse_budget(text, field="--budget"), metrics=metric_names,
                     variants=[v.name for v in recipe.variants], field="--budget")
    plan = build_plan(recipe, plugins, variants=tuple(variants) if variants else None)
    if on_plan is not None:  # how many stage nodes the run has, before the first one starts
        on_plan(len(plan.nodes))
    ws = Workspace(recipe.workspace)
    ws.sweep_temporaries()
    exec_name = executor or recipe.executor
    # the command line's --address is checked here (the recipe's was when it was validated), before Dask waits on it
    runner = get_executor(exec_name, check_address(address, field="--address") if address else recipe.address)
    with _importable_from(recipe.path.parent):
        results = runner.execute(plan, plugins, ws, force_stages=frozenset(force_stages), force_all=force_all,
                                 progress=progress)
    report = build_report(recipe, plugins, plan, results, started=started,
                          wall_seconds=time.perf_counter() - t0, executor=exec_name)
    try:
        evaluate_budgets(report, [*recipe.budgets, *budgets], metrics=metric_names)
    finally:  # a budget naming a variant the run lacks raises, but the run's results are still kept
        # report.json/.md/.html are the workspace's latest run; reports/<recipe name>.json keeps each recipe's
        # own, so two recipes sharing a workspace (even at once) do not erase each other's results
        report.write(ws.root / "reports" / f"{recipe.name}.json")
        write_outputs(report, ws.root, *out_dirs)
    return report


def _tool_versions(plugins: PluginSet) -> dict[str, str]:
    tools: dict[str, str] = {}
    for answer in plugins.hook.porter_tool_versions():
        if answer:
            tools.update(answer)
    return tools


def build_report(recipe: Recipe, plugins: PluginSet, plan: Plan, results: dict[str, NodeResult], *,
                 started: str, wall_seconds: float, executor: str) -> RunReport:
    reports = []
    for path in plan.paths:
        v = path.variant
        records = [results[k].record for k in path.keys]
        vr = VariantReport(
            name=v.name, reference=v.reference,
            target=("framework" if v.reference or v.target is None else v.target.name),
            passes=[p.name for p in v.passes],
            flags={k: (str(val) if isinstance(val, Path) else val) for k, val in (v.target.flags.items()
                                                                                 if v.target else [])},
            stages=records,
        )
        if v.target:
            spec = plugins.registry.get("targets", v.target.name)
            vr.changed_flags = {k: val for k, val in vr.flags.items()
                                if k in spec.flags and val != spec.flags[k].default}
        bad = next((r for r in records if r.status != "ok"), None)
        if bad is not None:
            vr.status, vr.message = bad.status, f"{bad.stage}: {bad.message}"
        inputs = results[path.preprocess].value
        if inputs is not None:
            vr.notes += inputs.notes
        if inputs is not None and inputs.details.get("random_inputs"):
            # a dataset that drew its inputs at random says so: its speed figures hold, its accuracy does not
            vr.details["random_inputs"] = str(inputs.details.get("note") or "random inputs")
        export = results[path.export].value if path.export else None
        if export is not None:
            vr.checks = list(export.checks)
        last_model = results[path.graph_fix[-1]].value if path.graph_fix else export
        if last_model is not None:
            vr.pass_records = list(last_model.passes)
            vr.model_size_bytes = last_model.path.stat().st_size if last_model.path.exists() else 0
        compiled = results[path.compile].value if path.compile else None
        if compiled is not None and path.compile:
            vr.compile_seconds = compiled.compile_seconds or results[path.compile].record.seconds
            vr.model_size_bytes = compiled.size_bytes or vr.model_size_bytes
            vr.details["compile"] = dict(compiled.details)
            vr.notes += compiled.notes
            vr.checks = [*vr.checks, *compiled.checks]
        outputs: OutputSet | None = results[path.run].value
        if outputs is not None:
            t = outputs.timing
            vr.latency_ms = Latency(p50=t.percentile(50), p90=t.percentile(90), p99=t.percentile(99),
                                    mean=(sum(t.latencies_ms) / len(t.latencies_ms)) if t.latencies_ms else math.nan,
                                    samples=tuple(t.latencies_ms))
            vr.throughput = t.throughput
            vr.estimate = outputs.estimate or bool(compiled and compiled.estimate) or any(
                getattr(plugins.registry.get("passes", p.name), "estimate", False) for p in v.passes)
            vr.details["run"] = dict(outputs.details)
            vr.notes += outputs.notes
        metrics: Metrics | None = results[path.score].value
        if metrics is not None:
            vr.metrics = metrics_in_recipe_order(metrics.values, v.metrics)
            vr.samples = list(metrics.samples)
        vr.peak_rss_mb = max((r.peak_rss_mb for r in records if r.peak_rss_mb), default=math.nan)
        run_rec = results[path.run].record
        if run_rec.status == "ok":
            vr.run_memory_mb = run_rec.added_mb
        vr.artifacts = {f"{r.stage}:{r.label}": r.artifact_digest for r in records if r.artifact_digest}
        reports.append(vr)

    mark_pareto(reports)
    ref = next((r for r in reports if r.reference and r.status == "ok"), None)
    if ref is not None:
        for r in reports:
            r.deltas = {m: r.metrics[m] - ref.metrics[m] for m in r.metrics if m in ref.metrics}
    counts = {"computed": 0, "cached": 0, "skipped": 0, "failed": 0}
    for res in results.values():
        rec = res.record
        if rec.status != "ok":
            counts[rec.status] = counts.get(rec.status, 0) + 1
        else:
            counts["cached" if rec.cache_hit else "computed"] += 1
    return RunReport(
        recipe=str(recipe.path), recipe_digest=recipe.digest, name=recipe.name, workspace=str(recipe.workspace),
        started=started, wall_seconds=wall_seconds, porter_version=__version__, executor=executor,
        plugins=list(plugins.infos), libraries=library_versions(),
        tools=_tool_versions(plugins), host=host_info(), variants=reports,
        reference=ref.name if ref else None, stage_counts=counts, allow_missing_tools=recipe.allow_missing_tools,
        **_unit(recipe, plugins),
    )


def _unit(recipe: Recipe, plugins: PluginSet) -> dict[str, Any]:
    """What the datasets call one item (DatasetSpec.unit), when every variant's dataset agrees."""
    specs = [plugins.registry.get("datasets", v.dataset.name) for v in recipe.variants]
    units = {(s.unit, s.unit_abbrev) for s in specs if s is not None}
    if len(units) != 1:
        return {}
    unit, abbrev = units.pop()
    return {"unit": unit, "unit_abbrev": abbrev}


def metrics_in_recipe_order(values, recipe_metrics) -> dict[str, float]:
    """The overall metrics in the recipe's order, then each group's (``wer``, ``cer``, ``wer/a``, ``cer/a``,
    ``wer/b``...), groups in the order the scorer gave them: the table's columns then do not depend on whether the
    scores were computed now or read back from the cache."""
    rank = {name: i for i, name in enumerate(recipe_metrics)}
    groups: dict[str, int] = {}
    for name in values:
        groups.setdefault(name.partition("/")[2], len(groups))

    def key(name: str):
        base, _, group = name.partition("/")
        return bool(group), groups[group] if group else 0, rank.get(base, len(rank)), base

    return {name: values[name] for name in sorted(values, key=key)}
