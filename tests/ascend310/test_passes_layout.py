"""Axis tracking (layout.py), cancel_transposes and drop_full_length_sequence_lens."""
from __future__ import annotations

import lstm_models as lm
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from porter.errors import InputError
from porter_ascend310.passes.layout import Atom, Size, regroup
from porter_ascend310.passes.rnn_split import split_bidirectional_lstm
from porter_ascend310.passes.sequence_lens import drop_full_length_sequence_lens
from porter_ascend310.passes.transposes import cancel_transposes


def _copy(model):
    return onnx.ModelProto.FromString(model.SerializeToString())


# ---------------------------------------------------------------------------------------------------------
# Sizes and regrouping
# ---------------------------------------------------------------------------------------------------------


def test_symbolic_sizes_multiply_and_parse_products():
    merged = Size.of("batch*(floor(time/2 - 1/2) + 1)")
    assert merged == Size.of("floor(time/2 - 1/2) + 1") * Size.of("batch")
    assert Size.of("2*T") == Size(2) * Size.of("T")
    assert Size.of("T + 1") != Size.of("T") * Size(1)  # a sum is an opaque symbol, not T
    assert Size.of("T").divides(Size.of("B*T")) and not Size.of("T").divides(Size.of("B"))


def test_regroup_follows_row_major_reshapes_and_refuses_splitting_an_axis():
    t, b, d, h = (Atom(n, s) for n, s in (("T", Size.of("T")), ("B", Size.of("B")), ("D", Size(2)),
                                           ("H", Size(20))))
    layout = ((t,), (b,), (d,), (h,))
    merged = regroup(layout, [Size.of("T"), Size.of("B"), Size(40)])
    assert merged == ((t,), (b,), (d, h))
    assert regroup(merged, [Size.of("T"), Size.of("B"), Size(2), Size(20)]) == layout
    assert regroup(layout, [Size.of("B*T"), Size(40)]) == ((t, b), (d, h))
    assert regroup(layout, [Size.of("T"), Size.of("B"), Size(4), Size(10)]) is None  # would split H
    assert regroup(layout, [Size.of("B"), Size.of("T"), Size(40)]) is None  # a reshape cannot swap axes
    assert regroup(layout, [Size.of("T"), Size(1), Size.of("B"), Size(40)]) == ((t,), (), (b,), (d, h))


# ---------------------------------------------------------------------------------------------------------
# cancel_transposes
# ---------------------------------------------------------------------------------------------------------


