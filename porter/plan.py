"""Variants → a DAG of stage nodes, each keyed by everything that determines its artifact.

A node's key hashes its stage name, its own config (path options by file content), the version of the plugin
that runs it and of the spec it uses, and the keys of the nodes it consumes. Variants that agree on a prefix of
the pipeline therefore share those nodes, and changing one compile flag changes only compile → run → score.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from porter import __version__
from porter.hashing import digest, file_digest
from porter.recipe import Recipe, Variant
from porter.specs import Option

STAGES = ("preprocess", "export", "graph_fix", "compile", "run", "run_reference", "score")


@dataclass(frozen=True)
class StageNode:
    key: str
    stage: str
    plugin: str  # the plugin that owns the model/dataset/pass/target this node runs
    config: Any  # the *Config (or metric names) the stage hook receives
    inputs: Mapping[str, str] = field(default_factory=dict)  # role → upstream node key
    label: str = ""  # human-readable: the pass name, target name...
    check_samples: int = 4
    # compile nodes: the (ModelConfig, metric names) an accuracy-aware compiler scores with
    scoring: tuple | None = None
    recipe_path: Path | None = None  # the recipe the plan came from (handed to stages in their context)


@dataclass(frozen=True)
class VariantPath:
    """The node keys one variant's pipeline runs through, in order."""

    variant: Variant
    preprocess: str
    export: str | None
    graph_fix: tuple[str, ...]
    compile: str | None
    run: str
    score: str

    @property
    def keys(self) -> tuple[str, ...]:
        seq = [self.preprocess, self.export, *self.graph_fix, self.compile, self.run, self.score]
        return tuple(k for k in seq if k)


@dataclass
class Plan:
    nodes: dict[str, StageNode]  # insertion order is a valid execution order
    paths: list[VariantPath]



def _fingerprint_options(values: Mapping[str, Any], table: Mapping[str, Option]) -> dict:
    out = {}
    for name, value in sorted(values.items()):
        opt = table.get(name)
        if isinstance(value, Path) and opt is not None and opt.kind == "path":
            # must_exist=False paths name things a plugin generates deterministically (their content would
            # change between the first run and the next); key them by name.
            if opt.must_exist and value.exists():
                out[name] = {"content": file_digest(value)}
            else:
                out[name] = {"path": str(value)}
        else:
            out[name] = value
    return out


def build_plan(recipe: Recipe, plugins, *, variants: tuple[str, ...] | None = None) -> Plan:
    reg = plugins.registry
    nodes: dict[str, StageNode] = {}
    paths: list[VariantPath] = []

    def owner_version(kind: str, name: str) -> tuple[str, str, str]:
        owner = reg.owner(kind, name)
        spec = reg.get(kind, name)
        return owner, plugins.version_of(owner), getattr(spec, "version", "1")

    def add(stage: str, kind: str, name: str, config, fingerprint: dict, inputs: dict, label: str = "",
            scoring: tuple | None = None) -> str:
        owner, pversion, sversion = owner_version(kind, name)
        key = digest({
            "stage": stage, "porter": __version__, "plugin": owner, "plugin_version": pversion,
            "spec_version": sversion, "config": fingerprint, "inputs": inputs,
            "check_samples": recipe.check_samples if stage in ("export", "graph_fix", "compile") else None,
        })[:32]
        if key not in nodes:
            nodes[key] = StageNode(key, stage, owner, config, dict(inputs), label or name, recipe.check_samples,
                                   scoring, recipe.path)
        return key

    for variant in recipe.variants:
        if variants and variant.name not in variants:
            continue
        mspec = reg.get("models", variant.model.name)
        dspec = reg.get("datasets", variant.dataset.name)
        model_fp = {
            "name": variant.model.name,
            "options": _fingerprint_options(variant.model.options, mspec.options),
            "export": _fingerprint_options(variant.model.export, mspec.export_options),
        }
        data_fp = {"name": variant.dataset.name,
                   "options": _fingerprint_options(variant.dataset.options, dspec.options)}
        pre = add("preprocess", "datasets", variant.dataset.name, (variant.dataset, variant.model),
                  {"dataset": data_fp, "model": model_fp}, {})

        # the reference run's key depends only on the model and its inputs, so a reference variant and the
        # agreement scores of the other variants share one run
        ref_run = None
        if variant.reference or getattr(mspec, "scores_against_reference", False):
            ref_run = add("run_reference", "models", variant.model.name, variant.model, {"model": model_fp},
                          {"inputs": pre}, label="reference")
        score_inputs = {"reference": ref_run} if getattr(mspec, "scores_against_reference", False) else {}

        if variant.reference:
            score = add("score", "models", variant.model.name, (variant.model, variant.metrics),
                        {"model": model_fp, "metrics": list(variant.metrics)},
                        {"inputs": pre, "outputs": ref_run, **score_inputs})
            assert ref_run is not None  # a reference variant always has its framework run
            paths.append(VariantPath(variant, pre, None, (), None, ref_run, score))
            continue

        exp = add("export", "models", variant.model.name, variant.model, {"model": model_fp}, {"inputs": pre})
        current = exp
        fixes = []
        for p in variant.passes:
            pspec = reg.get("passes", p.name)
            current = add("graph_fix", "passes", p.name, p,
                          {"name": p.name, "options": _fingerprint_options(p.options, pspec.options),
                           "tolerance": p.tolerance},
                          {"model": current, "inputs": pre})
            fixes.append(current)
        assert variant.target is not None  # the recipe gives every non-reference variant a target
        tspec = reg.get("targets", variant.target.name)
        flag_fp = _fingerprint_options(variant.target.flags, tspec.flags)
        compile_fp = {k: v for k, v in flag_fp.items() if k not in tspec.run_flags}
        # the compile node checks the compiled model against the export on real inputs (porter.parity) and may
        # tune against the recipe's metric, so both are part of its key
        if variant.target.bundle is not None:  # a bundle-writing stage's artifact points into its bundle
            flag_fp = {**flag_fp, "bundle": str(variant.target.bundle)}
            compile_fp = {**compile_fp, "bundle": str(variant.target.bundle)}
        comp = add("compile", "targets", variant.target.name, _compile_config(variant.target, tspec.run_flags),
                   {"target": variant.target.name, "flags": compile_fp, "metrics": list(variant.metrics)},
                   {"model": current, "inputs": pre, "export": exp},
                   scoring=(variant.model, tuple(variant.metrics)))
        run = add("run", "targets", variant.target.name, variant.target,
                  {"target": variant.target.name, "flags": flag_fp}, {"compiled": comp, "inputs": pre})
        score = add("score", "models", variant.model.name, (variant.model, variant.metrics),
                    {"model": model_fp, "metrics": list(variant.metrics)},
                    {"inputs": pre, "outputs": run, **score_inputs})
        paths.append(VariantPath(variant, pre, exp, tuple(fixes), comp, run, score))
    return Plan(nodes, paths)


def _compile_config(target, run_flags):
    """The compile stage sees only the flags that change the compiled artifact (so its key covers all it reads)."""
    if not run_flags:
        return target
    return dataclasses.replace(target, flags={k: v for k, v in target.flags.items() if k not in run_flags})
