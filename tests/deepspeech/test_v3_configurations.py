"""The V3.0 configurations beyond the fixture's bi-LSTM: unidirectional GRU/RNN/LSTM with Lookahead and a
bidirectional GRU, in checkpoints laid out as V3.0 writes them; porter's model must compute what V3.0's forward
pass (assembled independently from torch built-ins in v3_layout) computes."""
import pickle
import sys

import numpy as np
import pytest
import torch
from v3_layout import (
    FIXTURE,
    FIXTURE_CKPT,
    V3Config,
    pickle_globals,
    v3_forward,
    v3_state_dict,
    write_v3_checkpoint,
)

from porter_deepspeech.checkpoint import build_model, load_checkpoint
from porter_deepspeech.features import load_audio, spectrogram
from porter_deepspeech.model import ModelConfig, SpectConfig

torch.set_num_threads(1)

CONFIGS = {
    "unidirectional_gru_lookahead": V3Config("gru", hidden_size=40, hidden_layers=2, bidirectional=False,
                                             lookahead_context=5),
    "unidirectional_rnn_lookahead": V3Config("rnn", hidden_size=48, hidden_layers=3, bidirectional=False,
                                             lookahead_context=3),
    "unidirectional_lstm_lookahead": V3Config("lstm", hidden_size=32, hidden_layers=2, bidirectional=False,
                                              lookahead_context=20),
    "bidirectional_gru": V3Config("gru", hidden_size=32, hidden_layers=2, bidirectional=True),
}
UTTERANCES = ("u1", "u2", "u3")  # longest first, as V3's collate sorts a batch
BLOCKED = ("deepspeech_pytorch", "omegaconf", "pytorch_lightning", "lightning")


@pytest.fixture(scope="module")
def spects():
    return {name: spectrogram(load_audio(FIXTURE / f"{name}.wav"), SpectConfig()) for name in UTTERANCES}


def batch_of(spects, names):
    frames = max(spects[n].shape[1] for n in names)
    batch = torch.zeros(len(names), 1, 161, frames)
    for row, name in enumerate(names):
        batch[row, 0, :, :spects[name].shape[1]] = torch.from_numpy(spects[name])
    return batch, torch.tensor([spects[n].shape[1] for n in names], dtype=torch.int32)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def made(request, tmp_path_factory):
    cfg = CONFIGS[request.param]
    state_dict = v3_state_dict(cfg, seed=len(request.param))
    path = write_v3_checkpoint(tmp_path_factory.mktemp(request.param) / f"{request.param}.ckpt", cfg, state_dict)
    assert not [name for name in sys.modules if name.split(".")[0] in BLOCKED]
    return cfg, state_dict, path


def test_made_checkpoints_name_the_globals_v3_writes(made):
    """The layout mirrors V3.0's: the same classes in the pickle (UniDirectionalConfig for a lookahead model)."""
    cfg, _, path = made
    expected = pickle_globals(FIXTURE_CKPT)
    if not cfg.bidirectional:
        expected = (expected - {"deepspeech_pytorch.configs.train_config BiDirectionalConfig"}) | {
            "deepspeech_pytorch.configs.train_config UniDirectionalConfig"}
    assert pickle_globals(path) == expected
    with pytest.raises(pickle.UnpicklingError):  # torch's own safe loader refuses these: they are in the pickle
        torch.load(str(path), weights_only=True)


def test_loads_with_its_configuration(made):
    cfg, _, path = made
    loaded = load_checkpoint(path)
    assert loaded.model_cfg == ModelConfig(rnn_type=cfg.rnn_type, hidden_size=cfg.hidden_size,
                                           hidden_layers=cfg.hidden_layers, bidirectional=cfg.bidirectional,
                                           lookahead_context=cfg.lookahead_context)
    assert loaded.spect_cfg == SpectConfig()
    assert not [name for name in sys.modules if name.split(".")[0] in BLOCKED]


