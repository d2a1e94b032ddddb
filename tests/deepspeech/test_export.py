"""ONNX export through the plugin's hook: static and dynamic axes, opset read back, parity on padded inputs,
and a negative control proving the checks catch a conv mask frozen at trace time."""
from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from pipeline_support import dataset_config, deepspeech_plugins, model_config, tiny_checkpoint, write_an4_forms

from porter_deepspeech.export import (
    ExportParityError,
    ExportSettings,
    check_parity,
    export_checked,
    frozen_mask_nodes,
    pick_examples,
    raise_if_failed,
)
from porter_deepspeech.reference import load_eval_model

STATIC = 140  # frames; the espeak utterances are 70-130 frames, so every one of them is padded


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    forms = write_an4_forms(root / "data")
    checkpoint = tiny_checkpoint(root / "tiny.ckpt")
    plugins = deepspeech_plugins()
    model = model_config(checkpoint, dynamic=True)
    workdir = root / "pre"
    workdir.mkdir()
    inputs = plugins.hook.porter_preprocess(dataset=dataset_config("an4", manifest=forms.json_manifest),
                                            model=model, workdir=workdir)
    return plugins, checkpoint, inputs, root


@pytest.fixture(scope="module")
def static_export(setup, tmp_path_factory):
    plugins, checkpoint, inputs, _ = setup
    return plugins.hook.porter_export(model=model_config(checkpoint, static_length=STATIC), inputs=inputs,
                                      workdir=tmp_path_factory.mktemp("static"))


