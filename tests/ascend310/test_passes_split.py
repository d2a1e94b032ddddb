"""split_bidirectional_lstm and direction_sum_to_add, pass by pass, against the unsplit graphs."""
from __future__ import annotations

import lstm_models as lm
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator
from torch import nn

from porter_ascend310.passes.direction_sum import direction_sum_to_add
from porter_ascend310.passes.rnn_split import split_bidirectional_lstm


def _copy(model):
    return onnx.ModelProto.FromString(model.SerializeToString())


@pytest.mark.parametrize("with_lengths", [True, False])
def test_split_is_exact_on_deepspeech_like(with_lengths):
    before = lm.export_deepspeech_like(use_lengths=with_lengths)
    after = split_bidirectional_lstm(_copy(before))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-6
    counts = lm.op_counts(after)
    assert counts["LSTM"] == 6 and lm.directions(after) == ["forward"] * 6
    # with lengths: one ReverseSequence for the input and one for the output of each backward LSTM
    assert counts.get("ReverseSequence", 0) == (6 if with_lengths else 0)
    lstms = [n for n in after.graph.node if n.op_type == "LSTM"]
    for forward, backward in zip(lstms[::2], lstms[1::2]):  # both halves read the same lengths
        assert forward.input[4] == backward.input[4]
        assert bool(forward.input[4]) == with_lengths


@pytest.mark.parametrize("rnn_type", [nn.GRU, nn.LSTM])
def test_split_batch_first_stacked_with_unsorted_lengths(rnn_type):
    before = lm.export_batch_first(rnn_type=rnn_type, use_lengths=True)
    after = split_bidirectional_lstm(_copy(before))
    assert lm.max_abs_diff(before, after, lm.batch_first_feeds()) < 1e-6
    assert lm.directions(after, rnn_type.__name__) == ["forward"] * 4


def test_forgetting_to_reverse_the_backward_output_is_caught():
    """Negative control: drop the reversal after the backward node and the outputs change."""
    before = lm.export_deepspeech_like(use_lengths=False)
    after = split_bidirectional_lstm(_copy(before))
    flips = [n for n in after.graph.node if n.op_type == "Slice" and "reverse_output" in n.name]
    assert len(flips) == 3
    for flip in flips:
        for node in after.graph.node:
            node.input[:] = [flip.input[0] if name == flip.output[0] else name for name in node.input]
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) > 1e-3


def _layout1_feeds(with_states=True, lengths=(7, 2, 5)):
    rng = np.random.default_rng(3)
    feeds = {"x": rng.standard_normal((3, 7, 6)).astype(np.float32), "lengths": np.array(lengths, np.int32)}
    if with_states:
        feeds["h0"] = rng.standard_normal((3, 2, 10)).astype(np.float32)
        feeds["c0"] = rng.standard_normal((3, 2, 10)).astype(np.float32)
    return feeds


