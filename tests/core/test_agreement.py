"""porter.agreement: the one numeric comparison. NaN, Inf, a missing output, a changed dtype or shape are
problems that no tolerance can pass; only the same infinity on both sides agrees."""
from __future__ import annotations

import math

import numpy as np
import pytest

from porter.agreement import (
    TensorAgreement,
    combine,
    compare_outputs,
    compare_samples,
    compare_tensors,
    first_problem,
    summary,
    worst_difference,
)

REF = np.array([[1.0, -2.0, 4.0]], dtype=np.float32)


def test_close_outputs_give_their_numbers():
    new = REF + np.array([[0.0, 0.5, -1.0]], dtype=np.float32)
    (a,) = compare_outputs({"y": REF}, {"y": new})
    assert a.problem == "" and a.comparable
    assert a.max_abs == pytest.approx(1.0)
    assert a.max_rel == pytest.approx(1.0 / 4.0)  # relative to the reference's largest magnitude
    expected_cos = float(np.dot(REF.ravel(), new.ravel()) / (np.linalg.norm(REF) * np.linalg.norm(new)))
    assert a.cosine == pytest.approx(expected_cos)
    assert worst_difference([a]) == pytest.approx(1.0)


def test_identical_outputs_agree_exactly():
    (a,) = compare_outputs({"y": REF}, {"y": REF.copy()})
    assert (a.max_abs, a.max_rel, a.problem) == (0.0, 0.0, "")
    assert a.cosine == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_where_the_reference_is_finite_is_a_problem(bad):
    new = REF.copy()
    new[0, 1] = bad
    a = compare_tensors("probs", REF, new)
    assert "NaN/Inf where the reference is finite" in a.problem
    assert "index (0, 1)" in a.problem and "1 of 3 values" in a.problem
    assert math.isinf(worst_difference([a]))
    assert not worst_difference([a]) <= 1e30  # no tolerance passes
    assert first_problem([a]).startswith("output 'probs': NaN/Inf")


def test_finite_where_the_reference_is_nan_is_a_problem():
    ref = REF.copy()
    ref[0, 2] = math.nan
    a = compare_tensors("y", ref, REF)
    assert "finite where the reference is NaN/Inf" in a.problem
    assert math.isinf(worst_difference([a]))


def test_the_same_nan_on_both_sides_is_a_problem_but_the_same_infinity_agrees():
    # the documented choice: NaN is never agreement, even where the reference has NaN too (an all-NaN
    # checkpoint gives NaN on both sides); the same infinity at the same place (a masked logit) reproduces it
    ref = np.array([math.nan, 1.0, 2.0], dtype=np.float32)
    both_nan = compare_tensors("y", ref, ref.copy())
    assert "NaN in the reference and the new outputs alike" in both_nan.problem
    assert "index (0,)" in both_nan.problem
    assert math.isinf(worst_difference([both_nan]))
    ref = np.array([-math.inf, 1.0, math.inf, 2.0], dtype=np.float32)
    new = np.array([-math.inf, 1.5, math.inf, 2.0], dtype=np.float32)
    a = compare_tensors("y", ref, new)
    assert a.problem == "" and a.shared_nonfinite == 2
    assert a.max_abs == pytest.approx(0.5)
    assert worst_difference([a]) == pytest.approx(0.5)


def test_opposite_infinities_do_not_agree():
    ref = np.array([math.inf, 1.0])
    new = np.array([-math.inf, 1.0])
    assert "different non-finite value" in compare_tensors("y", ref, new).problem


def test_missing_output_and_extra_output_are_problems():
    agreements = compare_outputs({"probs": REF, "lengths": np.array([3])}, {"probs": REF, "extra": REF})
    by_name = {a.name: a for a in agreements}
    assert list(by_name) == ["probs", "lengths", "extra"]  # every name on either side
    assert by_name["probs"].problem == ""
    assert by_name["lengths"].problem == "missing from the new outputs"
    assert by_name["extra"].problem == "not among the reference's outputs"
    assert math.isinf(worst_difference(agreements))
    assert first_problem(agreements) == "output 'lengths': missing from the new outputs"


def test_changed_dtype_is_a_problem():
    a = compare_tensors("y", REF, REF.astype(np.float16))
    assert a.problem == "dtype float32 vs float16"
    assert math.isinf(worst_difference([a]))


def test_changed_shape_is_a_problem():
    a = compare_tensors("y", np.zeros((1, 2)), np.zeros((1, 3)))
    assert a.problem == "shape (1, 2) vs (1, 3)"
    # broadcasting would have made these comparable; it is refused too
    assert compare_tensors("y", np.zeros((1, 3)), np.zeros((3,))).problem == "shape (1, 3) vs (3,)"


def test_empty_and_all_zero_tensors():
    assert compare_tensors("y", np.zeros((0, 3)), np.zeros((0, 3))) == TensorAgreement("y", 0.0, 0.0, 1.0)
    zero = compare_tensors("y", np.zeros(3), np.zeros(3))
    assert (zero.max_abs, zero.max_rel, zero.cosine) == (0.0, 0.0, 1.0)
    only_ref_zero = compare_tensors("y", np.zeros(3), np.ones(3))
    assert only_ref_zero.max_rel == math.inf and only_ref_zero.cosine == 0.0 and only_ref_zero.problem == ""


def test_integer_outputs_compare_by_value():
    a = compare_tensors("lengths", np.array([5, 7], np.int32), np.array([5, 9], np.int32))
    assert a.max_abs == 2.0 and a.problem == ""


def test_samples_merge_to_the_worst_and_name_the_sample():
    refs = [{"y": REF}, {"y": REF}, {"y": REF}]
    shifted = REF + np.float32(0.25)
    nan = REF.copy()
    nan[0, 0] = math.nan
    (a,) = compare_samples(refs, [{"y": REF}, {"y": shifted}, {"y": REF}])
    assert a.max_abs == pytest.approx(0.25) and a.problem == ""
    (b,) = compare_samples(refs, [{"y": REF}, {"y": shifted}, {"y": nan}])
    assert "NaN/Inf where the reference is finite" in b.problem and "(sample 2)" in b.problem
    assert math.isinf(worst_difference([b]))
    assert "2 samples of outputs vs 3" in compare_samples(refs, refs[:2])[0].problem


def test_combine_keeps_the_first_problem_and_the_worst_numbers():
    good = TensorAgreement("y", 0.1, 0.01, 0.99)
    worse = TensorAgreement("y", 0.3, 0.02, 0.95)
    bad = compare_tensors("y", REF, REF.astype(np.float16))
    assert combine(good, worse) == TensorAgreement("y", 0.3, 0.02, 0.95)
    assert combine(good, bad) is bad and combine(bad, good) is bad


def test_worst_difference_of_nothing_is_zero_and_summary_names_the_worst_output():
    assert worst_difference([]) == 0.0
    agreements = (TensorAgreement("a", 0.1, 0.1, 1.0), TensorAgreement("b", 0.4, 0.2, 0.9))
    assert summary(agreements).startswith("output 'b': max abs 0.4")


def test_parity_check_fails_on_a_problem_and_on_nan():
    from porter.artifacts import ParityCheck

    assert ParityCheck("x", 0.0, 1e-5, 1).passed
    assert not ParityCheck("x", math.nan, 1e-5, 1).passed
    problem = ParityCheck("export", 0.0, 1.0, 1, problem="output 'probs': missing from the new outputs")
    assert not problem.passed
    assert problem.failure() == "export: output 'probs': missing from the new outputs"
