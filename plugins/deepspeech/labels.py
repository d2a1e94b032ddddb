"""The character set of deepspeech.pytorch V3's labels.json: CTC blank first, then apostrophe, A-Z, space."""
from __future__ import annotations

import json
from pathlib import Path

LABELS_PATH = Path(__file__).with_name("labels.json")

BLANK = "_"
BLANK_INDEX = 0


def default_labels() -> list[str]:
    """The 29 V3 labels, read from the shipped labels.json."""
    return list(json.loads(LABELS_PATH.read_text(encoding="utf-8")))


V3_LABELS: tuple[str, ...] = tuple(default_labels())


def text_to_targets(text: str, labels: list[str] | tuple[str, ...]) -> list[int]:
    """Label indices of a transcript; like the reference, unknown characters and the blank are dropped."""
    index = {ch: i for i, ch in enumerate(labels)}
    return [index[ch] for ch in text if index.get(ch)]
