"""Read AN4 in the forms users have it, as a list of utterances.

Three forms are accepted, all yielding the same :class:`Utterance` records:

- the V3 JSON manifest ``{"root_path": DIR, "samples": [{"wav_path": ..., "transcript_path": ...}]}``
  written by deepspeech.pytorch's ``data/an4.py``;
- the older CSV manifest, one ``wav,txt`` pair per line;
- the original CMU tree: ``an4/wav/**/<id>.raw`` (headerless 16-bit big-endian, 16 kHz mono) with
  ``an4/etc/an4_{train,test}.fileids`` and ``.transcription`` — read directly, no sox conversion.

Transcripts from manifests are taken as the files hold them (newlines removed); transcripts from the CMU
tree are cleaned as the reference's converter does before it writes them out. Characters the model cannot emit
are dropped later, by :func:`filter_transcript`, as the reference does when it builds targets.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from porter.api import InputError

WAV = "wav"
# The CMU distribution's audio: headerless signed 16-bit big-endian PCM, 16 kHz, mono.
RAW_S16BE_16K = "raw-s16be-16k"
RAW_SAMPLE_RATE = 16000

AN4_SPLITS = ("train", "test")
# Where each split's audio lives inside an4/wav (the fileids are relative to an4/wav).
_AN4_TREE_FILES = {split: (f"an4_{split}.fileids", f"an4_{split}.transcription") for split in AN4_SPLITS}


@dataclass(frozen=True)
class Utterance:
    """One recorded utterance: where its audio is, how it is encoded, and what is said."""

    id: str
    audio: Path
    transcript: str
    encoding: str = WAV
    transcript_file: Path | None = None  # where the transcript was read, for messages about it
    transcript_field: str | None = None  # the line of a file holding many transcripts


@dataclass(frozen=True)
class FilteredTranscript:
    """A transcript reduced to the characters the model's labels can express."""

    text: str
    dropped: str  # the dropped characters, in order of appearance (with repeats)


# ---------------------------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------------------------


