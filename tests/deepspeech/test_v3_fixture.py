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


@pytest.fixture(scope="module")
def dynamic_onnx(loaded, tmp_path_factory):
    from porter_deepspeech.export import Example, ExportSettings, export_checked

    checkpoint, model = loaded
    examples = [Example(id=name, spect=spect_of(name, checkpoint.spect_cfg)[None, None]) for name in UTTERANCES]
    exported = export_checked(model, examples, ExportSettings(dynamic=True), tmp_path_factory.mktemp("onnx"))
    assert all(check.passed for check in exported.checks)
    return exported


def test_onnx_export_reproduces_v3_alone_and_in_a_padded_batch(loaded, dynamic_onnx):
    import onnxruntime as ort

    checkpoint, _ = loaded
    session = ort.InferenceSession(str(dynamic_onnx.path), providers=["CPUExecutionProvider"])
    for name in UTTERANCES:
        spect = spect_of(name, checkpoint.spect_cfg)[None, None]
        probs, out_lengths = session.run(None, {"spect": spect,
                                                "lengths": np.array([spect.shape[-1]], dtype=np.int32)})
        theirs = np.load(FIXTURE / f"bilstm_h64_l2.{name}.probs.npy")
        assert probs.shape == theirs.shape and int(out_lengths[0]) == theirs.shape[1]
        assert float(np.abs(probs - theirs).max()) <= 1e-4, name
    batch, lengths = padded_batch(checkpoint.spect_cfg)
    probs, out_lengths = session.run(None, {"spect": batch, "lengths": lengths})
    np.testing.assert_array_equal(out_lengths, np.load(FIXTURE / "bilstm_h64_l2.batch_out_lens.npy"))
    theirs = np.load(FIXTURE / "bilstm_h64_l2.batch_probs.npy")
    # V3.0's padded rows hold softmax over zero-padded steps past each length; compare the valid frames
    for row, length in enumerate(out_lengths):
        assert float(np.abs(probs[row, :length] - theirs[row, :length]).max()) <= 1e-4


ASCEND_PASSES = ["cleanup", "fold_batchnorm_into_conv", "fold_batchnorm_into_lstm", "split_bidirectional_lstm",
                 "direction_sum_to_add", "cancel_transposes", "fold_batchnorm_into_matmul", "pad_rnn_to_multiple",
                 "cleanup"]


@pytest.mark.slow
def test_recipe_over_the_three_utterances(tmp_path, capsys):
    """Reference, ONNX Runtime and the Ascend pass chain on the V3.0 checkpoint: same transcripts, every check
    within its tolerance."""
    import yaml

    from porter.cli.main import main

    lines = [f"{FIXTURE / f'{name}.wav'},{FIXTURE / f'{name}.txt'}" for name in UTTERANCES]
    manifest = tmp_path / "fixture_manifest.csv"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = {
        "name": "v3_fixture",
        "model": {"name": "deepspeech", "options": {"checkpoint": str(CKPT)},
                  "export": {"dynamic": False, "static_length": 160}},
        "dataset": {"name": "an4", "options": {"manifest": str(manifest)}},
        "target": {"name": "onnxruntime", "flags": {"warmup": 0}},
        "metrics": ["wer", "cer"],
        "variants": {"pytorch": {"reference": True}, "onnxruntime_fp32": {},
                     "onnxruntime_ascend_passes": {"graph_fix": ASCEND_PASSES}},
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    code = main(["run", str(path), "--workspace", str(tmp_path / "ws"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err + out
    report = json.loads((tmp_path / "ws" / "report.json").read_text())
    variants = {v["name"]: v for v in report["variants"]}
    assert all(v["status"] == "ok" for v in variants.values())
    reference = [s["hypothesis"] for s in variants["pytorch"]["samples"]]
    assert [s["reference"] for s in variants["pytorch"]["samples"]] == [INDEX["utterances"][n] for n in UTTERANCES]
    for name in ("onnxruntime_fp32", "onnxruntime_ascend_passes"):
        variant = variants[name]
        assert [s["hypothesis"] for s in variant["samples"]] == reference, name
        assert variant["metrics"] == variants["pytorch"]["metrics"]
        assert variant["checks"] and all(c["max_abs_diff"] <= c["tolerance"] for c in variant["checks"])
    records = variants["onnxruntime_ascend_passes"]["pass_records"]
    assert [r["name"] for r in records] == ASCEND_PASSES
    assert all(r["check"]["max_abs_diff"] <= r["check"]["tolerance"] and not r["check"]["problem"]
               for r in records)
    # the chain did what it is for: no bidirectional LSTM and no BatchNormalization left
    assert "BatchNormalization" not in records[-1]["ops_after"] and records[-1]["ops_after"]["LSTM"] == 4


@pytest.mark.slow
def test_the_default_recipe_pointed_at_the_v3_checkpoint(tmp_path, capsys, monkeypatch):
    """Issue 22's "done when": the shipped recipe with model.options.checkpoint set to a V3.0 checkpoint gives the
    variants table, every fp32 variant transcribing as the reference. The dataset is the fixture's utterances
    (the recipe's synthetic corpus takes minutes to make); every variant of the recipe stays as shipped."""
    import shutil

    import yaml

    from porter.cli.main import main

    monkeypatch.setenv("PATH", str(tmp_path / "no_tools"))  # no atc/msame: the Ascend variant writes its bundle
    recipe = yaml.safe_load((Path(__file__).parents[2] / "recipes" / "deepspeech_an4.yaml").read_text())
    data = tmp_path / "data"
    data.mkdir()
    for name in UTTERANCES:
        for suffix in (".wav", ".txt"):
            shutil.copy(FIXTURE / f"{name}{suffix}", data / f"{name}{suffix}")
    (data / "manifest.csv").write_text("".join(f"{name}.wav,{name}.txt\n" for name in UTTERANCES))
    recipe["model"]["options"]["checkpoint"] = str(CKPT)
    recipe["dataset"] = {"name": "an4", "options": {"manifest": "data/manifest.csv"}}
    recipe["workspace"], recipe["bundle"] = "ws", "bundle"
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    code = main(["run", str(path), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err + out
    variants = {v["name"]: v for v in json.loads((tmp_path / "ws" / "report.json").read_text())["variants"]}
    assert set(variants) == set(recipe["variants"])
    reference = [s["hypothesis"] for s in variants["pytorch"]["samples"]]
    fp32 = ("onnxruntime_fp32", "onnxruntime_ascend_passes", "onnxruntime_bucketed")
    for name in fp32:
        assert variants[name]["status"] == "ok", name
        assert [s["hypothesis"] for s in variants[name]["samples"]] == reference, name
    for name in ("fp16_preview", "onnxruntime_int8_bucketed"):
        assert variants[name]["status"] == "ok" and variants[name]["samples"], name
    assert variants["ascend310_fp16"]["status"] == "skipped" and (tmp_path / "bundle" / "run.sh").is_file()
    for name in fp32 + ("pytorch",):
        assert name in out
