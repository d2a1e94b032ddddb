"""What plugins contribute by name, and the validated configs the core hands back to them.

A plugin returns ``*Spec`` records from the registration hooks; a recipe refers to them by ``name``. The core
validates the recipe against each spec's ``Option`` table and gives the stage hooks ``*Config`` records:
plain, frozen, already validated, with paths resolved against the recipe file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Option:
    """One option a model, dataset, pass or target accepts.

    ``kind`` is one of ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``, ``path`` (a file or folder,
    resolved against the recipe; its content is hashed into the cache key) or ``any``.
    ``min`` / ``max`` bound an ``int`` or ``float`` option (inclusive; for a ``list``, each number in it);
    validation refuses a value outside them, so a recipe fails at ``porter validate``, not mid-run.
    """

    kind: str = "str"
    default: Any = None
    choices: tuple | None = None
    help: str = ""
    required: bool = False
    # path options: must the file exist when the recipe is validated?
    must_exist: bool = True
    min: float | None = None
    max: float | None = None

    def range_text(self) -> str:
        """The allowed range in words: ">= 1", "<= 64", "from 1 to 64", or ""."""
        if self.min is not None and self.max is not None:
            return f"from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f">= {self.min:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return ""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str = ""
    options: Mapping[str, Option] = field(default_factory=dict)
    export_options: Mapping[str, Option] = field(default_factory=dict)
    version: str = "1"
    # where a framework reference run (porter_run_reference) is available
    has_reference: bool = True
    # True for a model whose score compares outputs with the framework reference's own outputs (output
    # agreement) rather than with ground truth: the plan then runs porter_run_reference once per dataset, whether
    # or not the recipe has a reference variant, and porter_score receives that OutputSet as ``reference``
    scores_against_reference: bool = False


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str = ""
    options: Mapping[str, Option] = field(default_factory=dict)
    version: str = "1"
    # what one item is called in reports ("utterance": "latency per utterance", "Worst utterances") and its
    # short form for table headers ("utt" gives "utt/s"); empty means the unit itself
    unit: str = "sample"
    unit_abbrev: str = ""


@dataclass(frozen=True)
class PassSpec:
    """A named ONNX → ONNX rewrite; ``tolerance`` is the max abs output difference the core accepts."""

    name: str
    description: str = ""
    options: Mapping[str, Option] = field(default_factory=dict)
    version: str = "1"
    tolerance: float = 1e-4
    # True for a pass that emulates another device's numerics (e.g. fp16 on the CPU): reports label the
    # variant's figures as an estimate
    estimate: bool = False


@dataclass(frozen=True)
class TargetSpec:
    name: str
    description: str = ""
    flags: Mapping[str, Option] = field(default_factory=dict)
    version: str = "1"
    # flags that only change how the run stage runs (threads, batching), so changing them reuses the compile
    run_flags: frozenset = frozenset()
    # the target can write a device bundle (the commands and files to run elsewhere) where its toolchain is
    # missing: `porter run --bundle DIR` (or the recipe's `bundle:`) hands DIR to it as TargetConfig.bundle
    writes_bundle: bool = False


@dataclass(frozen=True)
class MetricSpec:
    name: str
    description: str = ""
    lower_is_better: bool = True
    unit: str = ""


@dataclass(frozen=True)
class ModelConfig:
    name: str
    options: Mapping[str, Any]
    export: Mapping[str, Any]


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class PassConfig:
    name: str
    options: Mapping[str, Any]
    tolerance: float


@dataclass(frozen=True)
class TargetConfig:
    name: str
    flags: Mapping[str, Any]
    # the folder `porter run --bundle DIR` named, for a target whose spec says ``writes_bundle``; else None.
    # It is part of the compile and run stages' cache keys.
    bundle: Path | None = None


@dataclass(frozen=True)
class StageContext:
    """Where a stage runs, for the stages that record it (the compile and run hooks' ``context``).

    ``variant`` names one variant the node serves: variants that agree on a stage's inputs share its node, so
    a stage must not make its artifact depend on it (it is not part of the cache key; nor are the others).
    """

    stage: str
    workspace: Path  # the workspace root (artifacts/, report.json)
    recipe_path: Path | None  # the recipe file the run was started from
    variant: str | None = None

