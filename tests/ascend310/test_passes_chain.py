"""The full chain a user lists in graph_fix, on DeepSpeech-like and other recurrent models, on ONNX Runtime.

Every comparison runs a padded batch (lengths differ, padding holds random values) unless it says otherwise.
"""
from __future__ import annotations

import lstm_models as lm
import numpy as np
import onnx
import pytest
from torch import nn

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def deepspeech_like():
    return {lengths: lm.export_deepspeech_like(use_lengths=lengths) for lengths in (True, False)}


@pytest.mark.parametrize("with_lengths", [True, False])
def test_chain_on_deepspeech_like_keeps_outputs_and_leaves_forward_lstms_only(deepspeech_like, with_lengths):
    before = deepspeech_like[with_lengths]
    after = lm.apply_passes(before)
    diff = lm.max_abs_diff(before, after, lm.time_major_feeds())
    assert diff <= TOLERANCE
    counts_before, counts_after = lm.op_counts(before), lm.op_counts(after)
    assert counts_before["BatchNormalization"] == 3 and "BatchNormalization" not in counts_after
    assert lm.directions(before) == ["bidirectional"] * 3
    assert lm.directions(after) == ["forward"] * 6
    assert "ReduceSum" not in counts_after and counts_after["Add"] >= 3  # directions summed by Add
    assert counts_after.get("ReverseSequence", 0) == (6 if with_lengths else 0)
    assert counts_after["Reshape"] < counts_before["Reshape"] and counts_after.get("Transpose", 0) <= 1
    assert all(size % 16 == 0 for size in lm.hidden_sizes(after))
    # the padded units really exist: 20 → 32
    assert set(lm.hidden_sizes(after)) == {32}


@pytest.mark.parametrize("opset", [10, 17])
def test_chain_across_opsets(opset):
    """Squeeze/ReduceSum/Slice moved attributes to inputs over the opsets; the passes build either form."""
    before = lm.export_deepspeech_like(use_lengths=True, opset=opset)
    after = lm.apply_passes(before)
    assert after.opset_import[0].version == opset
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) <= TOLERANCE
    assert "BatchNormalization" not in lm.op_counts(after) and lm.directions(after) == ["forward"] * 6


@pytest.mark.parametrize("case", ["gru_lengths", "gru_full", "lstm_lengths", "lstm_no_lengths"])
def test_chain_on_batch_first_stacked_models(case):
    rnn_type = nn.GRU if case.startswith("gru") else nn.LSTM
    before = lm.export_batch_first(rnn_type=rnn_type, use_lengths=case != "lstm_no_lengths")
    after = lm.apply_passes(before)
    feeds = lm.batch_first_feeds(lengths=(10, 10, 10) if case == "gru_full" else (4, 10, 7))
    assert lm.max_abs_diff(before, after, feeds) <= TOLERANCE
    op = rnn_type.__name__
    assert lm.directions(before, op) == ["bidirectional"] * 2
    assert lm.directions(after, op) == ["forward"] * 4
    assert "BatchNormalization" not in lm.op_counts(after)
    assert all(size % 16 == 0 for size in lm.hidden_sizes(after))  # 24 → 32


@pytest.mark.parametrize("rnn_type,direction_sum", [(nn.GRU, "view"), (nn.RNN, "view"), (nn.LSTM, "slice")])
def test_chain_on_other_deepspeech_like_variants(rnn_type, direction_sum):
    before = lm.export_deepspeech_like(use_lengths=True, rnn_type=rnn_type, direction_sum=direction_sum,
                                       input_size=16, hidden_size=40, layers=2, classes=5)
    after = lm.apply_passes(before)
    assert lm.max_abs_diff(before, after, lm.time_major_feeds(features=16)) <= TOLERANCE
    counts = lm.op_counts(after)
    assert "BatchNormalization" not in counts and "ReduceSum" not in counts
    assert lm.directions(after, rnn_type.__name__) == ["forward"] * 4
    assert set(lm.hidden_sizes(after)) == {48}
    if direction_sum == "slice":  # the Slice + Add form is traced too (after cleanup folds the Slice bounds)
        assert counts["Slice"] <= 1 and counts["Add"] >= 2


def test_broken_split_is_caught_on_padded_batches_only(deepspeech_like):
    """Negative control: flipping the whole padded tensor instead of ReverseSequence is wrong, and the
    comparison this suite relies on sees it; on a batch of full-length sequences the two agree."""
    before = deepspeech_like[True]
    after = lm.apply_passes(before, ("split_bidirectional_lstm",))
    broken = onnx.ModelProto.FromString(after.SerializeToString())
    _reverse_without_lengths(broken)
    assert lm.max_abs_diff(before, broken, lm.time_major_feeds()) > 1e-2
    full = lm.time_major_feeds(lengths=(11, 11, 11, 11))
    assert lm.max_abs_diff(before, broken, full) < 1e-5
    assert lm.max_abs_diff(before, after, lm.time_major_feeds()) < 1e-6