def read_manifest(path: Path) -> list[Utterance]:
    """Read a V3 JSON manifest or a CSV manifest: JSON when the name ends in .json or the text opens a JSON
    object or array, CSV otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError("manifest not found (expected a JSON or CSV AN4 manifest)", file=path)
    text = read_utf8(path, what="manifest")
    if path.suffix.lower() == ".json" or text.lstrip().startswith(("{", "[")):
        utterances = _read_json_manifest(path, text)
    else:
        utterances = _read_csv_manifest(path, text)
    if not utterances:
        raise InputError("manifest lists no utterances (expected at least one wav/transcript pair)", file=path)
    return utterances


def _read_json_manifest(path: Path, text: str) -> list[Utterance]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"not valid JSON ({error}); expected a V3 manifest with root_path and samples",
                         file=path) from None
    if not isinstance(document, dict):
        raise InputError(f"top level is {type(document).__name__}; expected an object with root_path and samples",
                         file=path)
    root = document.get("root_path")
    if not isinstance(root, str) or not root:
        raise InputError(f"root_path is {root!r}; expected the folder the sample paths are relative to",
                         file=path, field="root_path")
    samples = document.get("samples")
    if not isinstance(samples, list):
        raise InputError(f"samples is {type(samples).__name__}; expected a list of "
                         "{wav_path, transcript_path} objects", file=path, field="samples")
    # A relative root_path is taken relative to the manifest, so a moved dataset folder keeps working.
    root_dir = Path(root) if Path(root).is_absolute() else path.parent / root
    utterances = []
    for index, sample in enumerate(samples):
        where = f"samples[{index}]"
        if not isinstance(sample, dict):
            raise InputError(f"is {type(sample).__name__}; expected an object with wav_path and transcript_path",
                             file=path, field=where)
        pair = []
        for key in ("wav_path", "transcript_path"):
            value = sample.get(key)
            if not isinstance(value, str) or not value:
                raise InputError(f"is {value!r}; expected a path relative to root_path {root!r}",
                                 file=path, field=f"{where}.{key}")
            pair.append(root_dir / value)
        utterances.append(_utterance_from_pair(pair[0], pair[1], manifest=path, where=where))
    return utterances


def _read_csv_manifest(path: Path, text: str) -> list[Utterance]:
    utterances = []
    for line_number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise InputError(f"has {len(row)} fields {row!r}; expected 'wav_path,transcript_path'",
                             file=path, field=f"line {line_number}")
        wav, txt = (_relative_to(path.parent, cell.strip()) for cell in row)
        utterances.append(_utterance_from_pair(wav, txt, manifest=path, where=f"line {line_number}"))
    return utterances


def _relative_to(folder: Path, value: str) -> Path:
    candidate = Path(value)
    return candidate if candidate.is_absolute() else folder / candidate


def _utterance_from_pair(wav: Path, txt: Path, *, manifest: Path, where: str) -> Utterance:
    for path, what, expected in ((wav, "audio file", "a 16 kHz wav"), (txt, "transcript file", "a UTF-8 text file")):
        if path.is_dir():
            raise InputError(f"{what} {path} is a folder; expected {expected}", file=manifest, field=where)
        if not path.is_file():
            raise InputError(f"{what} {path} does not exist (expected {expected})", file=manifest, field=where)
    # The reference reads the file and removes newlines; nothing else is changed.
    transcript = read_utf8(txt, what="transcript").replace("\n", "")
    refuse_empty_transcript(transcript, txt)
    return Utterance(id=wav.stem, audio=wav, transcript=transcript, encoding=WAV, transcript_file=txt)


def refuse_empty_transcript(transcript: str, file: Path, field: str | None = None) -> None:
    """An utterance with no reference words cannot be scored: WER and CER divide by the reference's words and
    characters, so blank references would let any hypothesis score 0.00."""
    if not transcript.split():
        shown = "empty" if not transcript else f"only whitespace ({transcript!r})"
        raise InputError(f"transcript is {shown}; expected the words spoken (an utterance without a reference "
                         "cannot be scored)", file=file, field=field)


def read_utf8(path: Path, *, what: str) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{what} is not UTF-8 text (byte {error.object[error.start]:#04x} at offset "
                         f"{error.start}); expected UTF-8", file=path) from None


# ---------------------------------------------------------------------------------------------------------
# The original CMU AN4 tree
# ---------------------------------------------------------------------------------------------------------


def find_an4_tree(root: Path) -> Path:
    """Return the ``an4`` folder (holding ``wav/`` and ``etc/``) given it or its parent."""
    root = Path(root)
    for candidate in (root, root / "an4"):
        if (candidate / "etc").is_dir() and (candidate / "wav").is_dir():
            return candidate
    raise InputError("not an AN4 tree (expected a folder holding wav/ and etc/, or one holding an4/)", file=root)


def read_an4_tree(root: Path, split: str) -> list[Utterance]:
    """Read one split of the original AN4 distribution: fileids and transcription paired line by line."""
    if split not in AN4_SPLITS:
        raise InputError(f"split {split!r} is not in the AN4 tree; expected one of {list(AN4_SPLITS)}",
                         field="split")
    tree = find_an4_tree(root)
    ids_name, transcription_name = _AN4_TREE_FILES[split]
    ids_path, transcription_path = tree / "etc" / ids_name, tree / "etc" / transcription_name
    for required in (ids_path, transcription_path):
        if not required.is_file():
            raise InputError(f"missing (expected the AN4 {split} split's {required.suffix[1:]} file)", file=required)
    file_ids = [line.strip() for line in read_utf8(ids_path, what="fileids").splitlines() if line.strip()]
    lines = [line for line in read_utf8(transcription_path, what="transcription").splitlines() if line.strip()]
    if len(file_ids) != len(lines):
        raise InputError(f"has {len(lines)} transcripts but {ids_path.name} lists {len(file_ids)} ids; "
                         "expected one transcript per id, in the same order", file=transcription_path)
    utterances = []
    for line_number, (file_id, line) in enumerate(zip(file_ids, lines), start=1):
        stated_id = _transcription_id(line)
        basename = file_id.rsplit("/", 1)[-1]
        if stated_id is not None and stated_id != basename:
            raise InputError(f"names utterance {stated_id!r} but line {line_number} of {ids_path.name} is "
                             f"{file_id!r}; expected the same utterance on both lines",
                             file=transcription_path, field=f"line {line_number}")
        audio = tree / "wav" / f"{file_id}.raw"
        if not audio.is_file():
            raise InputError(f"lists {file_id!r} but {audio} does not exist (expected a big-endian 16-bit raw file)",
                             file=ids_path, field=f"line {line_number}")
        transcript = clean_an4_transcript(line)
        refuse_empty_transcript(transcript, transcription_path, f"line {line_number}")
        utterances.append(Utterance(id=basename, audio=audio, transcript=transcript, encoding=RAW_S16BE_16K,
                                    transcript_file=transcription_path, transcript_field=f"line {line_number}"))
    if not utterances:
        raise InputError(f"lists no utterances (expected the AN4 {split} split's ids)", file=ids_path)
    return utterances


def _transcription_id(line: str) -> str | None:
    opening = line.rfind("(")
    closing = line.rfind(")")
    if opening == -1 or closing < opening:
        return None
    return line[opening + 1:closing].strip() or None


def clean_an4_transcript(line: str) -> str:
    """Clean one line of an AN4 ``.transcription`` file the way the reference's converter does.

    The reference cuts at the first ``(`` (the utterance id), strips the characters ``<``, ``s`` and ``>`` from
    both ends (so a leading ``<s>`` goes), cuts at the next ``<`` (the ``</s>``), trims and upper-cases.
    """
    text = line.split("(", 1)[0]
    text = text.strip("<s>")
    text = text.split("<", 1)[0]
    return text.strip().upper()


def read_raw_s16be(path: Path) -> np.ndarray:
    """Samples of a headerless big-endian 16-bit mono file as float32 in [-1, 1), scaled by 1/32768 as V3.0."""
    data = Path(path).read_bytes()
    if len(data) % 2:
        raise InputError(f"has {len(data)} bytes, an odd count; expected 16-bit samples (2 bytes each)", file=path)
    if not data:
        raise InputError("is empty; expected 16-bit big-endian audio samples", file=path)
    return (np.frombuffer(data, dtype=">i2").astype(np.float32) / np.float32(32768.0))


# ---------------------------------------------------------------------------------------------------------
# Transcripts against the model's labels
# ---------------------------------------------------------------------------------------------------------


def filter_transcript(transcript: str, labels: Sequence[str]) -> FilteredTranscript:
    """Keep the characters the labels can express, as the reference's target builder does.

    The reference maps each character to its label index and drops those that have none *and* those mapping
    to index 0 (the CTC blank), so a ``_`` in a transcript is dropped as well.
    """
    index = {label: i for i, label in enumerate(labels)}
    kept: list[str] = []
    dropped: list[str] = []
    for char in transcript:
        (kept if index.get(char, 0) != 0 else dropped).append(char)
    return FilteredTranscript(text="".join(kept), dropped="".join(dropped))


@dataclass(frozen=True)
class DroppedCharacters:
    """What :func:`filter_transcript` removed across a dataset, for the InputSet details."""

    count: int
    utterances: int
    characters: dict  # character -> how often it was dropped

    @classmethod
    def tally(cls, filtered: Iterable[FilteredTranscript]) -> "DroppedCharacters":
        counter: Counter = Counter()
        utterances = 0
        for item in filtered:
            if item.dropped:
                utterances += 1
                counter.update(item.dropped)
        return cls(count=sum(counter.values()), utterances=utterances, characters=dict(counter.most_common()))

    def as_details(self) -> dict:
        return {"count": self.count, "utterances": self.utterances, "characters": self.characters}