def _transpose_chain(perms, final_is_output=True):
    nodes, name = [], "x"
    for i, perm in enumerate(perms):
        out = "y" if i == len(perms) - 1 and final_is_output else f"t{i}"
        nodes.append(helper.make_node("Transpose", [name], [out], perm=perm))
        name = out
    if not final_is_output:
        nodes.append(helper.make_node("Relu", [name], ["y"]))
    graph = helper.make_graph(nodes, "transposes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_transpose_pairs_cancel_and_chains_compose():
    feeds = {"x": np.arange(24, dtype=np.float32).reshape(2, 3, 4)}
    pair = _transpose_chain([[1, 0, 2], [1, 0, 2]], final_is_output=False)
    after = cancel_transposes(_copy(pair))
    assert lm.op_counts(after) == {"Relu": 1} and lm.max_abs_diff(pair, after, feeds) == 0.0
    chain = _transpose_chain([[1, 0, 2], [0, 2, 1], [2, 1, 0]])
    after = cancel_transposes(_copy(chain))
    assert lm.op_counts(after) == {"Transpose": 1} and lm.max_abs_diff(chain, after, feeds) == 0.0


def test_identity_transpose_producing_a_graph_output_is_kept():
    model = _transpose_chain([[1, 0, 2], [1, 0, 2]])
    after = cancel_transposes(_copy(model))
    assert lm.op_counts(after) == {"Transpose": 1}  # composed to the identity but the output name stays
    assert after.graph.node[0].output[0] == "y"
    feeds = {"x": np.arange(24, dtype=np.float32).reshape(2, 3, 4)}
    assert lm.max_abs_diff(model, after, feeds) == 0.0


def test_batch_first_wrappers_from_split_cancel_with_the_export_transposes():
    before = lm.layout1_lstm_model(with_lengths=False, with_states=False)
    wrapper = helper.make_node("Transpose", ["x_tbc"], ["x"], perm=[1, 0, 2])  # a time-major model input
    before.graph.node.insert(0, wrapper)
    before.graph.input[0].CopyFrom(helper.make_tensor_value_info("x_tbc", TensorProto.FLOAT, ["T", "B", 6]))
    split = split_bidirectional_lstm(_copy(before))
    after = cancel_transposes(_copy(split))
    assert lm.op_counts(split)["Transpose"] - lm.op_counts(after)["Transpose"] == 2
    feeds = {"x_tbc": np.random.default_rng(0).standard_normal((5, 3, 6)).astype(np.float32)}
    assert lm.max_abs_diff(split, after, feeds) == 0.0


# ---------------------------------------------------------------------------------------------------------
# drop_full_length_sequence_lens
# ---------------------------------------------------------------------------------------------------------


def _static_deepspeech_like(lengths=(9, 9, 9)):
    torch.manual_seed(0)
    model = lm.DeepSpeechLike(use_lengths=True)
    lm.randomize_batchnorms(model)
    return lm.export(model, (torch.randn(9, 3, 12), torch.tensor(lengths, dtype=torch.int32)),
                     ["features", "lengths"], ["probs"], None)


def test_asserted_full_lengths_are_dropped_and_reversals_become_flips():
    before = split_bidirectional_lstm(_static_deepspeech_like())
    after = drop_full_length_sequence_lens(_copy(before), full_length_inputs={"lengths": "features:0"})
    assert all(len(n.input) <= 4 or not n.input[4] for n in after.graph.node if n.op_type == "LSTM")
    assert "ReverseSequence" not in lm.op_counts(after) and "Cast" not in lm.op_counts(after)
    full = lm.time_major_feeds(time_steps=9, lengths=(9, 9, 9))
    assert lm.max_abs_diff(before, after, full) < 1e-6
    # negative control: the assertion matters; a padded batch now differs
    padded = lm.time_major_feeds(time_steps=9, lengths=(9, 5, 3))
    assert lm.max_abs_diff(before, after, padded) > 1e-3


def test_lengths_are_kept_without_an_assertion_or_with_dynamic_shapes():
    static = _static_deepspeech_like()
    assert lm.op_counts(drop_full_length_sequence_lens(_copy(static))) == lm.op_counts(static)
    dynamic = lm.export_deepspeech_like(use_lengths=True)
    after = drop_full_length_sequence_lens(_copy(dynamic), full_length_inputs={"lengths": "features:0"})
    assert lm.op_counts(after) == lm.op_counts(dynamic)


def test_lengths_asserted_against_the_wrong_axis_are_not_dropped():
    static = _static_deepspeech_like()
    after = drop_full_length_sequence_lens(_copy(static), full_length_inputs={"lengths": "features:2"})  # 12 ≠ 9
    assert lm.op_counts(after) == lm.op_counts(static)


def _constant_lengths_model(lengths):
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "", "lens"], ["y"], hidden_size=4)]
    initializers = [numpy_helper.from_array(rng.standard_normal((1, 16, 3)).astype(np.float32), "W"),
                    numpy_helper.from_array(rng.standard_normal((1, 16, 4)).astype(np.float32), "R"),
                    numpy_helper.from_array(np.array(lengths, np.int32), "lens")]
    graph = helper.make_graph(nodes, "const_lens", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 2, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_constant_lengths_equal_to_the_static_time_length_are_dropped():
    feeds = {"x": np.random.default_rng(0).standard_normal((5, 2, 3)).astype(np.float32)}
    full = _constant_lengths_model([5, 5])
    after = drop_full_length_sequence_lens(_copy(full))
    assert list(after.graph.node[0].input)[4:] in ([], [""]) and lm.max_abs_diff(full, after, feeds) == 0.0
    short = _constant_lengths_model([5, 3])
    assert drop_full_length_sequence_lens(_copy(short)).graph.node[0].input[4] == "lens"


def test_bad_assertions_are_input_errors_naming_the_option():
    static = _static_deepspeech_like()
    with pytest.raises(InputError, match="full_length_inputs.*'nope' is not a graph input"):
        drop_full_length_sequence_lens(_copy(static), full_length_inputs={"nope": "features:0"})
    with pytest.raises(InputError, match="'input:axis'"):
        drop_full_length_sequence_lens(_copy(static), full_length_inputs={"lengths": "features"})
