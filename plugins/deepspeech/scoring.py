"""Outputs → transcripts → WER/CER, overall and per group, with each utterance's own errors."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from porter.api import InputError, InputSet, Metrics, OutputSet, SampleScore

from .decode import greedy_decode
from .metrics import char_errors, corpus_wer_cer, word_errors

METRICS = ("wer", "cer")


def score(labels: Sequence[str], metric_names: Sequence[str], inputs: InputSet, outputs: OutputSet) -> Metrics:
    """Greedy-decode every output within its out_lengths and score it against the input's reference."""
    if len(outputs) != len(inputs):
        raise InputError(f"the output set has {len(outputs)} samples but the input set {len(inputs)}; expected one "
                         "output per input", field="outputs")
    wanted = [m for m in (metric_names or METRICS) if m in METRICS] or list(METRICS)
    for sample_id, reference in zip(inputs.sample_ids, inputs.references):
        if not str(reference).split():
            raise InputError(f"sample {sample_id!r} has the reference {str(reference)!r}; expected at least one word "
                             "(a blank reference would score any hypothesis as perfect)", file=inputs.path,
                             field="references")
    hypotheses = [transcribe(outputs, index, labels) for index in range(len(outputs))]
    references = [str(r) for r in inputs.references]

    values: dict[str, float] = {}
    _put(values, wanted, "", corpus_wer_cer(zip(references, hypotheses)))
    groups = list(inputs.groups)
    if len(groups) == len(references):
        for group in dict.fromkeys(groups):
            members = [i for i, g in enumerate(groups) if g == group]
            _put(values, wanted, f"/{group}", corpus_wer_cer((references[i], hypotheses[i]) for i in members))

    samples = tuple(
        SampleScore(id=sample_id, reference=reference, hypothesis=hypothesis,
                    errors={"wer": utterance_rate(word_errors(reference, hypothesis), len(reference.split())),
                            "cer": utterance_rate(char_errors(reference, hypothesis),
                                                  len(reference.replace(" ", "")))})
        for sample_id, reference, hypothesis in zip(inputs.sample_ids, references, hypotheses))
    return Metrics(values=values, samples=samples)


def transcribe(outputs: OutputSet, index: int, labels: Sequence[str]) -> str:
    """The greedy transcript of one output sample ([1, T', C] probabilities, [1] valid frames)."""
    arrays = outputs.load(index)
    names = list(outputs.output_names) or list(arrays)
    probs_name = "probs" if "probs" in arrays else names[0]
    lengths_name = "out_lengths" if "out_lengths" in arrays else (names[1] if len(names) > 1 else None)
    probs = np.asarray(arrays[probs_name])
    if probs.ndim == 2:
        probs = probs[None]
    if probs.ndim != 3 or probs.shape[0] != 1 or probs.shape[2] != len(labels):
        raise InputError(f"output {probs_name!r} of sample {outputs.sample_ids[index]!r} has shape "
                         f"{tuple(probs.shape)}; expected [1, frames, {len(labels)}]", field="outputs")
    lengths = None
    if lengths_name is not None and lengths_name in arrays:
        lengths = np.asarray(arrays[lengths_name]).reshape(-1)[:1]
        if int(lengths[0]) > probs.shape[1] or int(lengths[0]) < 0:
            raise InputError(f"{lengths_name} of sample {outputs.sample_ids[index]!r} is {int(lengths[0])}; "
                             f"expected 0..{probs.shape[1]} frames", field="outputs")
    return greedy_decode(probs, lengths, list(labels))[0]


def utterance_rate(edits: int, reference_units: int) -> float:
    """One utterance's error rate in percent; an empty reference counts as one unit so insertions still show."""
    return 100.0 * edits / max(reference_units, 1)


def _put(values: dict, wanted: Sequence[str], suffix: str, wer_cer: tuple[float, float]) -> None:
    wer, cer = wer_cer
    if "wer" in wanted:
        values[f"wer{suffix}"] = wer
    if "cer" in wanted:
        values[f"cer{suffix}"] = cer
