"""pad_rnn_to_multiple: zero-weight padding of hidden and input sizes keeps every output, and the padded
units really stay zero."""
from __future__ import annotations

import lstm_models as lm
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from porter.errors import InputError
from porter_ascend310.passes.alignment import pad_rnn_to_multiple

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _copy(model):
    return onnx.ModelProto.FromString(model.SerializeToString())


def _rnn_model(op_type, direction="forward", hidden=10, inputs=6, states=True, peepholes=False,
               activations=None, seed=0):
    """x [T,B,I], lengths, optional initial states as graph inputs → one RNN node with every output used."""
    rng = np.random.default_rng(seed)
    dirs = 2 if direction == "bidirectional" else 1
    gates = GATES[op_type]
    arrays = {"W": rng.standard_normal((dirs, gates * hidden, inputs)) * 0.5,
              "R": rng.standard_normal((dirs, gates * hidden, hidden)) * 0.5,
              "B": rng.standard_normal((dirs, 2 * gates * hidden)) * 0.3}
    node_inputs = ["x", "W", "R", "B", "lengths"]
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", "B", inputs]),
                    helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"])]
    state_names = ["h0", "c0"] if op_type == "LSTM" else ["h0"]
    for name in state_names:
        node_inputs.append(name if states else "")
        if states:
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [dirs, "B", hidden]))
    if peepholes:
        arrays["P"] = rng.standard_normal((dirs, 3 * hidden)) * 0.3
        node_inputs.append("P")
    outputs = ["y", "y_h"] + (["y_c"] if op_type == "LSTM" else [])
    attrs = {"direction": direction, "hidden_size": hidden}
    if activations:
        attrs["activations"] = activations
    node = helper.make_node(op_type, node_inputs, outputs, name="rnn", **attrs)
    graph = helper.make_graph([node], "rnn", graph_inputs,
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in arrays.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    feeds = {"x": rng.standard_normal((5, 3, inputs)).astype(np.float32),
             "lengths": np.array([5, 2, 4], np.int32),
             **{name: rng.standard_normal((dirs, 3, hidden)).astype(np.float32) for name in state_names}}
    return model, feeds


@pytest.mark.parametrize("op_type,direction,peepholes", [("LSTM", "forward", True), ("LSTM", "bidirectional", False),
                                                         ("GRU", "forward", False), ("GRU", "bidirectional", False),
                                                         ("RNN", "reverse", False)])
def test_padding_keeps_every_output(op_type, direction, peepholes):
    model, feeds = _rnn_model(op_type, direction, peepholes=peepholes)
    after = pad_rnn_to_multiple(_copy(model), multiple=16)
    assert lm.hidden_sizes(after) == [16]
    weights = {t.name: numpy_helper.to_array(t) for t in after.graph.initializer}
    node = next(n for n in after.graph.node if n.op_type == op_type)
    assert weights[node.input[1]].shape[2] == 16  # input size 6 → 16 as well
    assert lm.max_abs_diff(model, after, feeds) < 1e-5  # Y, Y_h (and Y_c) all compared


def _padded_unit_values(model, feeds, op_type):
    """Run a padded model with its RNN's raw (untrimmed) Y as an extra output; return the padded units."""
    probe = _copy(model)
    node = next(n for n in probe.graph.node if n.op_type == op_type)
    probe.graph.output.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None))
    return lm.run(probe, feeds)[-1][..., 10:]


def test_padded_units_stay_exactly_zero_and_the_check_would_see_otherwise():
    model, feeds = _rnn_model("LSTM", "forward", states=True)
    after = pad_rnn_to_multiple(_copy(model), multiple=16)
    assert np.all(_padded_unit_values(after, feeds, "LSTM") == 0.0)
    # negative control: give the padded units a non-zero bias and they wake up
    broken = _copy(after)
    node = next(n for n in broken.graph.node if n.op_type == "LSTM")
    bias = next(t for t in broken.graph.initializer if t.name == node.input[3])
    values = numpy_helper.to_array(bias).copy()
    values[:, 10:16] = 1.0  # the input gate rows of units 10..15
    values[:, 48 + 10:48 + 16] = 1.0  # and their cell candidate rows (gate order i, o, f, c)
    bias.CopyFrom(numpy_helper.from_array(values, bias.name))
    assert np.abs(_padded_unit_values(broken, feeds, "LSTM")).max() > 1e-2


def test_stacked_layers_absorb_the_trim_into_the_next_weights():
    before = lm.apply_passes(lm.export_deepspeech_like(use_lengths=True),
                             ("cleanup", "fold_batchnorm_into_lstm", "split_bidirectional_lstm",
                              "direction_sum_to_add", "fold_batchnorm_into_matmul"))
    after = pad_rnn_to_multiple(_copy(before))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-5
    counts = lm.op_counts(after)
    assert set(lm.hidden_sizes(after)) == {32}
    assert counts.get("Pad", 0) == 2  # only the model input 12 → 16, once per direction of layer 0
    # one trim left, before the Reshape feeding the final MatMul; layers 1 and 2 read padded features
    assert len([n for n in after.graph.node if n.op_type == "Slice" and "trim" in n.name]) == 1


def test_zero_initial_states_from_constant_of_shape_are_dropped_not_padded():
    before = lm.export_deepspeech_like(use_lengths=True)  # initial states are ConstantOfShape zeros
    after = pad_rnn_to_multiple(_copy(before))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-5
    assert all(n.input[5:] in ([], ["", ""]) or not any(n.input[5:]) for n in after.graph.node
               if n.op_type == "LSTM")


def test_nodes_with_activations_that_do_not_keep_zero_are_not_padded():
    model, feeds = _rnn_model("RNN", activations=["Sigmoid"])
    after = pad_rnn_to_multiple(_copy(model), multiple=16, pad_input=False)
    assert lm.hidden_sizes(after) == [10]
    assert lm.op_counts(after) == lm.op_counts(model)


def test_already_aligned_sizes_and_bad_multiples():
    model, feeds = _rnn_model("GRU", hidden=16, inputs=8)
    after = pad_rnn_to_multiple(_copy(model), multiple=8)
    assert lm.op_counts(after) == lm.op_counts(model) and lm.hidden_sizes(after) == [16]
    for bad in (0, -16, 2.5, True):
        with pytest.raises(InputError, match="multiple"):
            pad_rnn_to_multiple(_copy(model), multiple=bad)
