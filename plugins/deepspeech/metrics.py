"""WER and CER with deepspeech.pytorch V3.0's formulas (corpus level: 100 * total edits / total reference units)."""
from __future__ import annotations

import Levenshtein


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level edit distance: each distinct word becomes one character, then Levenshtein."""
    ref_words, hyp_words = reference.split(), hypothesis.split()
    vocabulary = {w: chr(i) for i, w in enumerate(dict.fromkeys(hyp_words + ref_words))}
    return Levenshtein.distance("".join(vocabulary[w] for w in ref_words),
                                "".join(vocabulary[w] for w in hyp_words))


def char_errors(reference: str, hypothesis: str) -> int:
    """Character edit distance with spaces removed from both strings."""
    return Levenshtein.distance(reference.replace(" ", ""), hypothesis.replace(" ", ""))


class EmptyReference(ValueError):
    """A reference with no words: the corpus ratios would count its hypothesis's errors against nothing."""


def corpus_wer_cer(pairs) -> tuple[float, float]:
    """pairs of (reference, hypothesis) -> (WER %, CER %) as V3.0's validation.py accumulates them.

    A pair whose reference has no words raises EmptyReference: with V3.0's formula a corpus of blank references
    scores 0.00 whatever the hypotheses are."""
    word_edits = char_edits = ref_words = ref_chars = 0
    for index, (reference, hypothesis) in enumerate(pairs):
        if not reference.split():
            raise EmptyReference(f"reference {index} is {reference!r}; expected at least one word")
        word_edits += word_errors(reference, hypothesis)
        char_edits += char_errors(reference, hypothesis)
        ref_words += len(reference.split())
        ref_chars += len(reference.replace(" ", ""))
    wer = 100.0 * word_edits / ref_words if ref_words else 0.0
    cer = 100.0 * char_edits / ref_chars if ref_chars else 0.0
    return wer, cer
