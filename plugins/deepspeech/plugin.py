"""porter hooks for DeepSpeech2 (deepspeech.pytorch V3): the model, AN4 datasets, WER/CER.

Each stage hook answers only for the names registered here and returns ``None`` for any other, so pluggy
hands other models and datasets to their own plugins. The work lives in the modules named for it.
"""
from __future__ import annotations

import sys
from pathlib import Path

from porter.api import DatasetSpec, MetricSpec, ModelSpec, Option, hookimpl

PLUGIN_VERSION = "1"
# part of every model stage's cache key: bump it when the exported graph or the reference's numbers change
# (2: the conv front end masks once per block in eval, so exports cached before differ in their ops)
MODEL_VERSION = "2"
MODEL = "deepspeech"
AN4 = "an4"
AN4_SYNTH = "an4_synth"
DATASETS = (AN4, AN4_SYNTH)
# the opsets torch 2.13's TorchScript ONNX exporter (dynamo=False) can write
MIN_OPSET, MAX_OPSET = 7, 20
# 100 frames a second: about 17 minutes of audio, a [batch, 1, 161, frames] float input of 64 MB per utterance
MAX_STATIC_FRAMES = 100_000
SYNTH_SPLITS = ("train", "dev", "test_unseen_voices", "test_unseen_engine")


# ---------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------


@hookimpl
def porter_register_models():
    return [ModelSpec(
        MODEL,
        description="DeepSpeech2 as deepspeech.pytorch V3 defines it, from a V3 checkpoint",
        options={
            "checkpoint": Option("path", required=True,
                                 help="V3 Lightning .ckpt, or a state_dict with a YAML/JSON config sidecar"),
            "resample": Option("bool", default=False,
                               help="resample audio that is not at the checkpoint's sample rate instead of failing"),
        },
        export_options={
            "opset": Option("int", default=13, min=MIN_OPSET, max=MAX_OPSET,
                             help="ONNX opset; the exported file is checked to carry it"),
            "dynamic": Option("bool", default=False,
                              help="dynamic batch and time axes; false gives the static batch x 1 x 161 x "
                                   "static_length input"),
            "static_length": Option("int", default=621, min=1, max=MAX_STATIC_FRAMES,
                                    help="frames of the static input (AN4's longest: 621)"),
            "batch": Option("int", default=1, min=1, max=1024, help="batch size of the static input"),
            "tolerance": Option("float", default=1e-4, min=0.0,
                                help="largest |onnx - pytorch| accepted on probabilities, padded inputs included"),
            "truncate": Option("bool", default=False,
                               help="cut utterances longer than static_length instead of failing"),
        },
        version=MODEL_VERSION,
    )]


@hookimpl
def porter_register_datasets():
    return [
        DatasetSpec(
            AN4,
            description="CMU AN4: a V3 JSON or CSV manifest, or the original tree of big-endian .raw files",
            options={
                "manifest": Option("path", help="V3 JSON manifest (root_path + samples) or CSV (wav,txt per line)"),
                "an4_root": Option("path", help="the original AN4 folder holding wav/ and etc/ (or its parent)"),
                "split": Option("str", default="test", choices=("train", "test"),
                                help="which split of the tree to read; also the group metrics are reported under"),
                "limit": Option("int", min=1, help="use only the first N utterances"),
            },
            unit="utterance", unit_abbrev="utt",
            version=PLUGIN_VERSION,
        ),
        DatasetSpec(
            AN4_SYNTH,
            description="porter's synthetic AN4-style corpus (espeak-ng, flite, festival), made on first use",
            options={
                "root": Option("path", must_exist=False,
                               help="corpus folder; missing splits are generated there and reused after "
                                    "(default: a per-user cache, ~/.cache/porter/an4_synth/seed-N)"),
                "splits": Option("list", default=["test_unseen_voices", "test_unseen_engine"], choices=SYNTH_SPLITS,
                                 help="splits to score; each is reported as its own group"),
                "seed": Option("int", default=1234, min=0, max=2**32 - 1, help="corpus seed"),
                "limit": Option("int", min=1, help="use only the first N utterances of each split"),
            },
            unit="utterance", unit_abbrev="utt",
            version=PLUGIN_VERSION,
        ),
    ]


@hookimpl
def porter_register_metrics():
    return [
        MetricSpec("wer", description="word error rate, 100 x word edits / reference words (corpus level)",
                   unit="%"),
        MetricSpec("cer", description="character error rate without spaces, 100 x edits / reference characters",
                   unit="%"),
    ]


@hookimpl
def porter_add_commands(subparsers):
    from . import cli

    cli.add_commands(subparsers)


# ---------------------------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------------------------


@hookimpl
def porter_preprocess(dataset, model, workdir: Path):
    if dataset.name not in DATASETS or model.name != MODEL:
        return None
    from .export import ExportSettings
    from .preprocess import an4_splits, preprocess, synth_splits

    if dataset.name == AN4:
        splits = an4_splits(dataset.options)
    else:
        splits = synth_splits(dataset.options, progress=sys.stderr.isatty())
    return preprocess(splits, checkpoint=Path(model.options["checkpoint"]),
                      resample=bool(model.options.get("resample")),
                      export=ExportSettings.from_options(model.export), workdir=Path(workdir))


@hookimpl
def porter_export(model, inputs, workdir: Path):
    if model.name != MODEL:
        return None
    from .export import ExportSettings, export_checked, pick_examples
    from .reference import load_eval_model

    return export_checked(load_eval_model(Path(model.options["checkpoint"])), pick_examples(inputs),
                          ExportSettings.from_options(model.export), Path(workdir))


@hookimpl
def porter_run_reference(model, inputs, workdir: Path):
    if model.name != MODEL:
        return None
    from .reference import run_reference

    return run_reference(Path(model.options["checkpoint"]), inputs, Path(workdir))


@hookimpl
def porter_score(model, metrics, inputs, outputs):
    if model.name != MODEL:
        return None
    from .scoring import score

    labels = inputs.details.get("labels")
    if not labels:
        from .reference import load_eval_checkpoint
        labels = load_eval_checkpoint(Path(model.options["checkpoint"])).labels
    return score(list(labels), tuple(metrics or ()), inputs, outputs)


@hookimpl
def porter_tool_versions():
    """The libraries this plugin's stages depend on, for every report's provenance (the core lists its own)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for lib in ("librosa", "soundfile", "Levenshtein"):
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            out[lib] = "not installed"
    return out
