"""Training mechanics on a tiny corpus: a few steps, stop, resume; the resumed state is the saved one and the
resumed run ends exactly where an unbroken run does."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from porter_deepspeech.checkpoint import build_model, load_checkpoint
from porter_deepspeech.labels import V3_LABELS
from porter_deepspeech.model import DeepSpeech, ModelConfig, SpectConfig
from porter_deepspeech.train import (
    RESUME_NAME,
    TrainConfig,
    epoch_batches,
    learning_rate,
    load_resume,
    restore_training_state,
    train,
)

torch.set_num_threads(1)


def write_tiny_corpus(root, name, n, seed):
    """Tone-and-noise clips: enough to exercise CTC training, nothing a test should transcribe."""
    rng = np.random.default_rng(seed)
    split = root / name
    (split / "an4" / "wav").mkdir(parents=True)
    (split / "an4" / "txt").mkdir(parents=True)
    samples = []
    for i in range(n):
        word = ["YES", "NO", "GO", "STOP"][i % 4]
        t = np.arange(int(16000 * rng.uniform(0.5, 0.9))) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 100 * (i % 4)) * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(str(split / "an4" / "wav" / f"{i}.wav"), (audio * 32767).astype(np.int16), 16000, subtype="PCM_16")
        (split / "an4" / "txt" / f"{i}.txt").write_text(word)
        samples.append({"wav_path": f"an4/wav/{i}.wav", "transcript_path": f"an4/txt/{i}.txt"})
    manifest = root / f"{name}_manifest.json"
    manifest.write_text(json.dumps({"root_path": str(split), "samples": samples}))
    return str(manifest)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    return write_tiny_corpus(root, "train", 8, 1), write_tiny_corpus(root, "dev", 3, 2)


def config(corpus, run_dir, **kw) -> TrainConfig:
    train_manifest, dev_manifest = corpus
    return TrainConfig(train_manifest=train_manifest, dev_manifest=dev_manifest, out=str(run_dir / "best.ckpt"),
                       run_dir=str(run_dir), seed=7, epochs=2, batch_size=4, hidden_size=16, hidden_layers=2,
                       warmup_steps=2, eval_every=1, augment_from_epoch=2, progress=False, threads=1, **kw)


@pytest.mark.slow
def test_stop_resume_equals_unbroken_run(corpus, tmp_path):
    unbroken = train(config(corpus, tmp_path / "a"))
    assert unbroken["global_step"] == 4 and unbroken["stop_reason"] == "epochs done"

    stopped = train(config(corpus, tmp_path / "b", max_steps=1))
    assert stopped["stop_reason"] == "max steps" and stopped["global_step"] == 1
    saved = load_resume(tmp_path / "b" / RESUME_NAME)
    assert (saved["epoch"], saved["next_batch"], saved["global_step"]) == (1, 1, 1)

    # restoring gives exactly the saved weights and optimiser moments
    model = DeepSpeech(list(V3_LABELS), ModelConfig(hidden_size=16, hidden_layers=2), SpectConfig())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    restore_training_state(tmp_path / "b" / RESUME_NAME, model, optimizer)
    for key, tensor in saved["model"].items():
        assert torch.equal(model.state_dict()[key], tensor), key
    restored_opt = optimizer.state_dict()
    assert restored_opt["state"].keys() == saved["optimizer"]["state"].keys()
    for index, moments in saved["optimizer"]["state"].items():
        assert torch.equal(restored_opt["state"][index]["exp_avg"], moments["exp_avg"])

    resumed = train(config(corpus, tmp_path / "b"), resume=True)
    assert resumed["global_step"] == 4 and resumed["stop_reason"] == "epochs done"
    assert [h["step"] for h in resumed["history"]] == [1, 2, 3, 4]

    final_unbroken = load_resume(tmp_path / "a" / RESUME_NAME)["model"]
    final_resumed = load_resume(tmp_path / "b" / RESUME_NAME)["model"]
    changed = False
    for key in final_unbroken:
        assert torch.equal(final_unbroken[key], final_resumed[key]), key
        changed |= not torch.equal(final_resumed[key], saved["model"][key])
    assert changed, "training did not go on after the resume"

    best = load_checkpoint(tmp_path / "b" / "best.ckpt")
    assert best.model_cfg.hidden_size == 16 and best.labels == list(V3_LABELS)
    build_model(best)
    assert (tmp_path / "b" / "train.log").read_text().count("resumed from") == 1


def test_sortagrad_then_bucketed_shuffle():
    lengths = [50, 10, 40, 20, 30, 60, 70, 5]
    first = epoch_batches(lengths, 2, 1, seed=3)
    assert [lengths[i] for b in first for i in b] == sorted(lengths)
    later = epoch_batches(lengths, 2, 2, seed=3)
    assert sorted(i for b in later for i in b) == list(range(8))
    assert later == epoch_batches(lengths, 2, 2, seed=3) != epoch_batches(lengths, 2, 2, seed=4)


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig("", "", "", "", learning_rate=1e-3, warmup_steps=10, final_lr_fraction=0.1)
    assert learning_rate(cfg, 0, 100) == pytest.approx(1e-4)
    assert learning_rate(cfg, 9, 100) == pytest.approx(1e-3)
    assert learning_rate(cfg, 55, 100) < 1e-3
    assert learning_rate(cfg, 100, 100) == pytest.approx(1e-4)
