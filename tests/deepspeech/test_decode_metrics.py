"""Greedy CTC decoding on hand-made probability matrices; WER/CER on hand-computed pairs."""
import numpy as np
import pytest
import torch

from porter_deepspeech.decode import greedy_decode
from porter_deepspeech.labels import V3_LABELS
from porter_deepspeech.metrics import char_errors, corpus_wer_cer, word_errors

LABELS = list(V3_LABELS)


def one_hot_frames(chars: str) -> np.ndarray:
    """One frame per character of `chars`, '_' being the blank; probability 0.9 on that label."""
    probs = np.full((len(chars), len(LABELS)), 0.1 / (len(LABELS) - 1), np.float32)
    for t, ch in enumerate(chars):
        probs[t, LABELS.index(ch)] = 0.9
    return probs


def test_collapses_repeats_and_drops_blanks():
    assert greedy_decode(one_hot_frames("HHE_LL_LLO"), None, LABELS) == ["HELLO"]


def test_blank_between_equal_letters_keeps_both():
    assert greedy_decode(one_hot_frames("A_A"), None, LABELS) == ["AA"]
    assert greedy_decode(one_hot_frames("AAA"), None, LABELS) == ["A"]


def test_space_and_apostrophe():
    assert greedy_decode(one_hot_frames("I'M__ _OK"), None, LABELS) == ["I'M OK"]


def test_batch_respects_each_output_length():
    a = one_hot_frames("GO_ STOP")
    b = one_hot_frames("NO YESSS")
    probs = torch.from_numpy(np.stack([a, b]))
    assert greedy_decode(probs, torch.tensor([8, 2], dtype=torch.int32), LABELS) == ["GO STOP", "NO"]
    assert greedy_decode(probs, [2, 8], LABELS) == ["GO", "NO YES"]


def test_argmax_not_first_max_label():
    probs = np.zeros((2, len(LABELS)), np.float32)
    probs[0, LABELS.index("B")] = 0.6
    probs[0, LABELS.index("A")] = 0.4
    probs[1, 0] = 1.0
    assert greedy_decode(probs, None, LABELS) == ["B"]


def test_wrong_class_count_is_refused():
    with pytest.raises(ValueError):
        greedy_decode(np.zeros((3, 5)), None, LABELS)


def test_word_errors_hand_computed():
    assert word_errors("ONE TWO THREE", "ONE TWO THREE") == 0
    assert word_errors("ONE TWO THREE", "ONE TOO THREE") == 1  # substitution
    assert word_errors("ONE TWO THREE", "ONE THREE") == 1  # deletion
    assert word_errors("ONE TWO", "ONE TWO TWO FOUR") == 2  # insertions
    assert word_errors("R O B", "") == 3


def test_char_errors_ignore_spaces():
    assert char_errors("R O B", "ROB") == 0
    assert char_errors("R O B", "R O P") == 1
    assert char_errors("ENTER", "ENTRE") == 2


def test_corpus_level_ratio_not_mean_of_ratios():
    pairs = [("ONE TWO THREE FOUR", "ONE TWO THREE FOUR"), ("STOP", "GO")]
    wer, cer = corpus_wer_cer(pairs)
    # 1 word error over 5 reference words = 20 %; a mean of per-utterance rates would give 50 %.
    assert wer == pytest.approx(20.0)
    # chars: 0 + lev("STOP", "GO") = 3 over 15 + 4 reference characters.
    assert cer == pytest.approx(100 * 3 / 19)


@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_a_blank_reference_cannot_score_perfectly(blank):
    """V3.0's corpus formula divides by the reference words: blank references would score garbage as 0.00."""
    from porter_deepspeech.metrics import EmptyReference

    with pytest.raises(EmptyReference, match="reference 1"):
        corpus_wer_cer([("YES", "YES"), (blank, "GARBAGE WORDS")])
    with pytest.raises(EmptyReference):
        corpus_wer_cer([(blank, "")])


def test_scoring_refuses_an_input_set_with_a_blank_reference(tmp_path):
    from porter.api import InputError, InputSet, OutputSet, Timing, write_sample
    from porter_deepspeech.scoring import score

    probs = one_hot_frames("Y_ES")[None]
    write_sample(tmp_path / "out", 0, {"probs": probs, "out_lengths": np.array([4], np.int32)})
    write_sample(tmp_path / "out", 1, {"probs": probs, "out_lengths": np.array([4], np.int32)})
    inputs = InputSet(path=tmp_path / "in", sample_ids=("a", "b"), input_names=("spect", "lengths"),
                      references=("YES", "  "), groups=("test", "test"), details={})
    outputs = OutputSet(path=tmp_path / "out", sample_ids=("a", "b"), output_names=("probs", "out_lengths"),
                        timing=Timing(latencies_ms=(1.0, 1.0), wall_seconds=0.002))
    with pytest.raises(InputError, match=r"sample 'b' has the reference '  '; expected at least one word"):
        score(LABELS, ("wer", "cer"), inputs, outputs)
    ok = InputSet(path=tmp_path / "in", sample_ids=("a", "b"), input_names=("spect", "lengths"),
                  references=("YES", "YES"), groups=("test", "test"), details={})
    assert score(LABELS, ("wer", "cer"), ok, outputs).values["wer"] == 0.0
