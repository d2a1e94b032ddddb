"""AN4 (real or synthetic) → the model's inputs: one spectrogram sample per utterance, plus device files.

Each sample is ``{"spect": [1, 1, F, T] float32, "lengths": [1] int32}`` at the utterance's natural length;
batching runners pad. When the export is static, the seed's device layout is written too: one padded
``device/spect/data{i}.bin`` (float32, [1, 1, F, static_length]) and ``device/sizes/data{i}.bin`` (one int32)
per sample, numbered from 1 as the seed and the msame/ais_bench runners number them (sample ``k`` of the InputSet
is ``data{k+1}``).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from porter.api import InputError, InputSet, atomic_write_bytes, write_sample

from .checkpoint import check_tensors_fit
from .datasets import (
    RAW_S16BE_16K,
    RAW_SAMPLE_RATE,
    DroppedCharacters,
    Utterance,
    filter_transcript,
    read_an4_tree,
    read_manifest,
    read_raw_s16be,
)
from .export import ExportSettings
from .features import Audio, check_usable, read_audio, spectrogram
from .reference import load_eval_checkpoint

DEVICE_FOLDER = "device"
SYNTH_DEFAULT_SPLITS = ("test_unseen_voices", "test_unseen_engine")


@dataclass(frozen=True)
class Split:
    """A named part of a dataset; its name becomes the group its samples are scored under."""

    name: str
    utterances: list
    source: str


# ---------------------------------------------------------------------------------------------------------
# Dataset options → utterances
# ---------------------------------------------------------------------------------------------------------


def an4_splits(options: Mapping) -> list[Split]:
    """The ``an4`` dataset: a JSON/CSV manifest, or the original tree's train or test split."""
    manifest, tree = options.get("manifest"), options.get("an4_root")
    split = options.get("split") or "test"
    if (manifest is None) == (tree is None):
        raise InputError("give exactly one of 'manifest' (a V3 JSON or CSV manifest) and 'an4_root' (the "
                         f"original AN4 folder); got {'both' if manifest else 'neither'}", field="dataset.options")
    if manifest is not None:
        utterances = read_manifest(Path(manifest))
        source = f"manifest {manifest}"
    else:
        assert tree is not None  # exactly one of manifest and an4_root, checked above
        utterances = read_an4_tree(Path(tree), split)
        source = f"AN4 tree {tree} ({split})"
    return [Split(name=split, utterances=_limited(utterances, options.get("limit")), source=source)]


def synth_splits(options: Mapping, *, progress: bool) -> list[Split]:
    """The ``an4_synth`` dataset: splits of the synthetic corpus, generated on first use and reused after."""
    from .synth import corpus

    given = options.get("seed")
    seed = int(given) if given is not None else 1234
    root = Path(options["root"]) if options.get("root") else default_synth_root(seed)
    splits = list(options.get("splits") or SYNTH_DEFAULT_SPLITS)
    for name in splits:
        if name not in corpus.SPLITS:
            raise InputError(f"unknown split {name!r}; expected some of {list(corpus.SPLITS)}",
                             field="dataset.options.splits")
        _check_corpus_seed(root / name / corpus.MARKER, seed)
    manifests = corpus.generate(root, seed=seed, splits=splits, progress=progress)
    return [Split(name=name, utterances=_limited(read_manifest(manifests[name]), options.get("limit")),
                  source=f"synthetic corpus {root} (seed {seed}, {name})") for name in splits]


