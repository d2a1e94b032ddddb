"""Every hook porter calls, in the order a run calls them.

Hooks take keyword arguments only; an implementation may accept any subset of them. Stage hooks are
``firstresult`` and porter calls each one only on the plugin that registered the name it is about (the model,
dataset, pass or target a recipe chose; the registry knows the owner), so one plugin can never answer for
another's name. Implementations still return ``None`` for names they do not own: it documents which names are
theirs, and a plugin registering several names dispatches on it. What a registration hook returns is checked
(a list of the kind's spec type, each with a non-empty name); anything else is an error naming the plugin.

A stage writes its files only under ``workdir``: porter gives each stage a fresh temporary directory and renames
it into the workspace when the stage returns, so an interrupted stage never leaves a half-written artifact.
Paths in the returned object that lie under ``workdir`` are rebased onto the final directory.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from porter import hookspec

if TYPE_CHECKING:  # only for the annotations: plugins import these from porter.api
    import argparse

    import onnx

    from porter.artifacts import CompiledModel, InputSet, Metrics, OnnxModel, OutputSet
    from porter.runner import BaseRunner
    from porter.scoring import Evaluator
    from porter.specs import (
        DatasetConfig,
        DatasetSpec,
        MetricSpec,
        ModelConfig,
        ModelSpec,
        PassConfig,
        PassSpec,
        StageContext,
        TargetConfig,
        TargetSpec,
    )

# ---------------------------------------------------------------------------------------------------------
# Registration: what a plugin contributes by name
# ---------------------------------------------------------------------------------------------------------


@hookspec
def porter_register_models() -> Sequence[ModelSpec] | None:
    """Name the models this plugin can load, export and run as a framework reference.

    Called once when the plugin manager is built. Returns a list of :class:`porter.specs.ModelSpec`.
    A name registered twice fails with an error naming both plugins.

    Example::

        @porter.hookimpl
        def porter_register_models():
            return [ModelSpec("mlp", options={"checkpoint": Option("path", required=True)})]
    """


@hookspec
def porter_register_datasets() -> Sequence[DatasetSpec] | None:
    """Name the datasets this plugin can preprocess. Returns a list of :class:`porter.specs.DatasetSpec`."""


@hookspec
def porter_register_passes() -> Sequence[PassSpec] | None:
    """Name the graph passes this plugin provides. Returns a list of :class:`porter.specs.PassSpec`."""


@hookspec
def porter_register_targets() -> Sequence[TargetSpec] | None:
    """Name the compile/run targets this plugin provides, each with the flags it accepts.

    Returns a list of :class:`porter.specs.TargetSpec`; the core validates a recipe's flags against them.
    """


@hookspec
def porter_register_metrics() -> Sequence[MetricSpec] | None:
    """Name the metrics this plugin's score hook computes. Returns a list of :class:`porter.specs.MetricSpec`."""


@hookspec
def porter_add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add subcommands to the ``porter`` command line.

    Called when the CLI builds its argument parser. ``subparsers`` is the ``argparse`` sub-parsers object; set
    ``func`` on the new parser with ``parser.set_defaults(func=callable)``; the callable takes the parsed
    ``args`` and returns an exit code. Returns nothing.
    """


# ---------------------------------------------------------------------------------------------------------
# Stages, in pipeline order: preprocess → export → graph_fix (one call per pass) → compile → run → score
# ---------------------------------------------------------------------------------------------------------


@hookspec(firstresult=True)
def porter_preprocess(dataset: DatasetConfig, model: ModelConfig, workdir: Path) -> InputSet | None:
    """Turn a dataset into model inputs.

    Called once per distinct (dataset, model) pair in a recipe. ``dataset`` is a
    :class:`porter.specs.DatasetConfig`, ``model`` the :class:`porter.specs.ModelConfig` whose front end the
    inputs must match. Returns an :class:`porter.artifacts.InputSet` written under ``workdir``, or ``None``
    when the dataset is not this plugin's. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def porter_export(model: ModelConfig, inputs: InputSet, workdir: Path) -> OnnxModel | None:
    """Export a framework model to ONNX.

    Called once per distinct model config. ``model`` is a :class:`porter.specs.ModelConfig`; ``inputs`` is the
    :class:`porter.artifacts.InputSet` to check the export on (real preprocessed inputs). Returns an
    :class:`porter.artifacts.OnnxModel` whose ``checks`` hold the export's parity against the framework, or
    ``None`` when the model is not this plugin's. Stops at the first non-None result. An export beyond its
    tolerance raises.
    """


@hookspec(firstresult=True)
def porter_graph_fix(graph_pass: PassConfig, model: onnx.ModelProto) -> onnx.ModelProto | None:
    """Apply one named graph pass.

    Called once per pass listed in a variant's ``graph_fix``, in order. ``graph_pass`` is a
    :class:`porter.specs.PassConfig`; ``model`` an ``onnx.ModelProto`` the pass may modify. Returns the
    rewritten ``onnx.ModelProto``, or ``None`` when the pass is not this plugin's. Stops at the first non-None
    result. The core then runs the model before and after on real inputs with ONNX Runtime and fails the pass
    if they differ by more than its tolerance.
    """