@pytest.fixture(scope="module")
def alone(setup):
    """PyTorch on each utterance at its natural length: the reference every ONNX output is held to."""
    _, checkpoint, inputs, _ = setup
    model = load_eval_model(checkpoint)
    results = []
    with torch.no_grad():
        for index in range(len(inputs)):
            spect = inputs.load(index)["spect"]
            probs, lengths = model(torch.from_numpy(spect), torch.tensor([spect.shape[-1]], dtype=torch.int32))
            results.append((probs[0, :int(lengths[0])].numpy(), int(lengths[0])))
    return results


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_static_export_pads_and_matches_pytorch(setup, static_export, alone):
    _, checkpoint, inputs, _ = setup
    exported = static_export
    assert [(t.name, t.shape, t.dtype) for t in exported.inputs] == [
        ("spect", (1, 1, 161, STATIC), "float32"), ("lengths", (1,), "int32")]
    frames = (STATIC + 1) // 2  # ceil(L / 2): the first conv's time stride
    assert [(t.name, t.shape) for t in exported.outputs] == [("probs", (1, frames, 29)), ("out_lengths", (1,))]
    graph = onnx.load(str(exported.path))
    assert exported.opset == 13 and [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [13]
    # lengths reach every LSTM (sequence_lens, input 4) and no Where has a constant condition
    lstms = [n for n in graph.graph.node if n.op_type == "LSTM"]
    assert len(lstms) == 2 and all(len(n.input) > 4 and n.input[4] for n in lstms)
    assert frozen_mask_nodes(graph) == []
    # one padding mask per conv block, after its activation: nothing stands between Conv and BatchNorm, so the
    # exporter folds BatchNorm into the Conv weights
    ops = [n.op_type for n in graph.graph.node if n.op_type in ("Conv", "BatchNormalization", "Clip", "Where")]
    assert ops[:6] == ["Conv", "Clip", "Where"] * 2
    (check,) = exported.checks
    assert check.label == "onnx vs pytorch, padded to static length" and check.samples == 3
    assert check.passed and check.max_abs_diff < 1e-5

    # independently of the plugin's check: every utterance zero-padded to STATIC equals PyTorch alone
    session = _session(exported.path)
    for index in range(len(inputs)):
        spect = inputs.load(index)["spect"]
        frames = spect.shape[-1]
        assert frames < STATIC
        padded = np.zeros((1, 1, 161, STATIC), np.float32)
        padded[..., :frames] = spect
        probs, out_lengths = session.run(None, {"spect": padded, "lengths": np.array([frames], np.int32)})
        expected, expected_length = alone[index]
        assert int(out_lengths[0]) == expected_length == (frames + 1) // 2
        assert np.abs(probs[0, :expected_length] - expected).max() < 1e-5


@pytest.mark.slow
def test_static_batch_two_at_opset_11(setup, tmp_path):
    plugins, checkpoint, inputs, _ = setup
    exported = plugins.hook.porter_export(model=model_config(checkpoint, static_length=STATIC, batch=2, opset=11),
                                          inputs=inputs, workdir=tmp_path)
    graph = onnx.load(str(exported.path))
    assert [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [11] and exported.opset == 11
    assert exported.inputs[0].shape == (2, 1, 161, STATIC)
    assert all(c.passed and c.max_abs_diff < 1e-5 for c in exported.checks)
    # 3 utterances in batches of 2: the last batch is filled by repeating one
    assert sum(c.samples for c in exported.checks) == 4


def test_dynamic_export_padded_batch_equals_each_alone(setup, alone, tmp_path):
    plugins, checkpoint, inputs, _ = setup
    exported = plugins.hook.porter_export(model=model_config(checkpoint, dynamic=True), inputs=inputs,
                                          workdir=tmp_path)
    assert exported.inputs[0].shape == ("batch", 1, 161, "time")
    assert exported.outputs[0].shape == ("batch", "frames", 29)
    labels = [c.label for c in exported.checks]
    assert labels == ["onnx vs pytorch, natural length", "onnx vs pytorch, padded batch of two lengths"]
    assert all(c.max_abs_diff < 1e-5 for c in exported.checks)

    session = _session(exported.path)
    long, short = inputs.load(2)["spect"], inputs.load(0)["spect"]
    assert long.shape[-1] > short.shape[-1]
    batch = np.zeros((2, 1, 161, long.shape[-1]), np.float32)
    batch[0], batch[1, :, :, :short.shape[-1]] = long[0], short[0]
    lengths = np.array([long.shape[-1], short.shape[-1]], np.int32)
    for order in ([0, 1], [1, 0]):  # the shorter utterance first too: no sorting is assumed
        probs, out_lengths = session.run(None, {"spect": batch[order], "lengths": lengths[order]})
        for row, index in enumerate([[2, 0][i] for i in order]):
            expected, expected_length = alone[index]
            assert int(out_lengths[row]) == expected_length
            assert np.abs(probs[row, :expected_length] - expected).max() < 1e-5


def _frozen_mask_forward(mask_conv):
    """MaskConv as the reference writes it: a Python loop over ``.item()`` lengths, which tracing freezes."""
    def forward(x, lengths):
        for module in mask_conv.seq_module:
            x = module(x)
            mask = torch.zeros(x.shape, dtype=torch.bool)
            for i, length in enumerate(lengths):
                length = int(length.item())
                if x.size(3) > length:
                    mask[i, :, :, length:] = True
            x = x.masked_fill(mask, 0)
        return x, lengths
    return forward


def test_a_mask_frozen_at_trace_time_is_refused(setup, static_export, tmp_path):
    _, checkpoint, inputs, _ = setup
    examples = pick_examples(inputs)
    settings = ExportSettings(static_length=STATIC)
    frozen = load_eval_model(checkpoint)
    frozen.conv.forward = _frozen_mask_forward(frozen.conv)
    with pytest.raises(ExportParityError, match=r"conv padding mask was frozen into constants"):
        export_checked(frozen, examples, settings, tmp_path)
    frozen_path = tmp_path / "deepspeech.onnx"
    assert len(frozen_mask_nodes(onnx.load(str(frozen_path)))) >= 6  # at least one per conv-stack module

    # The numeric check catches it on its own: PyTorch vs the frozen graph on padded inputs is far off, while
    # the faithful export of the same weights is not; and such checks fail the export.
    frozen_checks = check_parity(load_eval_model(checkpoint), frozen_path, examples, settings)
    faithful_diff = max(c.max_abs_diff for c in static_export.checks)
    assert max(c.max_abs_diff for c in frozen_checks) > 1e-4 > 1e-5 > faithful_diff
    with pytest.raises(ExportParityError, match=r"padded to static length: max abs diff .* > tolerance 0.0001"):
        raise_if_failed(frozen_checks)
    raise_if_failed(static_export.checks)
