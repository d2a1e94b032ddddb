"""Mixed-precision search: the smallest set of nodes to keep in fp32 that brings a variant within a budget.

1. ``porter debug``'s per-layer errors rank the candidates: a node scores how many times its output's max_rel
   exceeds its inputs' (the jump at that layer; below the median error of all layers, the rounding noise floor,
   errors count as that floor, so a first layer reading exact inputs is not a jump), and so do the producers of
   that node's inputs, because a value is lost when
   it is *stored* reduced, before the layer that shows the damage reads it (``2048 + h`` stored in fp16 loses
   ``h``; the Sub after it only reveals that).
2. Every trial is a synthetic variant: the base variant with a keep-list file (atc's keep_dtype format) as the
   ``keep_dtype`` option of its precision pass, or flag of its target. It runs through the normal plan and
   executor, so trials share every upstream stage with the base variant, are cached like any variant (a re-run
   of the search computes nothing) and spread over a Dask cluster with ``--executor dask``.
3. All candidates kept must meet the budget (else the search says so and stops); a bisection over the ranked
   prefix finds the shortest prefix that meets it; then each kept node is tried without (last ranked first) and
   dropped where the budget still holds.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from porter.errors import InputError
from porter.exec import get_executor
from porter.fsutil import atomic_write_text
from porter.hashing import digest
from porter.pipeline import build_report
from porter.plan import build_plan
from porter.precision.divergence import DATA_MOVEMENT, DivergenceReport
from porter.precision.graphs import VariantGraphs
from porter.precision.keeplist import KeepList
from porter.precision.matching import producers
from porter.recipe import Recipe, Variant
from porter.report.verdicts import evaluate_budgets
from porter.workspace import Workspace

KNOB = "keep_dtype"  # a keep-list file (atc's keep_dtype format)
SCOPE_KNOB = "ignored_scope"  # NNCF's ignored scope as a mapping {names: [...]} (the openvino target's flag)


@dataclass(frozen=True)
class Knob:
    """Where a variant takes its keep-list: the option of graph pass ``pass_index``, or the target's flag."""

    pass_index: int | None  # None: the target's flag
    graph: Path  # the graph whose node names the keep-list holds (what that pass or the compiler is given)
    flag: str = KNOB

    def describe(self, variant: Variant) -> str:
        if self.pass_index is None:
            return f"target {variant.ported_target.name!r} flag {self.flag}"
        return f"graph pass {variant.passes[self.pass_index].name!r} option {self.flag}"


@dataclass(frozen=True)
class Candidate:
    node: str
    op_type: str
    score: float  # the largest max_rel jump (a ratio) this node's output, or a reader's output, shows


@dataclass(frozen=True)
class Trial:
    variant: str
    kept: tuple[str, ...]
    metrics: dict
    deltas: dict
    value: float  # the budget's quantity
    ok: bool  # within the budget
    throughput: float
    p50_ms: float
    cached: bool  # every stage came from the cache
    status: str = "ok"
    message: str = ""
    keep_file: str = ""


@dataclass(frozen=True)
class SearchResult:
    variant: str
    budget: str
    knob: str
    candidates: tuple[Candidate, ...]
    trials: tuple[Trial, ...]
    chosen: Trial | None  # None: even every candidate kept misses the budget

    def to_json(self) -> dict:
        def num(v):
            return v if isinstance(v, (int, float)) and math.isfinite(v) else str(v)
        return {
            "variant": self.variant, "budget": self.budget, "knob": self.knob,
            "candidates": [dataclasses.asdict(c) for c in self.candidates],
            "trials": [{**dataclasses.asdict(t), "value": num(t.value), "throughput": num(t.throughput),
                        "p50_ms": num(t.p50_ms)} for t in self.trials],
            "chosen": list(self.chosen.kept) if self.chosen else None,
        }


_BUDGET = re.compile(r"^\s*[A-Za-z0-9_/Δ.-]+\s*(<=|>=|<|>|==)\s*[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?\s*$")


