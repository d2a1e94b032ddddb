"""A checkpoint written by the real deepspeech.pytorch V3.0 code, and V3.0's own outputs for three utterances.

fixtures/deepspeech_v3_0/README.md says how they were made. Everything here goes through porter's public
functions: porter must read the file users actually have, and compute what V3.0 computed from it."""
import importlib.abc
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from porter_deepspeech.checkpoint import build_model, load_checkpoint
from porter_deepspeech.features import load_audio, spectrogram
from porter_deepspeech.labels import V3_LABELS
from porter_deepspeech.model import ModelConfig, SpectConfig

torch.set_num_threads(1)

FIXTURE = Path(__file__).parent / "fixtures" / "deepspeech_v3_0"
CKPT = FIXTURE / "bilstm_h64_l2.ckpt"
INDEX = json.loads((FIXTURE / "index.json").read_text())
UTTERANCES = INDEX["batch_order"]
BLOCKED = ("deepspeech_pytorch", "omegaconf", "pytorch_lightning", "lightning", "hydra")


class RefuseImports(importlib.abc.MetaPathFinder):
    """Makes the packages the checkpoint's pickle names unimportable, whether or not they are installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} must not be imported to read a V3 checkpoint")
        return None


@pytest.fixture(scope="module")
def loaded():
    hidden = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] in BLOCKED}
    blocker = RefuseImports()
    sys.meta_path.insert(0, blocker)
    try:
        result = load_checkpoint(CKPT)
        model = build_model(result)
        assert not [name for name in sys.modules if name.split(".")[0] in BLOCKED]
    finally:
        sys.meta_path.remove(blocker)
        sys.modules.update(hidden)
    return result, model


def spect_of(name: str, spect_cfg: SpectConfig) -> np.ndarray:
    return spectrogram(load_audio(FIXTURE / f"{name}.wav", sample_rate=spect_cfg.sample_rate), spect_cfg)


def test_loads_without_the_packages_its_pickle_names(loaded):
    checkpoint, model = loaded
    assert checkpoint.labels == list(V3_LABELS)
    assert checkpoint.model_cfg == ModelConfig(rnn_type="lstm", hidden_size=64, hidden_layers=2, bidirectional=True)
    assert checkpoint.spect_cfg == SpectConfig(sample_rate=16000, window_size=0.02, window_stride=0.01,
                                               window="hamming")
    assert checkpoint.source_format == "lightning-ckpt"
    assert (checkpoint.epoch, checkpoint.global_step) == (3, 120)
    assert not model.training


@pytest.mark.parametrize("name", UTTERANCES)
def test_spectrogram_equals_v3(loaded, name):
    checkpoint, _ = loaded
    ours = spect_of(name, checkpoint.spect_cfg)
    theirs = np.load(FIXTURE / f"{name}.spect.npy")
    assert ours.shape == theirs.shape
    assert float(np.abs(ours - theirs).max()) <= 1e-5


@pytest.mark.parametrize("name", UTTERANCES)
def test_probabilities_alone_equal_v3(loaded, name):
    checkpoint, model = loaded
    spect = spect_of(name, checkpoint.spect_cfg)
    with torch.no_grad():
        probs, out_lengths = model(torch.from_numpy(spect)[None, None], torch.tensor([spect.shape[1]]))
    theirs = np.load(FIXTURE / f"bilstm_h64_l2.{name}.probs.npy")
    assert tuple(probs.shape) == theirs.shape
    assert int(out_lengths[0]) == theirs.shape[1]
    assert float(np.abs(probs.numpy() - theirs).max()) <= 1e-5


def padded_batch(spect_cfg: SpectConfig) -> tuple[np.ndarray, np.ndarray]:
    spects = [spect_of(name, spect_cfg) for name in UTTERANCES]
    frames = max(s.shape[1] for s in spects)
    batch = np.zeros((len(spects), 1, spects[0].shape[0], frames), dtype=np.float32)
    for row, spect in enumerate(spects):
        batch[row, 0, :, :spect.shape[1]] = spect
    return batch, np.array([s.shape[1] for s in spects], dtype=np.int32)


def test_padded_batch_equals_v3(loaded):
    checkpoint, model = loaded
    batch, lengths = padded_batch(checkpoint.spect_cfg)
    with torch.no_grad():
        probs, out_lengths = model(torch.from_numpy(batch), torch.from_numpy(lengths))
    theirs = np.load(FIXTURE / "bilstm_h64_l2.batch_probs.npy")
    np.testing.assert_array_equal(out_lengths.numpy(), np.load(FIXTURE / "bilstm_h64_l2.batch_out_lens.npy"))
    assert tuple(probs.shape) == theirs.shape
    assert float(np.abs(probs.numpy() - theirs).max()) <= 1e-5