def test_probabilities_equal_v3_alone_and_in_a_padded_batch(made, spects):
    cfg, state_dict, path = made
    model = build_model(load_checkpoint(path))
    with torch.no_grad():
        for name in UTTERANCES:
            spect, lengths = batch_of(spects, [name])
            ours, our_lengths = model(spect, lengths)
            theirs, their_lengths = v3_forward(state_dict, cfg, spect, lengths)
            assert torch.equal(our_lengths, their_lengths)
            assert float((ours - theirs).abs().max()) <= 1e-5, name
        spect, lengths = batch_of(spects, list(UTTERANCES))
        ours, our_lengths = model(spect, lengths)
        theirs, their_lengths = v3_forward(state_dict, cfg, spect, lengths)
    assert torch.equal(our_lengths, their_lengths)
    for row, length in enumerate(their_lengths.tolist()):
        assert float((ours[row, :length] - theirs[row, :length]).abs().max()) <= 1e-5
    # the outputs are not degenerate: frames disagree on their most likely class
    assert len(set(theirs[0, : int(their_lengths[0])].argmax(-1).tolist())) > 1


def test_onnx_export_equals_v3(made, spects, tmp_path):
    import onnxruntime as ort

    from porter_deepspeech.export import Example, ExportSettings, export_checked

    cfg, state_dict, path = made
    model = build_model(load_checkpoint(path))
    examples = [Example(id=n, spect=spects[n][None, None]) for n in UTTERANCES]
    exported = export_checked(model, examples, ExportSettings(dynamic=True), tmp_path)
    assert all(check.passed for check in exported.checks)
    session = ort.InferenceSession(str(exported.path), providers=["CPUExecutionProvider"])
    spect, lengths = batch_of(spects, list(UTTERANCES))
    probs, out_lengths = session.run(None, {"spect": spect.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        theirs, their_lengths = v3_forward(state_dict, cfg, spect, lengths)
    np.testing.assert_array_equal(out_lengths, their_lengths.numpy())
    for row, length in enumerate(their_lengths.tolist()):
        assert float(np.abs(probs[row, :length] - theirs[row, :length].numpy()).max()) <= 1e-4


@pytest.mark.slow
def test_recipe_on_a_unidirectional_gru_with_lookahead(tmp_path, capsys):
    """The recipe path the fixture's bi-LSTM takes (reference, ONNX Runtime, the Ascend pass chain, bucketed
    batches), on the configuration least like it: the same transcripts everywhere, every pass within tolerance."""
    import json

    import yaml

    from porter.cli.main import main

    cfg = CONFIGS["unidirectional_gru_lookahead"]
    checkpoint = write_v3_checkpoint(tmp_path / "gru.ckpt", cfg, v3_state_dict(cfg, seed=7))
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("".join(f"{FIXTURE / f'{n}.wav'},{FIXTURE / f'{n}.txt'}\n" for n in UTTERANCES))
    passes = ["cleanup", "fold_batchnorm_into_conv", "fold_batchnorm_into_lstm", "split_bidirectional_lstm",
              "direction_sum_to_add", "cancel_transposes", "fold_batchnorm_into_matmul", "pad_rnn_to_multiple",
              "cleanup"]
    recipe = {
        "name": "v3_gru",
        "model": {"name": "deepspeech", "options": {"checkpoint": str(checkpoint)},
                  "export": {"dynamic": False, "static_length": 160}},
        "dataset": {"name": "an4", "options": {"manifest": str(manifest)}},
        "target": {"name": "onnxruntime", "flags": {"warmup": 0}},
        "metrics": ["wer", "cer"],
        "variants": {"pytorch": {"reference": True}, "ort": {}, "ascend_passes": {"graph_fix": passes},
                     "bucketed": {"model": {"export": {"dynamic": True}},
                                  "target": {"flags": {"batching": "bucketed", "batch_size": 3}}}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    code = main(["run", str(path), "--workspace", str(tmp_path / "ws"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err + out
    variants = {v["name"]: v for v in json.loads((tmp_path / "ws" / "report.json").read_text())["variants"]}
    reference = [s["hypothesis"] for s in variants["pytorch"]["samples"]]
    assert all(reference)
    for name in ("ort", "ascend_passes", "bucketed"):
        assert variants[name]["status"] == "ok"
        assert [s["hypothesis"] for s in variants[name]["samples"]] == reference, name
    assert all(r["check"]["max_abs_diff"] <= r["check"]["tolerance"] and not r["check"]["problem"]
               for r in variants["ascend_passes"]["pass_records"])
