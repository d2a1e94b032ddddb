"""DeepSpeech → ONNX, checked against PyTorch on real preprocessed inputs, padded ones included.

The legacy TorchScript exporter is used (``dynamo=False``): the dynamo exporter fails on
``pack_padded_sequence`` and silently changes the opset. The legacy exporter turns packing into the ONNX LSTM's
``sequence_lens`` input, and the model builds its conv padding mask from the ``lengths`` input with tensor ops,
so a padded utterance gives the same outputs as the same utterance alone. The parity checks below prove that on
every export, and a structural check refuses a graph whose conv mask was frozen into a constant at trace time
(what the vendor's export did).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx
import torch

from porter.api import InputError, InputSet, OnnxModel, ParityCheck, atomic_path, compare_tensors, model_io

INPUT_NAMES = ("spect", "lengths")
OUTPUT_NAMES = ("probs", "out_lengths")
ONNX_FILE = "deepspeech.onnx"
# How many real utterances every export is checked on.
PARITY_SAMPLES = 3


class ExportParityError(ValueError):
    """The exported graph does not compute what the PyTorch model computes.

    Not a PorterError on purpose: the core wraps it in a StageError naming the export stage and this plugin,
    and offers it to the porter_stage_error hook."""


@dataclass(frozen=True)
class ExportSettings:
    """The model's ``export`` options, validated by the core from the ModelSpec's export_options."""

    opset: int = 13
    dynamic: bool = False
    static_length: int = 621
    batch: int = 1
    tolerance: float = 1e-4
    truncate: bool = False

    @classmethod
    def from_options(cls, options: Mapping) -> "ExportSettings":
        known = {name: options[name] for name in cls.__dataclass_fields__ if options.get(name) is not None}
        settings = cls(**known)
        for name in ("opset", "static_length", "batch"):
            if getattr(settings, name) < 1:
                raise InputError(f"is {getattr(settings, name)}; expected a positive integer", field=f"export.{name}")
        if settings.tolerance < 0:
            raise InputError(f"is {settings.tolerance}; expected a non-negative number", field="export.tolerance")
        return settings

    @property
    def static(self) -> bool:
        return not self.dynamic


@dataclass(frozen=True)
class Example:
    """One real utterance's model input at its natural length: spect [1, 1, F, L] and L."""

    id: str
    spect: np.ndarray

    @property
    def frames(self) -> int:
        return int(self.spect.shape[-1])

    def prefix(self, frames: int, suffix: str) -> "Example":
        return Example(id=f"{self.id}[:{frames}]{suffix}", spect=np.ascontiguousarray(self.spect[..., :frames]))


# ---------------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------------


def export_checked(model: torch.nn.Module, examples: Sequence[Example], settings: ExportSettings,
                   workdir: Path) -> OnnxModel:
    """Export ``model`` to ``workdir/deepspeech.onnx``, check it against ``model`` and describe it."""
    if not examples:
        raise InputError("no preprocessed utterances to check the export on; expected at least one", field="inputs")
    path = Path(workdir) / ONNX_FILE
    export_graph(model, examples, settings, path)
    graph = onnx.load(str(path))
    frozen = frozen_mask_nodes(graph)
    if frozen:
        raise ExportParityError(
            f"{path}: the conv padding mask was frozen into constants at trace time (Where nodes "
            f"{', '.join(frozen[:6])}); the mask must be computed from the 'lengths' input")
    checks = tuple(check_parity(model, path, examples, settings))
    raise_if_failed(checks)
    inputs, outputs = model_io(graph)
    return OnnxModel(path=path, inputs=inputs, outputs=outputs, opset=settings.opset, checks=checks)


def raise_if_failed(checks: Sequence[ParityCheck]) -> None:
    """Fail the export when any parity check is beyond its tolerance, naming each such check."""
    failed = [c for c in checks if not c.passed]
    if failed:
        raise ExportParityError("; ".join(
            f"{c.failure()} ({c.detail})" for c in failed))