def check_budget(budget: str) -> str:
    if not _BUDGET.match(budget):
        raise InputError(f"is {budget!r}; expected one budget without a variant prefix, QUANTITY OP NUMBER, e.g. "
                         "'delta_wer<=0.1' (the search applies it to its own trial variants)", field="--budget")
    return budget.strip()


def find_knob(variant: Variant, plugins, graphs: VariantGraphs) -> Knob:
    """The last precision pass of the variant that takes a keep-list, else its target if that does."""
    for index in range(len(variant.passes) - 1, -1, -1):
        spec = plugins.registry.get("passes", variant.passes[index].name)
        if KNOB in spec.options:
            return Knob(index, graphs.model_before_pass(index))
    spec = plugins.registry.get("targets", variant.ported_target.name)
    for flag in (KNOB, SCOPE_KNOB):
        if flag in spec.flags:
            return Knob(None, graphs.compile_input, flag)
    raise InputError(f"variant {variant.name!r} has nothing that takes a keep-list: none of its graph passes has a "
                     f"{KNOB!r} option and its target {variant.ported_target.name!r} has no {KNOB!r} or {SCOPE_KNOB!r} "
                     "flag (emulate_fp16 and the onnxruntime, ascend310 and openvino targets do)", field="--variant")


def rank_candidates(report: DivergenceReport, knob_graph: onnx.ModelProto, limit: int) -> tuple[Candidate, ...]:
    """Named computing nodes of the knob's graph, the largest error jump first (ties: shallower first)."""
    errors: dict[str, float] = {}
    for layer in report.layers:
        if not layer.agreement.problem:
            errors[layer.variant_tensor] = max(errors.get(layer.variant_tensor, 0.0), layer.agreement.max_rel)
    made = producers(knob_graph)
    nodes = {n.name: n for n in knob_graph.graph.node if n.name}
    score: dict[str, float] = {}
    depth: dict[str, int] = {}
    values = sorted(errors.values())
    floor = max(values[len(values) // 2] if values else 0.0, 1e-12)
    for node in knob_graph.graph.node:
        outs = [errors[o] for o in node.output if o in errors]
        if not outs:
            continue
        ins = [errors[i] for i in node.input if i in errors]
        jump = max(outs) / max(max(ins) if ins else 0.0, floor)
        if jump <= 1:
            continue
        # the node itself, and the computing nodes that stored what it read
        blamed = [node.name] + [made[i].node for i in node.input if i in made and made[i].node]
        for name in blamed:
            if name in nodes and nodes[name].op_type not in DATA_MOVEMENT:
                score[name] = max(score.get(name, 0.0), jump)
                depth[name] = made[nodes[name].output[0]].depth if nodes[name].output else 0
    ranked = sorted(score, key=lambda n: (-score[n], depth[n], n))[:limit]
    return tuple(Candidate(n, nodes[n].op_type, score[n]) for n in ranked)


class Searcher:
    """Runs trials: each a synthetic variant run with the reference through the plan and executor."""

    def __init__(self, recipe: Recipe, plugins, variant: Variant, knob: Knob, budget: str, *,
                 executor: str = "local", address: str | None = None, progress: Callable | None = None):
        self.recipe, self.plugins, self.variant, self.knob, self.budget = recipe, plugins, variant, knob, budget
        self.reference = next((v for v in recipe.variants if v.reference), None)
        if self.reference is None and "delta" in budget:
            raise InputError(f"budget {budget!r} compares with the reference, but the recipe has no reference "
                             "variant (reference: true)", field="--budget")
        self.executor = get_executor(executor, address)
        self.workspace = Workspace(recipe.workspace)
        self.keep_folder = recipe.workspace / "precision" / variant.name / "keep"
        self.progress = progress
        self.trials: dict[tuple[str, ...], Trial] = {}

    def _variant(self, kept: tuple[str, ...]) -> tuple[Variant, Path | None]:
        if not kept:
            return self.variant, None
        text = KeepList(tuple(kept)).text()
        path = self.keep_folder / f"{digest(text)[:16]}.cfg"
        if not path.exists():
            atomic_write_text(path, text)
        name = f"{self.variant.name}_keep{len(kept)}_{digest(text)[:6]}"
        if self.knob.pass_index is None:
            value = {"names": list(kept)} if self.knob.flag == SCOPE_KNOB else path
            ported = self.variant.ported_target
            target = dataclasses.replace(ported, flags={**ported.flags, self.knob.flag: value})
            return dataclasses.replace(self.variant, name=name, target=target), path
        passes = list(self.variant.passes)
        chosen = passes[self.knob.pass_index]
        passes[self.knob.pass_index] = dataclasses.replace(chosen, options={**chosen.options, KNOB: path})
        return dataclasses.replace(self.variant, name=name, passes=tuple(passes)), path

    def trial(self, kept: Sequence[str]) -> Trial:
        kept = tuple(kept)
        if kept in self.trials:
            return self.trials[kept]
        variant, path = self._variant(kept)
        variants = tuple(v for v in (self.reference, variant) if v is not None)
        recipe = dataclasses.replace(self.recipe, variants=variants)
        plan = build_plan(recipe, self.plugins)
        results = self.executor.execute(plan, self.plugins, self.workspace, progress=self.progress)
        report = build_report(recipe, self.plugins, plan, results, started="", wall_seconds=0.0,
                              executor=self.executor.name)
        verdicts = [v for v in evaluate_budgets(report, [self.budget]) if v.variant == variant.name]
        vr = next(v for v in report.variants if v.name == variant.name)
        keys = plan.paths[-1].keys
        trial = Trial(variant.name, kept, dict(vr.metrics), dict(vr.deltas),
                      verdicts[0].value if verdicts else math.nan, bool(verdicts and verdicts[0].ok),
                      vr.throughput, vr.latency_ms.p50,
                      all(results[k].record.cache_hit for k in keys), vr.status, vr.message,
                      str(path) if path else "")
        self.trials[kept] = trial
        return trial


def search(searcher: Searcher, candidates: Sequence[Candidate], *, prune: bool = True) -> Trial | None:
    """The chosen trial (its ``kept`` is the keep-list), or None when keeping every candidate misses."""
    base = searcher.trial(())
    if base.ok:
        return base
    names = [c.node for c in candidates]
    if not names or not searcher.trial(names).ok:
        return None
    lo, hi = 0, len(names)  # prefix lo misses, prefix hi meets
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if searcher.trial(names[:mid]).ok:
            hi = mid
        else:
            lo = mid
    kept = list(names[:hi])
    if prune:
        for name in reversed(names[:hi]):
            if len(kept) == 1:
                break
            fewer = [n for n in kept if n != name]
            if searcher.trial(fewer).ok:
                kept = fewer
    return searcher.trial(kept)


def render_trials(result: SearchResult) -> str:
    def fmt(v):
        return f"{v:.4g}" if isinstance(v, float) and math.isfinite(v) else str(v)
    lines = [(f"{result.variant}: search for {result.budget!r} through {result.knob}; "
              f"{len(result.candidates)} candidates, {len(result.trials)} trials"),
             "", "| trial | kept | budget value | within | utt/s | p50 ms | cached |", "|---|---|---|---|---|---|---|"]
    for t in result.trials:
        kept = ", ".join(t.kept) if t.kept else "(none)"
        within = "yes" if t.ok else ("no" if t.status == "ok" else t.status)
        lines.append(f"| {t.variant} | {kept} | {fmt(t.value)} | {within} | {fmt(t.throughput)} | {fmt(t.p50_ms)} "
                     f"| {'yes' if t.cached else 'no'} |")
    if result.chosen is None:
        lines.append(f"\nno keep-list among the {len(result.candidates)} candidates meets {result.budget!r}, even "
                     "all of them kept; raise --max-candidates or loosen the budget")
    else:
        lines.append(f"\nchosen: {', '.join(result.chosen.kept) or '(nothing: the variant already meets the budget)'}")
    return "\n".join(lines)
