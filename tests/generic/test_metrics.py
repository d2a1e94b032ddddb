"""Output-agreement metrics on hand-made outputs: every number checked against one worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from porter.agreement import min_relative_tolerance, top1_matches
from porter.artifacts import InputSet, OutputSet, Timing, write_sample
from porter.builtin.generic.agreement_metrics import score, with_batch_axis


def _outputs(root, samples, names=None):
    for index, arrays in enumerate(samples):
        write_sample(root, index, arrays)
    ids = tuple(f"s{i}" for i in range(len(samples)))
    return OutputSet(root, ids, tuple(names or samples[0]), Timing((), 0.0))


def _inputs(root, count):
    return InputSet(root, tuple(f"s{i}" for i in range(count)), ("x",), ())


def test_min_relative_tolerance_is_the_largest_elementwise_ratio():
    ref = np.array([1.0, -2.0, 4.0], np.float32)
    new = np.array([1.1, -2.0, 3.0], np.float32)
    # |0.1|/1, 0/2, |1|/4 -> 0.25
    assert min_relative_tolerance(ref, new) == pytest.approx(0.25, rel=1e-6)
    assert min_relative_tolerance(ref, ref) == 0.0
    # a zero reference element that moved cannot pass any relative tolerance
    assert min_relative_tolerance(np.array([0.0, 1.0]), np.array([1e-9, 1.0])) == math.inf
    assert min_relative_tolerance(np.array([1.0, np.nan]), np.array([1.0, 1.0])) == math.inf


def test_top1_counts_positions_whose_argmax_agrees():
    ref = np.array([[[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]], np.float32)  # [1, T=3, C=2]
    new = np.array([[[0.2, 0.8], [0.4, 0.6], [0.1, 0.9]]], np.float32)  # the middle frame flips
    assert top1_matches(ref, new) == (2, 3)
    assert top1_matches(np.array([1, 2]), np.array([1, 2])) is None  # integers are not scores
    assert top1_matches(np.ones((1, 1), np.float32), np.ones((1, 1), np.float32)) is None  # one score: no class
    nan = new.copy()
    nan[0, 0, 0] = np.nan
    assert top1_matches(ref, nan) == (1, 3)


def test_score_reports_each_output_and_the_worst(tmp_path):
    ref_logits = [np.array([[2.0, 1.0, 0.0]], np.float32), np.array([[0.0, 3.0, 1.0]], np.float32)]
    new_logits = [np.array([[2.0, 1.5, 0.0]], np.float32), np.array([[0.0, 1.0, 2.0]], np.float32)]
    ref_feat = [np.array([[1.0, 2.0]], np.float32), np.array([[4.0, 4.0]], np.float32)]
    new_feat = [np.array([[1.0, 2.1]], np.float32), np.array([[4.0, 4.0]], np.float32)]
    reference = _outputs(tmp_path / "ref", [{"logits": a, "feat": b} for a, b in zip(ref_logits, ref_feat)])
    outputs = _outputs(tmp_path / "new", [{"logits": a, "feat": b} for a, b in zip(new_logits, new_feat)])
    metrics = score(("max_abs_error", "max_rel_error", "cosine", "top1_agreement", "min_rtol"),
                    _inputs(tmp_path / "in", 2), outputs, reference)
    v = metrics.values
    assert v["max_abs_error/logits"] == pytest.approx(2.0)  # sample 1: 3.0 -> 1.0
    assert v["max_abs_error/feat"] == pytest.approx(0.1, rel=1e-5)
    assert v["max_abs_error"] == pytest.approx(2.0)
    assert v["max_rel_error/logits"] == pytest.approx(2.0 / 3.0)  # the worst sample's, by its largest |ref|
    cos1 = float(np.dot([0, 3, 1], [0, 1, 2]) / (np.linalg.norm([0, 3, 1]) * np.linalg.norm([0, 1, 2])))
    assert v["cosine/logits"] == pytest.approx(cos1, rel=1e-6)
    assert v["cosine"] == pytest.approx(cos1, rel=1e-6)  # the worst output
    assert v["top1_agreement/logits"] == 50.0  # sample 0 agrees, sample 1 flips 1 -> 2
    assert v["min_rtol/logits"] == pytest.approx(1.0)  # sample 1: 1.0 -> 2.0
    assert v["min_rtol/feat"] == pytest.approx(0.05, rel=1e-5)
    assert [s.id for s in metrics.samples] == ["s0", "s1"]
    assert metrics.samples[1].errors["max_abs_error"] == pytest.approx(2.0)


def test_score_marks_a_shape_change_and_a_missing_output_as_failures(tmp_path):
    reference = _outputs(tmp_path / "ref", [{"a": np.zeros((1, 3), np.float32), "b": np.ones((1, 2), np.float32)}])
    outputs = _outputs(tmp_path / "new", [{"a": np.zeros((1, 4), np.float32)}])
    v = score(("max_abs_error", "cosine", "top1_agreement"), _inputs(tmp_path / "in", 1), outputs, reference).values
    assert v["max_abs_error/a"] == math.inf and v["max_abs_error/b"] == math.inf
    assert v["cosine"] == 0.0
    assert v["top1_agreement/a"] == 0.0  # no comparable top class counts as a disagreement


def test_only_the_asked_metrics_and_none_for_non_classifiers(tmp_path):
    reference = _outputs(tmp_path / "ref", [{"count": np.array([[3]], np.int64)}])
    outputs = _outputs(tmp_path / "new", [{"count": np.array([[3]], np.int64)}])
    v = score(("max_abs_error", "top1_agreement"), _inputs(tmp_path / "in", 1), outputs, reference).values
    assert v == {"max_abs_error": 0.0, "max_abs_error/count": 0.0}


def test_a_reference_without_its_batch_axis_is_aligned():
    ref = {"y": np.arange(3.0), "z": np.arange(4.0).reshape(2, 2)}
    new = {"y": np.arange(3.0)[None], "z": np.zeros((2, 2))}
    aligned = with_batch_axis(ref, new)
    assert aligned["y"].shape == (1, 3) and aligned["z"].shape == (2, 2)
