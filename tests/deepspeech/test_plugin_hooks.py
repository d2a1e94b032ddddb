"""The deepspeech plugin through porter's hook interface: registration, preprocess on real speech (with the
seed's device files), the PyTorch reference run, scoring on known outputs, and foreign names left alone."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pipeline_support import (
    PROMPTS,
    dataset_config,
    deepspeech_plugins,
    model_config,
    speak,
    tiny_checkpoint,
    write_an4_forms,
)

from porter.artifacts import OutputSet, Timing, write_sample
from porter.errors import InputError
from porter.specs import DatasetConfig, ModelConfig
from porter_deepspeech.features import load_audio, spectrogram
from porter_deepspeech.labels import V3_LABELS
from porter_deepspeech.reference import load_eval_model

STATIC = 200


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("hooks")
    return deepspeech_plugins(), write_an4_forms(root / "data"), tiny_checkpoint(root / "tiny.ckpt")


@pytest.fixture(scope="module")
def static_inputs(env, tmp_path_factory):
    plugins, forms, checkpoint = env
    workdir = tmp_path_factory.mktemp("pre")
    return plugins.hook.porter_preprocess(dataset=dataset_config("an4", manifest=forms.json_manifest),
                                          model=model_config(checkpoint, static_length=STATIC), workdir=workdir)


def test_registration(env):
    # what this plugin registers (porter's builtins register models and metrics of their own)
    own = env[0].pm.get_plugin("deepspeech")
    (model,) = own.porter_register_models()
    assert model.name == "deepspeech" and model.options["checkpoint"].required
    assert model.options["resample"].default is False
    assert {k: v.default for k, v in model.export_options.items()} == {
        "opset": 13, "dynamic": False, "static_length": 621, "batch": 1, "tolerance": 1e-4, "truncate": False}
    datasets = {s.name: s for s in own.porter_register_datasets()}
    assert set(datasets) == {"an4", "an4_synth"}
    assert set(datasets["an4"].options) == {"manifest", "an4_root", "split", "limit"}
    synth = datasets["an4_synth"].options
    assert synth["root"].must_exist is False and synth["seed"].default == 1234
    assert synth["splits"].default == ["test_unseen_voices", "test_unseen_engine"]
    metrics = [s.name for s in own.porter_register_metrics()]
    assert metrics == ["wer", "cer"]


def test_commands_are_added(env):
    import argparse

    parser = argparse.ArgumentParser(prog="porter")
    subparsers = parser.add_subparsers(dest="command")
    env[0].hook.porter_add_commands(subparsers=subparsers)
    assert {"train", "data"} <= set(subparsers.choices)
    args = parser.parse_args(["data", "an4-synth", "--out", "x"])
    assert callable(args.func)


def test_stage_hooks_leave_other_names_alone(env, tmp_path):
    from porter_deepspeech import plugin

    other_model = ModelConfig(name="resnet", options={}, export={})
    ours = model_config(env[2])
    assert plugin.porter_preprocess(dataset=DatasetConfig("imagenet", {}), model=ours, workdir=tmp_path) is None
    assert plugin.porter_preprocess(dataset=dataset_config("an4"), model=other_model, workdir=tmp_path) is None
    assert plugin.porter_export(model=other_model, inputs=None, workdir=tmp_path) is None
    assert plugin.porter_run_reference(model=other_model, inputs=None, workdir=tmp_path) is None
    assert plugin.porter_score(model=other_model, metrics=("wer",), inputs=None, outputs=None) is None
    assert list(tmp_path.iterdir()) == []


def test_preprocess_real_speech(env, static_inputs):
    _, forms, _ = env
    inputs = static_inputs
    assert inputs.sample_ids == tuple(PROMPTS) and inputs.references == tuple(PROMPTS.values())
    assert inputs.groups == ("test",) * 3 and inputs.input_names == ("spect", "lengths")
    assert inputs.details["labels"] == list(V3_LABELS)
    for index, utt_id in enumerate(PROMPTS):
        arrays = inputs.load(index)
        samples = load_audio(forms.wav_dir / f"{utt_id}.wav")
        frames = 1 + len(samples) // 160
        # natural length, the V3 front end exactly
        assert arrays["spect"].dtype == np.float32 and arrays["spect"].shape == (1, 1, 161, frames)
        np.testing.assert_array_equal(arrays["spect"][0, 0], spectrogram(samples))
        assert arrays["lengths"].dtype == np.int32 and arrays["lengths"].tolist() == [frames]
        assert inputs.details["frames"][index] == frames

        # the seed's device layout: padded float32 spect and an int32 size per utterance
        layout = inputs.details["device_layout"]
        device = inputs.path / layout["folder"]
        padded = np.fromfile(device / layout["spect"].format(number=index + 1), dtype=np.float32)
        assert padded.size == 161 * STATIC
        padded = padded.reshape(161, STATIC)
        np.testing.assert_array_equal(padded[:, :frames], arrays["spect"][0, 0])
        assert not padded[:, frames:].any()
        assert np.fromfile(device / layout["sizes"].format(number=index + 1), dtype=np.int32).tolist() == [frames]


def test_all_three_an4_forms_preprocess_identically(env, static_inputs, tmp_path):
    plugins, forms, checkpoint = env
    model = model_config(checkpoint, static_length=STATIC)
    for name, options in (("csv", {"manifest": forms.csv_manifest}), ("tree", {"an4_root": forms.tree})):
        workdir = tmp_path / name
        workdir.mkdir()
        other = plugins.hook.porter_preprocess(dataset=dataset_config("an4", **options), model=model,
                                               workdir=workdir)
        assert other.sample_ids == static_inputs.sample_ids and other.references == static_inputs.references
        for index in range(len(other)):
            for key, value in other.load(index).items():
                np.testing.assert_array_equal(value, static_inputs.load(index)[key])


def test_dynamic_export_writes_no_device_files_and_limit_applies(env, tmp_path):
    plugins, forms, checkpoint = env
    inputs = plugins.hook.porter_preprocess(dataset=dataset_config("an4", manifest=forms.json_manifest, limit=2),
                                            model=model_config(checkpoint, dynamic=True), workdir=tmp_path)
    assert len(inputs) == 2 and "device_layout" not in inputs.details
    assert not (tmp_path / "device").exists()


def test_too_long_utterance_is_named_or_truncated(env, tmp_path):
    plugins, forms, checkpoint = env
    dataset = dataset_config("an4", manifest=forms.json_manifest)
    (tmp_path / "a").mkdir()
    with pytest.raises(InputError, match=r"an3-spk-b\.wav: utterance 'an3-spk-b' has \d+ frames, more than the "
                                         r"static export length 100"):
        plugins.hook.porter_preprocess(dataset=dataset, model=model_config(checkpoint, static_length=100),
                                       workdir=tmp_path / "a")
    (tmp_path / "b").mkdir()
    cut = plugins.hook.porter_preprocess(dataset=dataset, workdir=tmp_path / "b",
                                         model=model_config(checkpoint, static_length=100, truncate=True))
    assert max(cut.details["frames"]) == 100 and "an3-spk-b" in cut.details["truncated"]
    assert cut.load(2)["spect"].shape == (1, 1, 161, 100)


def test_dropped_characters_are_reported(env, tmp_path):
    plugins, forms, checkpoint = env
    wav = forms.wav_dir / "an2-spk-b.wav"
    txt = tmp_path / "odd.txt"
    txt.write_text("G-O, 2 go", encoding="utf-8")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"{wav},{txt}\n", encoding="utf-8")
    (tmp_path / "w").mkdir()
    inputs = plugins.hook.porter_preprocess(dataset=dataset_config("an4", manifest=manifest),
                                            model=model_config(checkpoint, dynamic=True), workdir=tmp_path / "w")
    assert inputs.references == ("GO  ",)
    assert inputs.details["dropped_characters"] == {
        "count": 5, "utterances": 1, "characters": {"-": 1, ",": 1, "2": 1, "g": 1, "o": 1}}


def test_dataset_option_errors(env, tmp_path):
    plugins, forms, checkpoint = env
    model = model_config(checkpoint)
    with pytest.raises(InputError, match=r"exactly one of 'manifest'.*got neither"):
        plugins.hook.porter_preprocess(dataset=dataset_config("an4"), model=model, workdir=tmp_path)
    with pytest.raises(InputError, match=r"got both"):
        plugins.hook.porter_preprocess(dataset=dataset_config("an4", manifest=forms.json_manifest,
                                                              an4_root=forms.tree), model=model, workdir=tmp_path)


def test_resample_option(env, tmp_path):
    plugins, _, checkpoint = env
    wav = speak("YES", tmp_path / "y.wav")
    import subprocess
    subprocess.run(["sox", str(wav), "-r", "8000", str(tmp_path / "y8k.wav")], check=True)
    txt = tmp_path / "y.txt"
    txt.write_text("YES")
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"root_path": str(tmp_path),
                                    "samples": [{"wav_path": "y8k.wav", "transcript_path": "y.txt"}]}))
    dataset = dataset_config("an4", manifest=manifest)
    (tmp_path / "a").mkdir()
    with pytest.raises(InputError, match=r"y8k\.wav: sample rate 8000 Hz; expected 16000 Hz"):
        plugins.hook.porter_preprocess(dataset=dataset, model=model_config(checkpoint), workdir=tmp_path / "a")
    model = model_config(checkpoint)
    model = ModelConfig(model.name, {**model.options, "resample": True}, model.export)
    (tmp_path / "b").mkdir()
    inputs = plugins.hook.porter_preprocess(dataset=dataset, model=model, workdir=tmp_path / "b")
    assert abs(inputs.details["frames"][0] - (1 + len(load_audio(wav)) // 160)) <= 1


@pytest.mark.slow
def test_reference_run(env, static_inputs, tmp_path):
    plugins, _, checkpoint = env
    outputs = plugins.hook.porter_run_reference(model=model_config(checkpoint, static_length=STATIC),
                                                inputs=static_inputs, workdir=tmp_path)
    assert outputs.sample_ids == static_inputs.sample_ids and outputs.output_names == ("probs", "out_lengths")
    assert len(outputs.timing.latencies_ms) == 3 and outputs.timing.warmup == 2
    assert all(ms > 0 for ms in outputs.timing.latencies_ms)
    model = load_eval_model(checkpoint)
    for index in range(len(outputs)):
        got = outputs.load(index)
        frames = static_inputs.details["frames"][index]
        assert got["probs"].shape == (1, (frames + 1) // 2, 29) and got["out_lengths"].tolist() == [(frames + 1) // 2]
        assert got["out_lengths"].dtype == np.int32
        with torch.no_grad():
            expected, _ = model(torch.from_numpy(static_inputs.load(index)["spect"]),
                                torch.tensor([frames], dtype=torch.int32))
        np.testing.assert_array_equal(got["probs"], expected.numpy())


def _one_hot_outputs(root, texts, *, extra_frames="ZZZ"):
    """Probabilities that greedy-decode to ``texts``: each character then a blank, followed by frames past
    out_lengths that would decode to ``extra_frames`` if the length were ignored."""
    index = {c: i for i, c in enumerate(V3_LABELS)}
    for sample, text in enumerate(texts):
        frames = [index[c] for ch in text for c in (ch, "_")]
        valid = len(frames)
        frames += [index[c] for c in extra_frames]
        probs = np.full((1, len(frames), 29), 0.01, np.float32)
        probs[0, np.arange(len(frames)), frames] = 0.9
        write_sample(root, sample, {"probs": probs, "out_lengths": np.array([valid], np.int32)})


def test_score_on_known_outputs(env, tmp_path):
    from porter.artifacts import InputSet

    plugins, _, checkpoint = env
    references = ("YES", "G O", "ONE FIVE TWO")
    hypotheses = ("YES", "G", "ONE FIVE TOO")
    inputs = InputSet(path=tmp_path, sample_ids=("a", "b", "c"), input_names=("spect", "lengths"),
                      references=references, groups=("first", "first", "second"),
                      details={"labels": list(V3_LABELS)})
    _one_hot_outputs(tmp_path / "out", hypotheses)
    outputs = OutputSet(path=tmp_path / "out", sample_ids=("a", "b", "c"), output_names=("probs", "out_lengths"),
                        timing=Timing(latencies_ms=(1.0, 1.0, 1.0), wall_seconds=0.003))
    metrics = plugins.hook.porter_score(model=model_config(checkpoint), metrics=("wer", "cer"), inputs=inputs,
                                        outputs=outputs, reference=None)
    # word edits 0 + 1 + 1 over 1 + 2 + 3 words; character edits (spaces removed) 0 + 1 + 1 over 3 + 2 + 10
    assert metrics.values == pytest.approx({
        "wer": 100 * 2 / 6, "cer": 100 * 2 / 15,
        "wer/first": 100 * 1 / 3, "cer/first": 100 * 1 / 5,
        "wer/second": 100 * 1 / 3, "cer/second": 100 * 1 / 10,
    })
    assert [(s.id, s.reference, s.hypothesis) for s in metrics.samples] == list(zip("abc", references, hypotheses))
    assert [s.errors for s in metrics.samples] == [
        {"wer": 0.0, "cer": 0.0}, {"wer": 50.0, "cer": 50.0}, {"wer": pytest.approx(100 / 3), "cer": 10.0}]
    only_wer = plugins.hook.porter_score(model=model_config(checkpoint), metrics=("wer",), inputs=inputs,
                                         outputs=outputs, reference=None)
    assert set(only_wer.values) == {"wer", "wer/first", "wer/second"}


def test_score_of_the_reference_run_matches_its_decoding(env, static_inputs, tmp_path):
    from porter_deepspeech.decode import greedy_decode
    from porter_deepspeech.metrics import corpus_wer_cer

    plugins, _, checkpoint = env
    model = model_config(checkpoint, static_length=STATIC)
    outputs = plugins.hook.porter_run_reference(model=model, inputs=static_inputs, workdir=tmp_path)
    metrics = plugins.hook.porter_score(model=model, metrics=("wer", "cer"), inputs=static_inputs, outputs=outputs,
                                       reference=None)
    hypotheses = [greedy_decode(outputs.load(i)["probs"], outputs.load(i)["out_lengths"], V3_LABELS)[0]
                  for i in range(len(outputs))]
    assert [s.hypothesis for s in metrics.samples] == hypotheses
    wer, cer = corpus_wer_cer(zip(static_inputs.references, hypotheses))
    assert metrics.values["wer"] == wer and metrics.values["cer/test"] == cer