def _reverse_without_lengths(model: onnx.ModelProto) -> None:
    """Replace every ReverseSequence by a whole-axis flip (what a naive split does)."""
    for index, node in enumerate(list(model.graph.node)):
        if node.op_type != "ReverseSequence":
            continue
        starts, ends, axes, steps = (f"{node.name}_{k}" for k in ("starts", "ends", "axes", "steps"))
        for name, value in ((starts, -1), (ends, np.iinfo(np.int64).min), (axes, 0), (steps, -1)):
            model.graph.initializer.append(onnx.numpy_helper.from_array(np.array([value], np.int64), name))
        flip = onnx.helper.make_node("Slice", [node.input[0], starts, ends, axes, steps], list(node.output),
                                     name=node.name + "_flip")
        model.graph.node.remove(node)
        model.graph.node.insert(index, flip)


# ---------------------------------------------------------------------------------------------------------
# helper A's DeepSpeech (porter_deepspeech.model), small hidden size, through its own exporter
# ---------------------------------------------------------------------------------------------------------

FULL_CHAIN = ("cleanup", "fold_batchnorm_into_conv") + lm.USER_CHAIN[1:]


@pytest.fixture(scope="module")
def deepspeech_exports(tmp_path_factory):
    deepspeech = pytest.importorskip("porter_deepspeech.model")
    export = pytest.importorskip("porter_deepspeech.export")
    import torch

    from porter_deepspeech.labels import V3_LABELS

    torch.manual_seed(0)
    model = deepspeech.DeepSpeech(V3_LABELS, deepspeech.ModelConfig(hidden_size=20, hidden_layers=3)).eval()
    lm.randomize_batchnorms(model)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):  # the conv BatchNorms too, so folding them shows
            with torch.no_grad():
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    rng = np.random.default_rng(0)
    examples = [export.Example(f"u{i}", rng.standard_normal((1, 1, 161, frames)).astype(np.float32))
                for i, frames in enumerate((40, 31, 17))]
    folder = tmp_path_factory.mktemp("deepspeech")
    export.export_graph(model, examples, export.ExportSettings(dynamic=True), folder / "dynamic.onnx")
    export.export_graph(model, examples, export.ExportSettings(static_length=40, batch=3), folder / "static.onnx")
    spect = rng.standard_normal((3, 1, 161, 40)).astype(np.float32)
    return onnx.load(str(folder / "dynamic.onnx")), onnx.load(str(folder / "static.onnx")), spect


def test_chain_on_the_deepspeech_plugin_model_with_padded_batch(deepspeech_exports):
    dynamic, _, spect = deepspeech_exports
    after = lm.apply_passes(dynamic, FULL_CHAIN)
    feeds = {"spect": spect, "lengths": np.array([40, 17, 31], np.int32)}  # unsorted, padded
    assert lm.max_abs_diff(dynamic, after, feeds) <= TOLERANCE
    # 2 SequenceWise + fc; the exporter already folded the conv blocks' BatchNorm2d into their Conv weights
    assert lm.op_counts(dynamic)["BatchNormalization"] == 3
    assert "BatchNormalization" not in lm.op_counts(after)
    assert lm.directions(after) == ["forward"] * 6
    assert "ReduceSum" not in lm.op_counts(after) and "Pad" not in lm.op_counts(after)


def test_static_deepspeech_export_drops_asserted_full_lengths(deepspeech_exports):
    _, static, spect = deepspeech_exports
    chain = FULL_CHAIN[:-1] + ("drop_full_length_sequence_lens", "cleanup")
    options = {"drop_full_length_sequence_lens": {"full_length_inputs": {"lengths": "spect:3"}}}
    after = lm.apply_passes(static, chain, options)
    full = {"spect": spect, "lengths": np.array([40, 40, 40], np.int32)}
    assert lm.max_abs_diff(static, after, full) <= TOLERANCE
    lstms = [n for n in after.graph.node if n.op_type == "LSTM"]
    assert len(lstms) == 6 and all(len(n.input) <= 4 or n.input[4] == "" for n in lstms)
    assert "ReverseSequence" not in lm.op_counts(after) and "BatchNormalization" not in lm.op_counts(after)
    # the assertion is the user's: a shorter utterance now gives different outputs (negative control)
    padded = {"spect": spect, "lengths": np.array([40, 17, 31], np.int32)}
    assert lm.max_abs_diff(static, after, padded) > 1e-3
