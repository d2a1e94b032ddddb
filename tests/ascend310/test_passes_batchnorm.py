"""BatchNorm folding into RNN, MatMul/Gemm and Conv weights, and the places it must refuse to fold."""
from __future__ import annotations

import lstm_models as lm
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from porter_ascend310.passes.batchnorm_folding import (
    fold_batchnorm_into_conv,
    fold_batchnorm_into_lstm,
    fold_batchnorm_into_matmul,
)


def _copy(model):
    return onnx.ModelProto.FromString(model.SerializeToString())


def _producer_types(model, op_type):
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    return [producers.get(n.input[0], "input") for n in model.graph.node if n.op_type == op_type]


@pytest.mark.parametrize("with_lengths", [True, False])
def test_sequencewise_batchnorm_folds_into_the_lstm_and_the_reshapes_go(with_lengths):
    before = lm.export_deepspeech_like(use_lengths=with_lengths)
    after = fold_batchnorm_into_lstm(_copy(before))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-5
    counts_before, counts_after = lm.op_counts(before), lm.op_counts(after)
    assert counts_before["BatchNormalization"] == 3 and counts_after["BatchNormalization"] == 1  # fc's stays
    # [T,B,C] → Reshape → BN → Reshape → LSTM: each folded LSTM now reads the previous layer's sum directly
    assert _producer_types(after, "LSTM") == ["input", "ReduceSum", "ReduceSum"]
    assert counts_after["Reshape"] == counts_before["Reshape"] - 4


def test_final_batchnorm_folds_into_the_linear():
    before = lm.export_deepspeech_like(use_lengths=True)
    after = fold_batchnorm_into_matmul(_copy(before))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-5
    assert lm.op_counts(after)["BatchNormalization"] == 2  # the LSTM ones are not this pass's
    assert lm.op_counts(after)["Add"] == 1 and _producer_types(after, "MatMul") == ["Reshape"]


@pytest.mark.parametrize("rnn_type", [nn.GRU, nn.LSTM])
def test_batchnorm_over_channels_first_folds_through_transposes_and_batch_sorting(rnn_type):
    before = lm.export_batch_first(rnn_type=rnn_type, use_lengths=True)
    after = fold_batchnorm_into_lstm(_copy(before))
    assert "BatchNormalization" not in lm.op_counts(after)
    assert lm.max_abs_diff(before, after, lm.batch_first_feeds()) < 1e-5


def test_gru_needs_w_b_in_the_input_bias():
    """Negative control: GRU (linear_before_reset=1) keeps Rb inside the reset gate, so W·b put into Rb
    instead of Wb is wrong; the test sees it."""
    before = lm.export_deepspeech_like(use_lengths=True, rnn_type=nn.GRU)
    after = fold_batchnorm_into_lstm(_copy(before))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-5
    original = {t.name: numpy_helper.to_array(t) for t in before.graph.initializer}
    folded = {t.name: t for t in after.graph.initializer}
    before_grus = [n for n in before.graph.node if n.op_type == "GRU"]
    for old, new in zip(before_grus, [n for n in after.graph.node if n.op_type == "GRU"]):
        if old.input[3] == new.input[3]:
            continue  # layer 0 has no BatchNorm
        bias_before, bias_after = original[old.input[3]], numpy_helper.to_array(folded[new.input[3]])
        half = bias_before.shape[1] // 2
        shift = bias_after[:, :half] - bias_before[:, :half]
        assert np.abs(shift).max() > 1e-3
        wrong = bias_before.copy()
        wrong[:, half:] += shift
        folded[new.input[3]].CopyFrom(numpy_helper.from_array(wrong, new.input[3]))
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) > 1e-3