def default_synth_root(seed: int) -> Path:
    """Where the synthetic corpus goes when a recipe names no root: a per-user cache, one folder per seed."""
    base = os.environ.get("PORTER_DATA_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "porter")
    return Path(base) / "an4_synth" / f"seed-{seed}"


def _check_corpus_seed(marker: Path, seed: int) -> None:
    # The generator keeps files that already exist, so a folder made with another seed would be reused as is.
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8")).get("seed")
    except (OSError, ValueError):
        return
    if recorded is not None and recorded != seed:
        raise InputError(f"holds a corpus generated with seed {recorded}, but the recipe asks for seed {seed}; "
                         "expected a root per seed (choose another root)", file=marker.parent.parent)


def _limited(utterances: list, limit) -> list:
    if limit is None:
        return utterances
    if limit < 1:
        raise InputError(f"is {limit}; expected a positive number of utterances", field="dataset.options.limit")
    return utterances[:limit]


# ---------------------------------------------------------------------------------------------------------
# Utterances → InputSet
# ---------------------------------------------------------------------------------------------------------


def preprocess(splits: list[Split], *, checkpoint: Path, resample: bool, export: ExportSettings,
               workdir: Path) -> InputSet:
    """Compute every utterance's spectrogram with the checkpoint's front end and write the InputSet."""
    from tqdm import tqdm

    loaded = load_eval_checkpoint(checkpoint)
    # a checkpoint whose tensors do not fit its config fails here, before any audio is processed
    check_tensors_fit(loaded)
    labels, spect_cfg = list(loaded.labels), loaded.spect_cfg
    workdir = Path(workdir)
    items = [(split.name, utterance) for split in splits for utterance in split.utterances]
    if not items:
        raise InputError("the dataset holds no utterances; expected at least one", field="dataset")
    _check_unique_ids(items)
    device = (DeviceLayout(workdir / DEVICE_FOLDER, export.static_length, spect_cfg.n_bins)
              if export.static else None)

    ids, references, groups, frames, filtered_all, truncated = [], [], [], [], [], []
    clipped: dict[str, int] = {}
    for index, (group, utterance) in enumerate(tqdm(items, desc="preprocess", unit="utt",
                                                    disable=not sys.stderr.isatty(), leave=False)):
        audio = load_samples(utterance, sample_rate=spect_cfg.sample_rate, resample=resample)
        samples = audio.samples
        if audio.clipped:
            clipped[utterance.id] = audio.clipped
        check_usable(samples, spect_cfg, utterance.audio)
        spect = spectrogram(samples, spect_cfg)
        length = spect.shape[1]
        if export.static and length > export.static_length:
            if not export.truncate:
                raise InputError(
                    f"utterance {utterance.id!r} has {length} frames, more than the static export length "
                    f"{export.static_length}; expected at most {export.static_length} (raise export.static_length, "
                    "use a dynamic export, or set export.truncate to cut it)", file=utterance.audio)
            truncated.append(utterance.id)
            spect, length = spect[:, :export.static_length], export.static_length
        spect = np.ascontiguousarray(spect[None, None], dtype=np.float32)
        lengths = np.array([length], dtype=np.int32)
        write_sample(workdir, index, {"spect": spect, "lengths": lengths})
        if device is not None:
            device.write(index, spect, lengths)
        filtered = filter_transcript(utterance.transcript, labels)
        if not filtered.text.split():
            raise InputError(f"transcript {utterance.transcript!r} has no character the model's labels can "
                             "express, so nothing is left to score against; expected words in "
                             f"{''.join(labels[1:])!r}", file=utterance.transcript_file or utterance.audio,
                             field=utterance.transcript_field)
        filtered_all.append(filtered)
        ids.append(utterance.id)
        references.append(filtered.text)
        groups.append(group)
        frames.append(length)

    dropped = DroppedCharacters.tally(filtered_all)
    notes = []
    if dropped.count:
        # the reference drops them silently; porter keeps the reference's behaviour but says so
        shown = ", ".join(f"{char!r} x{n}" for char, n in list(dropped.characters.items())[:10])
        note = (f"dropped {dropped.count} transcript character(s) the labels cannot express, in "
                f"{dropped.utterances} of {len(items)} utterance(s), as the reference does: {shown}")
        notes.append(note)
        print(f"porter: deepspeech: {note} (listed under dropped_characters in the preprocess details)",
              file=sys.stderr)
    if clipped:
        shown = ", ".join(f"{name} ({count})" for name, count in list(clipped.items())[:10])
        print(f"porter: deepspeech: clipped {sum(clipped.values())} float sample(s) beyond 16-bit full scale to it, "
              f"in {len(clipped)} of {len(items)} utterance(s): {shown} (listed under clipped_samples in the "
              "preprocess details)", file=sys.stderr)
    details = {
        "labels": labels,
        "frames": frames,
        "sample_rate": spect_cfg.sample_rate,
        "sources": [split.source for split in splits],
        "dropped_characters": dropped.as_details(),
        "truncated": truncated,
        "clipped_samples": {"count": sum(clipped.values()), "utterances": clipped},
    }
    if device is not None:
        details["device_layout"] = device.describe(len(items))
    return InputSet(path=workdir, sample_ids=tuple(ids), input_names=("spect", "lengths"),
                    references=tuple(references), groups=tuple(groups), details=details, notes=tuple(notes))


def load_samples(utterance: Utterance, *, sample_rate: int, resample: bool) -> Audio:
    """Float32 mono samples at ``sample_rate`` for one utterance, whatever its encoding."""
    if utterance.encoding != RAW_S16BE_16K:
        return read_audio(utterance.audio, resample=resample, sample_rate=sample_rate)
    samples = read_raw_s16be(utterance.audio)
    if sample_rate != RAW_SAMPLE_RATE:
        if not resample:
            raise InputError(f"raw AN4 audio is {RAW_SAMPLE_RATE} Hz but the model expects {sample_rate} Hz "
                             "(set the model's resample option to convert it)", file=utterance.audio)
        import librosa
        samples = librosa.resample(samples, orig_sr=RAW_SAMPLE_RATE, target_sr=sample_rate).astype(np.float32)
    return Audio(samples=samples)


def _check_unique_ids(items: list) -> None:
    seen: dict[str, str] = {}
    for group, utterance in items:
        if utterance.id in seen:
            raise InputError(f"utterance id {utterance.id!r} appears twice (in {seen[utterance.id]!r} and "
                             f"{group!r}); expected unique ids", file=utterance.audio)
        seen[utterance.id] = group


class DeviceLayout:
    """The seed's per-utterance binary inputs for device runners (msame, ais_bench), padded to static length."""

    def __init__(self, folder: Path, static_length: int, bins: int):
        self.folder = folder
        self.static_length = static_length
        self.bins = bins
        (folder / "spect").mkdir(parents=True, exist_ok=True)
        (folder / "sizes").mkdir(parents=True, exist_ok=True)

    def write(self, index: int, spect: np.ndarray, lengths: np.ndarray) -> None:
        padded = np.zeros(spect.shape[:-1] + (self.static_length,), dtype=np.float32)
        padded[..., :spect.shape[-1]] = spect
        number = index + 1
        atomic_write_bytes(self.folder / "spect" / f"data{number}.bin", padded.tobytes())
        atomic_write_bytes(self.folder / "sizes" / f"data{number}.bin", lengths.astype(np.int32).tobytes())

    def describe(self, count: int) -> dict:
        return {
            "folder": DEVICE_FOLDER,  # relative to the InputSet's path
            "spect": "spect/data{number}.bin",
            "sizes": "sizes/data{number}.bin",
            "spect_shape": [1, 1, self.bins, self.static_length],
            "spect_dtype": "float32",
            "sizes_dtype": "int32",
            "count": count,
            "number": "the sample's index in the InputSet plus 1 (data1.bin is sample 0)",
        }
