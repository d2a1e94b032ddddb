"""Greedy CTC decoding as V3's GreedyDecoder: argmax, collapse repeats, drop blanks, within each output length."""
from __future__ import annotations

import numpy as np


def greedy_decode(probs, lengths=None, labels=None, *, blank_index: int = 0) -> list[str]:
    """probs [T, C] or [B, T, C] (torch or numpy); lengths [B] valid frames (default: all)."""
    if labels is None:
        raise ValueError("greedy_decode needs the label list")
    arr = probs.detach().cpu().numpy() if hasattr(probs, "detach") else np.asarray(probs)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[2] != len(labels):
        raise ValueError(f"probs shape {arr.shape}: expected [T, {len(labels)}] or [B, T, {len(labels)}]")
    if lengths is None:
        lens = [arr.shape[1]] * arr.shape[0]
    else:
        lens = np.asarray(lengths.detach().cpu() if hasattr(lengths, "detach") else lengths).reshape(-1).tolist()
    best = arr.argmax(axis=2)
    texts = []
    for row, length in zip(best, lens):
        chars = []
        previous = None
        for index in row[: int(length)]:
            index = int(index)
            if index != previous and index != blank_index:
                chars.append(labels[index])
            previous = index
        texts.append("".join(chars))
    return texts