def _lstm_after_batchnorm(channel_axis_is_batch: bool):
    """x [T, 4, C] → BatchNorm → LSTM. With channel_axis_is_batch the BN normalizes over axis 1 = batch."""
    rng = np.random.default_rng(5)
    time_steps, batch, features, hidden = 6, 4, 3, 5
    channels = batch if channel_axis_is_batch else features
    stats = {name: rng.uniform(0.5, 1.5, channels).astype(np.float32) for name in ("scale", "var")}
    stats.update({name: rng.normal(0, 0.3, channels).astype(np.float32) for name in ("shift", "mean")})
    nodes = []
    bn_input = "x"
    if not channel_axis_is_batch:  # [T,B,C] → [B,C,T] for the BN, then back to [T,B,C]
        nodes.append(helper.make_node("Transpose", ["x"], ["x_bct"], perm=[1, 2, 0]))
        bn_input = "x_bct"
    nodes.append(helper.make_node("BatchNormalization", [bn_input, "scale", "shift", "mean", "var"], ["bn"]))
    lstm_input = "bn"
    if not channel_axis_is_batch:
        nodes.append(helper.make_node("Transpose", ["bn"], ["bn_tbc"], perm=[2, 0, 1]))
        lstm_input = "bn_tbc"
    nodes.append(helper.make_node("LSTM", [lstm_input, "W", "R"], ["y"], hidden_size=hidden))
    weights = {"W": rng.standard_normal((1, 4 * hidden, features)), "R": rng.standard_normal((1, 4 * hidden, hidden))}
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in {**stats, **weights}.items()]
    graph = helper.make_graph(nodes, "bn_lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                               [time_steps, batch, features])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    feeds = {"x": rng.standard_normal((time_steps, batch, features)).astype(np.float32)}
    return model, feeds


def test_batchnorm_whose_channels_are_not_the_lstm_features_is_not_folded():
    model, feeds = _lstm_after_batchnorm(channel_axis_is_batch=True)
    after = fold_batchnorm_into_lstm(_copy(model))
    assert lm.op_counts(after) == lm.op_counts(model)
    assert lm.max_abs_diff(model, after, feeds) == 0.0
    folded_model, folded_feeds = _lstm_after_batchnorm(channel_axis_is_batch=False)
    folded = fold_batchnorm_into_lstm(_copy(folded_model))
    assert "BatchNormalization" not in lm.op_counts(folded)
    assert lm.max_abs_diff(folded_model, folded, folded_feeds) < 1e-5
    # Transpose [T,B,C]→[B,C,T], BN, Transpose back: the LSTM reads x itself, both Transposes go too
    assert lm.op_counts(folded) == {"LSTM": 1} and _producer_types(folded, "LSTM") == ["input"]


def test_training_mode_batchnorm_is_left_alone():
    model, feeds = _lstm_after_batchnorm(channel_axis_is_batch=False)
    bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
    bn.input[1] = "scale_input"  # a scale the graph receives at run time cannot be folded
    model.graph.input.append(helper.make_tensor_value_info("scale_input", TensorProto.FLOAT, [3]))
    after = fold_batchnorm_into_lstm(_copy(model))
    assert lm.op_counts(after) == lm.op_counts(model)


@pytest.mark.parametrize("trans_b,with_c,alpha,beta", [(1, True, 1.0, 1.0), (0, False, 0.5, 2.0),
                                                       (1, True, 0.7, 1.5)])
def test_batchnorm_folds_into_gemm(trans_b, with_c, alpha, beta):
    rng = np.random.default_rng(6)
    channels, outputs = 6, 4
    weight = rng.standard_normal((outputs, channels) if trans_b else (channels, outputs)).astype(np.float32)
    initializers = [numpy_helper.from_array(weight, "weight"),
                    numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), "scale"),
                    numpy_helper.from_array(rng.normal(0, .3, channels).astype(np.float32), "shift"),
                    numpy_helper.from_array(rng.normal(0, .3, channels).astype(np.float32), "mean"),
                    numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), "var")]
    gemm_inputs = ["bn", "weight"]
    if with_c:
        initializers.append(numpy_helper.from_array(rng.standard_normal(outputs).astype(np.float32), "c"))
        gemm_inputs.append("c")
    nodes = [helper.make_node("BatchNormalization", ["x", "scale", "shift", "mean", "var"], ["bn"], epsilon=1e-3),
             helper.make_node("Gemm", gemm_inputs, ["y"], transB=trans_b, alpha=alpha, beta=beta)]
    graph = helper.make_graph(nodes, "bn_gemm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", channels])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", outputs])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    after = fold_batchnorm_into_matmul(_copy(model))
    assert lm.op_counts(after) == {"Gemm": 1}
    feeds = {"x": rng.standard_normal((5, channels)).astype(np.float32)}
    assert lm.max_abs_diff(model, after, feeds) < 1e-5


def _masked_conv_model(conv_output_is_graph_output=False):
    """Conv → Where(mask, 0, ·) → BatchNorm → Where(mask, 0, ·): DeepSpeech's MaskConv shape."""
    rng = np.random.default_rng(7)
    channels = 4
    initializers = [numpy_helper.from_array(rng.standard_normal((channels, 1, 3, 3)).astype(np.float32), "w"),
                    numpy_helper.from_array(rng.standard_normal(channels).astype(np.float32), "b"),
                    numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
                    numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), "scale"),
                    numpy_helper.from_array(rng.normal(0, .3, channels).astype(np.float32), "shift"),
                    numpy_helper.from_array(rng.normal(0, .3, channels).astype(np.float32), "mean"),
                    numpy_helper.from_array(rng.uniform(0.5, 1.5, channels).astype(np.float32), "var")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("Where", ["mask", "zero", "conv"], ["masked"]),
             helper.make_node("BatchNormalization", ["masked", "scale", "shift", "mean", "var"], ["bn"]),
             helper.make_node("Where", ["mask", "zero", "bn"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", channels, 5, "T"])]
    if conv_output_is_graph_output:
        outputs.append(helper.make_tensor_value_info("conv", TensorProto.FLOAT, ["N", channels, 5, "T"]))
    graph = helper.make_graph(nodes, "mask_conv", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, "T"]),
        helper.make_tensor_value_info("mask", TensorProto.BOOL, ["N", 1, 1, "T"])], outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    mask = np.zeros((2, 1, 1, 6), bool)
    mask[1, ..., 3:] = True  # the second item is padded after 3 frames
    feeds = {"x": rng.standard_normal((2, 1, 5, 6)).astype(np.float32), "mask": mask}
    return model, feeds


def test_batchnorm_folds_into_conv_across_masks():
    model, feeds = _masked_conv_model()
    after = fold_batchnorm_into_conv(_copy(model))
    assert lm.op_counts(after) == {"Conv": 1, "Where": 2}
    assert lm.max_abs_diff(model, after, feeds) < 1e-5


def test_conv_whose_raw_output_is_needed_keeps_its_batchnorm():
    model, feeds = _masked_conv_model(conv_output_is_graph_output=True)
    after = fold_batchnorm_into_conv(_copy(model))
    assert lm.op_counts(after)["BatchNormalization"] == 1
    assert lm.max_abs_diff(model, after, feeds) == 0.0
