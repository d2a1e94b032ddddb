"""The public plugin API: everything a plugin may import from porter, and nothing else.

Plugins import from here only (``from porter.api import hookimpl, ModelSpec, InputSet``); every other module
under ``porter`` is the core's own and may change. ``tests/core/test_plugin_boundary.py`` fails when a plugin
imports anything else from porter. A plugin in five lines::

    from porter.api import ModelSpec, Option, hookimpl

    @hookimpl
    def porter_register_models():
        return [ModelSpec("mlp", options={"checkpoint": Option("path", required=True)})]

and an entry point in the ``porter`` group (``[options.entry_points] porter = mlp = mlp_porter.plugin``).
The hooks a plugin may implement are documented in :mod:`porter.hookspecs`.
"""
from __future__ import annotations

from porter import PROJECT_NAME, __version__, hookimpl, hookspec
from porter.agreement import (
                              TensorAgreement,
                              combine,
                              compare_outputs,
                              compare_samples,
                              compare_tensors,
                              is_classifier_like,
                              min_relative_tolerance,
                              summary,
                              top1_matches,
                              worst_difference,
)
from porter.artifacts import (
                              CompiledModel,
                              InputSet,
                              Metrics,
                              OnnxModel,
                              OutputSet,
                              ParityCheck,
                              PassRecord,
                              SampleScore,
                              TensorSpec,
                              Timing,
                              write_sample,
)
from porter.batching import BATCHING_FLAGS, BatchRun, batch_feeds, bucket_batches, run_details, run_samples
from porter.console import run_and_print
from porter.errors import InputError, PorterError, RecipeError, StageError, ToolMissingError
from porter.fsutil import atomic_copy, atomic_path, atomic_write_bytes, atomic_write_text, file_lock
from porter.hashing import digest, file_digest
from porter.onnx_io import feeds_for, model_io, op_counts, opset_of, session, stack_batch
from porter.pipeline import run_recipe
from porter.precision.keeplist import KeepList, read_keep_dtype
from porter.precision.provenance import Provenance, note_provenance
from porter.recipe import describe_yaml_error
from porter.report.reader import read_report
from porter.runner import BaseRunner
from porter.scoring import Evaluator
from porter.specs import (
                              DatasetConfig,
                              DatasetSpec,
                              MetricSpec,
                              ModelConfig,
                              ModelSpec,
                              Option,
                              PassConfig,
                              PassSpec,
                              StageContext,
                              TargetConfig,
                              TargetSpec,
)
from porter.suggest import closest, suggest

__all__ = [
    # markers
    "PROJECT_NAME", "__version__", "hookimpl", "hookspec",
    # what plugins register, and the validated configs the stage hooks receive
    "Option", "ModelSpec", "DatasetSpec", "PassSpec", "TargetSpec", "MetricSpec",
    "ModelConfig", "DatasetConfig", "PassConfig", "TargetConfig", "StageContext",
    # the artifacts stages hand each other
    "TensorSpec", "ParityCheck", "PassRecord", "OnnxModel", "CompiledModel", "InputSet", "OutputSet", "Timing",
    "SampleScore", "Metrics", "write_sample",
    # running a compiled model: the runner shape, and batch 1 / bucketed batching alike on every target
    "BaseRunner", "BATCHING_FLAGS", "BatchRun", "run_samples", "run_details", "bucket_batches", "batch_feeds",
    # scoring a subset with the recipe's metric while compiling (accuracy-aware quantisation)
    "Evaluator",
    # errors
    "PorterError", "InputError", "RecipeError", "ToolMissingError", "StageError",
    # saved run reports (report.json), read into the typed report model
    "read_report",
    # one implementation each of writing a file atomically, hashing, locking and suggesting a misspelt name
    "atomic_write_text", "atomic_write_bytes", "atomic_path", "atomic_copy", "file_lock", "digest", "file_digest",
    "suggest", "closest",
    # ONNX helpers
    "model_io", "op_counts", "opset_of", "feeds_for", "stack_batch", "session",
    # the one numeric comparison (porter.agreement): outputs against a reference, NaN/missing/shape as problems
    "TensorAgreement", "compare_tensors", "compare_outputs", "compare_samples", "worst_difference",
    "combine", "summary", "min_relative_tolerance", "is_classifier_like", "top1_matches",
    # precision: what a renamed or split tensor stands for (porter debug matches tensors by it), and the
    # keep-list file (atc's keep_dtype format) of nodes that stay in fp32
    "Provenance", "note_provenance", "KeepList", "read_keep_dtype",
    # running a recipe from a plugin's own command (`porter score BUNDLE`): the report, or the report printed
    "run_recipe", "run_and_print",
    # a YAML parse error as one line, for plugins that read YAML files of their own (checkpoint sidecars)
    "describe_yaml_error",
]