@hookspec(firstresult=True)
def porter_compile(target: TargetConfig, model: OnnxModel, inputs: InputSet, evaluate: Evaluator | None, workdir: Path,
                   context: StageContext | None) -> CompiledModel | None:
    """Compile an ONNX model for a target.

    ``target`` is a :class:`porter.specs.TargetConfig` (validated flags; ``target.bundle`` is the folder of
    ``porter run --bundle`` when the target's spec says ``writes_bundle``), ``model`` the
    :class:`porter.artifacts.OnnxModel` after graph passes, ``inputs`` the variant's
    :class:`porter.artifacts.InputSet` (for calibration), ``evaluate`` a :class:`porter.scoring.Evaluator`
    that scores a target's outputs on a subset of ``inputs`` with the recipe's metric (for accuracy-aware
    compilation; calling it is optional; ``None`` when the recipe names no metric). ``context`` is a
    :class:`porter.specs.StageContext` (the workspace, the recipe file, a variant the node serves) for a stage
    that records where it ran, as a device bundle does; none of it is in the cache key, so the artifact must not
    depend on it. Returns a :class:`porter.artifacts.CompiledModel` written under ``workdir``, or ``None`` when
    the target is not this plugin's. Stops at the first non-None result. Raises
    :class:`porter.errors.ToolMissingError` when the target's toolchain is absent.

    After it returns, the core checks the compiled model on a real padded batch and on the same samples alone
    against the exported ONNX on ONNX Runtime, through the target's ``porter_runner``, and fails the variant
    beyond ``CompiledModel.tolerance`` (porter.parity).
    """


@hookspec(firstresult=True)
def porter_runner(target: TargetConfig, compiled: CompiledModel) -> BaseRunner | None:
    """Give a runner for a compiled model: the object the core infers batches with.

    ``target`` is the :class:`porter.specs.TargetConfig`, ``compiled`` the
    :class:`porter.artifacts.CompiledModel` the target's compile returned. Returns an inactive
    :class:`porter.runner.BaseRunner` subclass, or ``None`` when the target is not this plugin's or cannot run
    here (then the core skips the compiled model's parity check). Stops at the first non-None result.

    Example::

        @porter.hookimpl
        def porter_runner(target, compiled):
            return MyRunner(compiled, target.flags) if target.name == "mine" else None
    """


@hookspec(firstresult=True)
def porter_run(target: TargetConfig, compiled: CompiledModel, inputs: InputSet, workdir: Path,
               context: StageContext | None) -> OutputSet | None:
    """Run a compiled model over every input sample.

    ``target`` and ``context`` are as for :func:`porter_compile`. Returns an :class:`porter.artifacts.OutputSet`
    (outputs in the InputSet's order, latencies measured after warm-up) written under ``workdir``, or ``None``
    when the target is not this plugin's. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def porter_run_reference(model: ModelConfig, inputs: InputSet, workdir: Path) -> OutputSet | None:
    """Run the model in its own framework (e.g. PyTorch eager): the reference every variant is compared to.

    Returns an :class:`porter.artifacts.OutputSet` laid out as ``porter_run``'s, or ``None`` when the model is
    not this plugin's. Stops at the first non-None result.
    """


@hookspec(firstresult=True)
def porter_score(model: ModelConfig, metrics: tuple[str, ...], inputs: InputSet, outputs: OutputSet,
                 reference: OutputSet | None) -> Metrics | None:
    """Score outputs against the inputs' references.

    ``model`` is the :class:`porter.specs.ModelConfig` (decoding is model-specific), ``metrics`` the tuple of
    metric names the recipe asks for, ``inputs`` the :class:`porter.artifacts.InputSet` with the references,
    ``outputs`` an :class:`porter.artifacts.OutputSet`. ``reference`` is the framework reference's
    :class:`porter.artifacts.OutputSet` on the same inputs when the model's spec sets
    ``scores_against_reference`` (output agreement), else ``None``; implementations that score against ground
    truth need not accept it. Returns :class:`porter.artifacts.Metrics`, or ``None`` when the model is not this
    plugin's. Stops at the first non-None result.
    """


# ---------------------------------------------------------------------------------------------------------
# Placement and observation
# ---------------------------------------------------------------------------------------------------------


@hookspec
def porter_stage_resources(stage: str, target: TargetConfig | None) -> Mapping[str, float] | None:
    """Say what a stage needs from the machine that runs it.

    Called for every stage node when a distributed executor places work. ``stage`` is one of ``preprocess``,
    ``export``, ``graph_fix``, ``compile``, ``run``, ``run_reference``, ``score``; ``target`` the
    :class:`porter.specs.TargetConfig` for compile and run stages, else ``None``. Returns a dict of resource
    names to amounts (e.g. ``{"atc": 1}``), or ``None``. The results of all plugins are merged.
    """


@hookspec
def porter_stage_started(stage: str, plugin: str, variant: str | None, workdir: Path) -> None:
    """Observe a stage about to compute (not one read from the cache), in the process that runs it.

    Called on every plugin, whoever owns the stage, so tracing, logging or test plugins can watch any stage
    without answering for it. ``stage`` and ``plugin`` name the stage and the plugin that owns it; ``workdir``
    is the stage's fresh temporary folder. Returns nothing.
    """


@hookspec
def porter_stage_error(stage: str, plugin: str, variant: str | None, error: BaseException) -> None:
    """Observe a stage failure. Called once, before porter reports the error and stops. Returns nothing."""


@hookspec
def porter_tool_versions() -> Mapping[str, str] | None:
    """Report versions of toolchains this plugin drives, for reports and ``porter doctor``.

    Returns a dict of tool name to version string (or a sentence saying it is missing), or ``None``.
    """