def export_graph(model: torch.nn.Module, examples: Sequence[Example], settings: ExportSettings, path: Path) -> None:
    """Trace ``model`` to ONNX at ``path`` (written to a temporary name first) and verify the opset."""
    model.eval()
    if settings.static:
        spect, lengths = pad_batch(_fill_batch(examples, settings.batch), settings.static_length)
        axes = None
    else:
        # Two rows of different lengths, so nothing about one length is baked into the trace.
        spect, lengths = pad_batch(_two_lengths(examples))
        axes = {"spect": {0: "batch", 3: "time"}, "lengths": {0: "batch"},
                "probs": {0: "batch", 1: "frames"}, "out_lengths": {0: "batch"}}
    with atomic_path(path) as partial:
        with warnings.catch_warnings():
            # TracerWarnings about Python values and the legacy exporter's deprecation notice: expected here.
            warnings.simplefilter("ignore")
            with torch.no_grad():
                torch.onnx.export(model, (torch.from_numpy(spect), torch.from_numpy(lengths)), str(partial),
                                  dynamo=False, opset_version=settings.opset, input_names=list(INPUT_NAMES),
                                  output_names=list(OUTPUT_NAMES), dynamic_axes=axes, do_constant_folding=True)
        graph = onnx.load(str(partial))
        opset = next((o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")), None)
        if opset != settings.opset:
            raise ExportParityError(f"asked for opset {settings.opset} but the exporter wrote opset {opset}")
        _name_class_axis(graph, num_classes=len(getattr(model, "labels", ())) or None)
        onnx.checker.check_model(graph)
        onnx.save(graph, str(partial))


def _name_class_axis(graph: onnx.ModelProto, num_classes: int | None) -> None:
    """The exporter leaves the class axis of ``probs`` as an invented symbol; it is the label count."""
    if not num_classes:
        return
    for output in graph.graph.output:
        if output.name == "probs":
            dims = output.type.tensor_type.shape.dim
            if len(dims) == 3:
                dims[2].ClearField("dim_param")
                dims[2].dim_value = num_classes


def frozen_mask_nodes(graph: onnx.ModelProto) -> list[str]:
    """Names of Where nodes whose condition depends on no graph input: a mask traced at one length and frozen
    there (directly as a constant, or as a subgraph computed from constants only)."""
    dependent = {value.name for value in graph.graph.input}
    for node in graph.graph.node:  # nodes are stored in topological order
        if any(name in dependent for name in node.input if name):
            dependent.update(node.output)
    return [node.name or node.output[0] for node in graph.graph.node
            if node.op_type == "Where" and node.input and node.input[0] not in dependent]


# ---------------------------------------------------------------------------------------------------------
# Parity against PyTorch
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Alone:
    """PyTorch's output for one utterance run alone at its natural length: the reference."""

    probs: np.ndarray  # [T', C]
    out_length: int


def check_parity(model: torch.nn.Module, onnx_path: Path, examples: Sequence[Example],
                 settings: ExportSettings) -> list[ParityCheck]:
    """Compare the ONNX graph with ``model`` run on each utterance alone, over each utterance's valid frames.

    Static exports are checked on batches padded to the static length, always including at least one utterance
    shorter than it; dynamic exports at natural length one by one and on a padded batch of two lengths.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    alone_cache: dict[str, _Alone] = {}

    def alone(example: Example) -> _Alone:
        if example.id not in alone_cache:
            with torch.no_grad():
                probs, out_lengths = model(torch.from_numpy(example.spect),
                                           torch.tensor([example.frames], dtype=torch.int32))
            length = int(out_lengths[0])
            alone_cache[example.id] = _Alone(probs=probs[0, :length].numpy(), out_length=length)
        return alone_cache[example.id]

    def compare(label: str, batch: Sequence[Example], pad_to: int | None) -> ParityCheck:
        spect, lengths = pad_batch(batch, pad_to)
        probs, out_lengths = session.run(list(OUTPUT_NAMES), {"spect": spect, "lengths": lengths})
        worst, notes, problem = 0.0, [], ""
        for row, example in enumerate(batch):
            expected = alone(example)
            if int(out_lengths[row]) != expected.out_length:
                worst = float("inf")
                notes.append(f"{example.id}: out_lengths {int(out_lengths[row])} != {expected.out_length}")
                continue
            agreement = compare_tensors("probs", expected.probs, probs[row, :expected.out_length])
            if agreement.problem and not problem:
                problem = f"{example.id}: {agreement.describe()}"
            worst = max(worst, agreement.max_abs)
        frames = ", ".join(f"{e.id}={e.frames}" for e in batch)
        detail = f"padded to {spect.shape[-1]} frames; lengths {frames}" + ("; " + "; ".join(notes) if notes else "")
        return ParityCheck(label=label, max_abs_diff=worst, tolerance=settings.tolerance, samples=len(batch),
                           detail=detail, problem=problem)

    checks = []
    if settings.static:
        for example in examples:
            if example.frames > settings.static_length:
                raise InputError(f"utterance {example.id!r} has {example.frames} frames, more than the static "
                                 f"length {settings.static_length}", field="export.static_length")
        candidates = list(examples)
        if all(e.frames == settings.static_length for e in candidates):
            # Padding must be exercised: a prefix of a real utterance, shorter than the static length.
            candidates.append(candidates[0].prefix(max(1, settings.static_length * 2 // 3), " (shortened)"))
        padded = [e for e in candidates if e.frames < settings.static_length]
        full = [e for e in candidates if e.frames == settings.static_length]
        for label, group in (("onnx vs pytorch, padded to static length", padded),
                             ("onnx vs pytorch, full static length", full)):
            for start in range(0, len(group), settings.batch):
                batch = _fill_batch(group[start:start + settings.batch], settings.batch)
                checks.append(compare(label, batch, settings.static_length))
        return _merge(checks)
    for example in examples:
        checks.append(compare("onnx vs pytorch, natural length", [example], None))
    checks.append(compare("onnx vs pytorch, padded batch of two lengths", _two_lengths(examples), None))
    return _merge(checks)


def _merge(checks: list[ParityCheck]) -> list[ParityCheck]:
    """One ParityCheck per label: the worst difference over all its batches."""
    merged: dict[str, ParityCheck] = {}
    for check in checks:
        before = merged.get(check.label)
        if before is None:
            merged[check.label] = check
            continue
        merged[check.label] = ParityCheck(
            label=check.label, max_abs_diff=max(before.max_abs_diff, check.max_abs_diff),
            tolerance=check.tolerance, samples=before.samples + check.samples,
            detail=f"{before.detail} | {check.detail}", problem=before.problem or check.problem)
    return list(merged.values())


# ---------------------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------------------


def pad_batch(examples: Sequence[Example], frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad utterances on the time axis into spect [B, 1, F, frames] and lengths [B] int32."""
    frames = frames or max(e.frames for e in examples)
    bins = examples[0].spect.shape[2]
    spect = np.zeros((len(examples), 1, bins, frames), dtype=np.float32)
    for row, example in enumerate(examples):
        spect[row, :, :, :example.frames] = example.spect[0]
    return spect, np.array([e.frames for e in examples], dtype=np.int32)


def _fill_batch(examples: Sequence[Example], size: int) -> list[Example]:
    """Exactly ``size`` utterances: repeat the given ones when there are fewer."""
    return [examples[i % len(examples)] for i in range(size)]


def _two_lengths(examples: Sequence[Example]) -> list[Example]:
    """Two utterances of different lengths, longest first; a shortened copy when all share one length."""
    ordered = sorted(examples, key=lambda e: e.frames, reverse=True)
    longest = ordered[0]
    shorter = next((e for e in ordered if e.frames < longest.frames), None)
    if shorter is None:
        shorter = longest.prefix(max(1, longest.frames * 2 // 3), " (shortened)")
    return [longest, shorter]


def pick_examples(inputs: InputSet, count: int = PARITY_SAMPLES) -> list[Example]:
    """The longest, the shortest and then evenly spread utterances of an InputSet (lengths from its details)."""
    frames = list(inputs.details.get("frames") or [])
    if len(frames) == len(inputs):
        order = sorted(range(len(inputs)), key=lambda i: frames[i], reverse=True)
        chosen = [order[0], order[-1]] + [order[len(order) * k // count] for k in range(1, count)]
    else:
        chosen = list(range(len(inputs)))
    indices = list(dict.fromkeys(chosen))[:count]
    examples = []
    for index in indices:
        arrays = inputs.load(index)
        spect, lengths = arrays["spect"], arrays["lengths"]
        length = int(lengths.reshape(-1)[0])
        examples.append(Example(id=inputs.sample_ids[index], spect=np.ascontiguousarray(spect[..., :length])))
    return examples


__all__ = [
    "ExportSettings", "ExportParityError", "Example", "export_checked", "export_graph", "check_parity",
    "raise_if_failed",
    "frozen_mask_nodes", "pad_batch", "pick_examples",
]
