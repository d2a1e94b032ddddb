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
from porter.agreement import (TensorAgreement, compare_outputs, compare_samples, compare_tensors,
                              worst_difference)
from porter.artifacts import (CompiledModel, InputSet, Metrics, OnnxModel, OutputSet, ParityCheck, PassRecord,
                              SampleScore, TensorSpec, Timing, write_sample)
from porter.errors import InputError, PorterError, RecipeError, StageError, ToolMissingError
from porter.onnx_io import feeds_for, model_io, op_counts, opset_of, session, stack_batch
from porter.precision.keeplist import KeepList, read_keep_dtype
from porter.precision.provenance import Provenance, note_provenance
from porter.recipe import describe_yaml_error
from porter.specs import (DatasetConfig, DatasetSpec, MetricSpec, ModelConfig, ModelSpec, Option, PassConfig,
                          PassSpec, TargetConfig, TargetSpec)

__all__ = [
    # markers
    "PROJECT_NAME", "__version__", "hookimpl", "hookspec",
    # what plugins register, and the validated configs the stage hooks receive
    "Option", "ModelSpec", "DatasetSpec", "PassSpec", "TargetSpec", "MetricSpec",
    "ModelConfig", "DatasetConfig", "PassConfig", "TargetConfig",
    # the artifacts stages hand each other
    "TensorSpec", "ParityCheck", "PassRecord", "OnnxModel", "CompiledModel", "InputSet", "OutputSet", "Timing",
    "SampleScore", "Metrics", "write_sample",
    # errors
    "PorterError", "InputError", "RecipeError", "ToolMissingError", "StageError",
    # ONNX helpers
    "model_io", "op_counts", "opset_of", "feeds_for", "stack_batch", "session",
    # the one numeric comparison (porter.agreement): outputs against a reference, NaN/missing/shape as problems
    "TensorAgreement", "compare_tensors", "compare_outputs", "compare_samples", "worst_difference",
    # precision: what a renamed or split tensor stands for (porter debug matches tensors by it), and the
    # keep-list file (atc's keep_dtype format) of nodes that stay in fp32
    "Provenance", "note_provenance", "KeepList", "read_keep_dtype",
    # a YAML parse error as one line, for plugins that read YAML files of their own (checkpoint sidecars)
    "describe_yaml_error",
]