def _as_time_major(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same layout=1 LSTM written by hand as Transposes around a layout=0 node (ONNX Runtime runs only
    layout 0): an independent statement of what layout=1 means, to compare padded batches against."""
    model = _copy(model)
    lstm = next(n for n in model.graph.node if n.op_type == "LSTM")
    nodes = [helper.make_node("Transpose", ["x"], ["x_tm"], perm=[1, 0, 2])]
    inputs = list(lstm.input)
    inputs[0] = "x_tm"
    for slot, name in ((5, "h0"), (6, "c0")):
        if len(inputs) > slot and inputs[slot]:
            nodes.append(helper.make_node("Transpose", [name], [name + "_tm"], perm=[1, 0, 2]))
            inputs[slot] = name + "_tm"
    nodes.append(helper.make_node("LSTM", inputs, ["y_tm", "yh_tm", "yc_tm"], direction="bidirectional",
                                  hidden_size=10))
    nodes += [helper.make_node("Transpose", ["y_tm"], ["y"], perm=[2, 0, 1, 3]),
              helper.make_node("Transpose", ["yh_tm"], ["y_h"], perm=[1, 0, 2]),
              helper.make_node("Transpose", ["yc_tm"], ["y_c"], perm=[1, 0, 2])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


@pytest.mark.parametrize("with_lengths", [True, False])
def test_split_converts_batch_first_layout_and_keeps_final_states(with_lengths):
    before = lm.layout1_lstm_model(with_lengths=with_lengths)
    after = split_bidirectional_lstm(_copy(before))
    lstms = [n for n in after.graph.node if n.op_type == "LSTM"]
    assert len(lstms) == 2 and all(a.name != "layout" for n in lstms for a in n.attribute)
    feeds = _layout1_feeds()
    if not with_lengths:  # onnx's reference evaluator runs layout=1 itself (it ignores sequence_lens)
        expected = ReferenceEvaluator(before).run(None, {k: v for k, v in feeds.items() if k != "lengths"})
        actual = lm.run(after, feeds)
        assert max(float(np.max(np.abs(e - a))) for e, a in zip(expected, actual)) < 1e-5
    else:
        assert lm.max_abs_diff(_as_time_major(before), after, feeds) < 1e-6
        # Y past each length is zero, and Y_h/Y_c are the states at each sequence's own end
        y = lm.run(after, feeds)[0]
        assert np.all(y[1, 2:] == 0) and np.any(y[1, :2] != 0)


def _single_direction_model(direction: str, op_type: str = "GRU", hidden=8, inputs=5, seed=4):
    rng = np.random.default_rng(seed)
    gates = {"GRU": 3, "LSTM": 4, "RNN": 1}[op_type]
    weights = [numpy_helper.from_array(rng.standard_normal((1, gates * hidden, inputs)).astype(np.float32), "W"),
               numpy_helper.from_array(rng.standard_normal((1, gates * hidden, hidden)).astype(np.float32) * .3, "R"),
               numpy_helper.from_array(rng.standard_normal((1, 2 * gates * hidden)).astype(np.float32) * .1, "B")]
    node = helper.make_node(op_type, ["x", "W", "R", "B", "lengths"], ["y", "y_h"], direction=direction,
                            hidden_size=hidden)
    graph = helper.make_graph([node], "single", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", inputs]),
        helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", 1, "B", hidden]),
         helper.make_tensor_value_info("y_h", TensorProto.FLOAT, [1, "B", hidden])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("op_type", ["GRU", "RNN"])
def test_reverse_direction_node_becomes_forward(op_type):
    before = _single_direction_model("reverse", op_type)
    after = split_bidirectional_lstm(_copy(before))
    assert lm.directions(after, op_type) == ["forward"]
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((6, 3, 5)).astype(np.float32), "lengths": np.array([6, 1, 4], np.int32)}
    assert lm.max_abs_diff(before, after, feeds) < 1e-6
    # include_reverse=False leaves it alone
    untouched = split_bidirectional_lstm(_copy(before), include_reverse=False)
    assert lm.directions(untouched, op_type) == ["reverse"]


def test_forward_nodes_are_left_alone():
    before = _single_direction_model("forward")
    after = split_bidirectional_lstm(_copy(before))
    assert lm.op_counts(after) == lm.op_counts(before)


# ---------------------------------------------------------------------------------------------------------
# direction_sum_to_add
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_lengths", [True, False])
def test_direction_sum_after_split_becomes_add(with_lengths):
    before = lm.export_deepspeech_like(use_lengths=with_lengths)
    split = split_bidirectional_lstm(_copy(before))
    after = direction_sum_to_add(_copy(split))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-6
    counts_split, counts_after = lm.op_counts(split), lm.op_counts(after)
    assert counts_split["ReduceSum"] == 3 and "ReduceSum" not in counts_after
    assert counts_after["Add"] == counts_split.get("Add", 0) + 3
    # the Transpose + two Reshapes per layer are gone; only the final batch-first Transpose stays
    assert counts_after["Reshape"] == counts_split["Reshape"] - 6
    assert counts_after["Transpose"] == 1


def test_direction_sum_without_split_reduces_over_the_direction_axis():
    before = lm.export_deepspeech_like(use_lengths=True)
    after = direction_sum_to_add(_copy(before))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-6
    sums = [n for n in after.graph.node if n.op_type == "ReduceSum"]
    assert len(sums) == 3 and all(n.input[0].endswith("LSTM_output_0") for n in sums)
    assert lm.op_counts(after)["Transpose"] == 1


def test_slice_add_form_with_constant_bounds():
    """x[..., :H] + x[..., H:] with H a Python int: Slices with constant bounds, traced without cleanup."""
    import torch

    class SliceSum(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(6, 10, bidirectional=True)

        def forward(self, x):
            y, _ = self.rnn(x)
            return y[:, :, :10] + y[:, :, 10:], y[:, :, 0:10] * 2  # the second output must stay as it is

    torch.manual_seed(0)
    before = lm.export(SliceSum(), (torch.randn(5, 2, 6),), ["x"], ["sum", "first"], {"x": {0: "T", 1: "B"}})
    after = direction_sum_to_add(split_bidirectional_lstm(_copy(before)))
    feeds = {"x": np.random.default_rng(1).standard_normal((7, 3, 6)).astype(np.float32)}
    assert lm.max_abs_diff(before, after, feeds) < 1e-6
    adds = [n for n in after.graph.node if n.op_type == "Add"]
    assert len(adds) == 1 and all("Squeeze" in a or "squeeze" in a for a in adds[0].input)


def test_a_sum_over_another_axis_is_not_rewritten():
    """Summing over hidden units (not directions) must stay a ReduceSum: the pass proves the axis first."""
    import torch

    class HiddenSum(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(6, 10, bidirectional=True)

        def forward(self, x):
            y, _ = self.rnn(x)
            return y.view(y.size(0), y.size(1), 2, 10).sum(3)

    before = lm.export(HiddenSum(), (torch.randn(5, 2, 6),), ["x"], ["out"], {"x": {0: "T", 1: "B"}})
    split = split_bidirectional_lstm(_copy(before))
    after = direction_sum_to_add(_copy(split))
    assert lm.op_counts(after)["ReduceSum"] == 1
    feeds = {"x": np.random.default_rng(1).standard_normal((7, 3, 6)).astype(np.float32)}
    assert lm.max_abs_diff(before, after, feeds) < 1e-6


def test_final_states_only_model_keeps_y_h_and_y_c():
    """A classifier on the last hidden state (no Y used): Y_h/Y_c are rebuilt from both directions."""
    import torch

    class FinalState(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(5, 7, bidirectional=True, num_layers=2)
            self.fc = nn.Linear(14, 3)

        def forward(self, x):
            _, (h, c) = self.rnn(x)
            return self.fc(torch.cat([h[-2], h[-1]], -1)), c

    before = lm.export(FinalState(), (torch.randn(6, 2, 5),), ["x"], ["y", "c"], {"x": {0: "T", 1: "B"}})
    after = split_bidirectional_lstm(_copy(before))
    assert lm.directions(after) == ["forward"] * 4
    feeds = {"x": np.random.default_rng(0).standard_normal((8, 3, 5)).astype(np.float32)}
    assert lm.max_abs_diff(before, after, feeds) < 1e-6
