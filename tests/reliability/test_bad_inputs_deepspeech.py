"""Issue 23's deepspeech rows of the bad-input matrix: checkpoints whose weights or configuration cannot describe a
model, blank references, non-finite float audio, label lists that would decode silently wrong, a transcript path
that is a folder.

Each row runs `porter run` on one bad input and asserts exit 2, one line naming the file, the field or tensor and
what was expected, no traceback, no half-written artifact, and then a good run in the same workspace that works.
The machinery (the Case folder, the tiny checkpoint and the spoken utterance) is test_bad_inputs.py's.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from test_bad_inputs import (  # noqa: F401
    SAMPLE_RATE,
    Case,
    Expect,
    _preprocessed,
    assert_no_partial_artifacts,
    case,
    error_text,
    speech,
)

from porter.errors import EXIT_USAGE

ROWS: dict[str, Callable[[Case], Expect]] = {}


def row(function: Callable[[Case], Expect]) -> Callable[[Case], Expect]:
    ROWS[function.__name__] = function
    return function


def _tiny(c: Case) -> dict:
    import torch

    return torch.load(str(c.speech.checkpoint), weights_only=True)  # porter's saver writes plain containers


def _checkpoint_with(c: Case, name: str, change: Callable[[dict], None]) -> Path:
    import torch

    data = _tiny(c)
    change(data)
    path = c.root / name
    torch.save(data, str(path))
    return path


def _config_row(c: Case, name: str, change: Callable[[dict], None], says: tuple[str, ...]) -> Expect:
    checkpoint = _checkpoint_with(c, name, lambda data: change(data["hyper_parameters"]))
    return Expect(c.run_args(c.ds_recipe(checkpoint=checkpoint)), checkpoint, says)


def _sidecar_row(c: Case, sidecar_bytes: bytes, says: tuple[str, ...]) -> Expect:
    import torch

    weights = c.root / "weights.pt"
    torch.save(_tiny(c)["state_dict"], str(weights))
    sidecar = c.root / "weights.pt.yaml"
    sidecar.write_bytes(sidecar_bytes)
    return Expect(c.run_args(c.ds_recipe(checkpoint=weights)), sidecar, says)


# --- weights (#1) ------------------------------------------------------------------------------------------

@row
def checkpoint_with_a_nan_weight(c: Case) -> Expect:
    def poison(data):
        data["state_dict"]["rnns.0.rnn.weight_hh_l0"][3, 5] = float("nan")

    checkpoint = _checkpoint_with(c, "nan.ckpt", poison)
    return Expect(c.run_args(c.ds_recipe(checkpoint=checkpoint)), checkpoint,
                  ("rnns.0.rnn.weight_hh_l0", "holds 1 NaN/Inf value(s)", "expected finite weights"))


@row
def checkpoint_with_all_weights_nan(c: Case) -> Expect:
    def poison(data):
        for tensor in data["state_dict"].values():
            if tensor.is_floating_point():
                tensor.fill_(float("nan"))

    checkpoint = _checkpoint_with(c, "all_nan.ckpt", poison)
    return Expect(c.run_args(c.ds_recipe(checkpoint=checkpoint)), checkpoint,
                  ("conv.seq_module.0.weight", "NaN/Inf value(s)", "expected finite weights"))


@row
def checkpoint_with_an_infinite_weight(c: Case) -> Expect:
    def poison(data):
        data["state_dict"]["fc.0.module.1.weight"][0, 0] = float("-inf")

    checkpoint = _checkpoint_with(c, "inf.ckpt", poison)
    return Expect(c.run_args(c.ds_recipe(checkpoint=checkpoint)), checkpoint,
                  ("fc.0.module.1.weight", "holds 1 NaN/Inf value(s)"))


# --- configurations, checked when the checkpoint is loaded (#10) --------------------------------------------

@row
def hidden_size_of_a_trillion(c: Case) -> Expect:
    return _config_row(c, "huge.ckpt", lambda hp: hp["model_cfg"].update(hidden_size=10 ** 12),
                       ("model_cfg.hidden_size", "is 1000000000000", "expected a whole number from 1 to 65536"))


@row
def hidden_size_not_a_number(c: Case) -> Expect:
    return _config_row(c, "text_size.ckpt", lambda hp: hp["model_cfg"].update(hidden_size="1e12"),
                       ("model_cfg.hidden_size", "is '1e12'", "expected a whole number"))


@row
def model_cfg_a_list(c: Case) -> Expect:
    return _config_row(c, "cfg_list.ckpt", lambda hp: hp.update(model_cfg=["lstm", 16, 1]),
                       ("model_cfg", "is a list", "expected a mapping with rnn_type, hidden_size"))


@row
def model_cfg_a_string(c: Case) -> Expect:
    return _config_row(c, "cfg_str.ckpt", lambda hp: hp.update(model_cfg="lstm"),
                       ("model_cfg", "is a str ('lstm')", "expected a mapping"))


@row
def unknown_rnn_type(c: Case) -> Expect:
    return _config_row(c, "rnn.ckpt", lambda hp: hp["model_cfg"].update(rnn_type="transformer"),
                       ("model_cfg.rnn_type", "'transformer'", "expected one of ['gru', 'lstm', 'rnn']"))


@row
def window_named_os_system(c: Case) -> Expect:
    return _config_row(c, "window.ckpt", lambda hp: hp["spect_cfg"].update(window="os.system"),
                       ("spect_cfg.window", "'os.system'", "expected one of ['hamming', 'hann'"))


@row
def window_stride_zero(c: Case) -> Expect:
    return _config_row(c, "stride.ckpt", lambda hp: hp["spect_cfg"].update(window_stride=0),
                       ("spect_cfg.window_stride", "is 0", "expected a positive number of seconds"))


@row
def window_stride_below_one_sample(c: Case) -> Expect:
    return _config_row(c, "hop.ckpt", lambda hp: hp["spect_cfg"].update(window_stride=1e-6),
                       ("spect_cfg.window_stride", "less than one sample at 16000 Hz"))


@row
def spect_cfg_a_list(c: Case) -> Expect:
    return _config_row(c, "spect_list.ckpt", lambda hp: hp.update(spect_cfg=[16000, 0.02]),
                       ("spect_cfg", "is a list", "expected a mapping with sample_rate"))


@row
def sidecar_not_utf8(c: Case) -> Expect:
    text = "labels: ['_', 'É']\n".encode("latin-1")
    return _sidecar_row(c, text, ("sidecar config is not UTF-8", "expected UTF-8"))


@row
def sidecar_with_broken_yaml(c: Case) -> Expect:
    return _sidecar_row(c, b"labels: [_, A\nmodel_cfg: {hidden_size: 16\n",
                        ("malformed YAML at line", "expected a mapping with labels, model_cfg and spect_cfg"))


# --- labels (#13) ------------------------------------------------------------------------------------------

def _labels_row(c: Case, name: str, edit: Callable[[list], None], says: tuple[str, ...]) -> Expect:
    def change(hp):
        labels = list(hp["labels"])
        edit(labels)
        hp["labels"] = labels

    return _config_row(c, name, change, says)


@row
def labels_with_a_duplicate(c: Case) -> Expect:
    return _labels_row(c, "dup.ckpt", lambda labels: labels.__setitem__(5, "A"),
                       ("labels[5]", "'A' repeats labels[2]", "expected each character once"))


@row
def labels_with_a_multi_character_entry(c: Case) -> Expect:
    return _labels_row(c, "multi.ckpt", lambda labels: labels.__setitem__(3, "BB"),
                       ("labels[3]", "is 'BB'", "expected a single character"))


@row
def labels_with_an_empty_entry(c: Case) -> Expect:
    return _labels_row(c, "empty_label.ckpt", lambda labels: labels.__setitem__(7, ""),
                       ("labels[7]", "is ''", "expected a single character"))


@row
def labels_without_the_blank_first(c: Case) -> Expect:
    return _labels_row(c, "blank.ckpt", lambda labels: labels.reverse(),
                       ("labels[0]", "expected the CTC blank '_' at index 0"))


# --- references (#2) and transcript paths -------------------------------------------------------------------

@row
def empty_transcript(c: Case) -> Expect:
    manifest = c.manifest(transcript=b"")
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.txt",
                  ("transcript is empty", "expected the words spoken", "cannot be scored"))


@row
def whitespace_transcript(c: Case) -> Expect:
    manifest = c.manifest(transcript=b"   \n")
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.txt",
                  ("transcript is only whitespace", "expected the words spoken"))


@row
def transcript_without_a_single_label(c: Case) -> Expect:
    manifest = c.manifest(transcript="42 ?! é".encode())
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.txt",
                  ("transcript '42 ?! é' has no character the model's labels can express", "expected words in"))


@row
def transcript_path_is_a_folder(c: Case) -> Expect:
    manifest = c.manifest(transcript=None)
    (manifest.parent / "utt.txt").mkdir()
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest,
                  ("samples[0]", f"transcript file {manifest.parent / 'utt.txt'} is a folder",
                   "expected a UTF-8 text file"))


@row
def audio_path_is_a_folder(c: Case) -> Expect:
    manifest = c.manifest(audio=None)
    (manifest.parent / "utt.wav").mkdir()
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest,
                  ("samples[0]", f"audio file {manifest.parent / 'utt.wav'} is a folder", "expected a 16 kHz wav"))


# --- float audio (#3) --------------------------------------------------------------------------------------

def _float_wav(c: Case, samples: np.ndarray, subtype: str = "FLOAT") -> Path:
    import soundfile as sf

    manifest = c.manifest(audio=None)
    sf.write(str(manifest.parent / "utt.wav"), samples, SAMPLE_RATE, subtype=subtype)
    return manifest


@row
def float_audio_with_nan(c: Case) -> Expect:
    samples = c.speech.samples() / 32768.0
    samples[100:103] = np.nan
    manifest = _float_wav(c, samples)
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.wav",
                  ("float audio holds 3 NaN/Inf sample(s), the first at sample 100", "expected finite samples"))


@row
def double_audio_with_inf(c: Case) -> Expect:
    samples = c.speech.samples() / 32768.0
    samples[-1] = np.inf
    manifest = _float_wav(c, samples, subtype="DOUBLE")
    return Expect(c.run_args(c.ds_recipe(manifest=manifest)), manifest.parent / "utt.wav",
                  ("double audio holds 1 NaN/Inf sample(s)",))


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_exits_2_in_one_line_and_a_good_run_follows(name, case):
    expect = ROWS[name](case)
    code, out, err = case.porter(*expect.args)
    assert code == EXIT_USAGE, out + err
    assert "Traceback" not in out + err
    message = error_text(err)
    # one line; the CLI may add its own line saying which stage and variant the error surfaced in
    lines = message.strip().splitlines()
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].strip().startswith("(in the ")), message
    assert str(expect.file) in message, message
    for fragment in expect.says:
        assert fragment in message, f"{fragment!r} not in: {message}"
    assert_no_partial_artifacts(case.workspace)
    # the workspace is still usable: the good checkpoint and utterance run in it
    good = case.ds_recipe(checkpoint=case.speech.checkpoint, manifest=case_manifest_fresh(case))
    code, out, err = case.porter(*case.run_args(good))
    assert code == 0, out + err


def case_manifest_fresh(case: Case) -> Path:
    data = case.root / "data"
    for name in ("utt.wav", "utt.txt"):
        path = data / name
        if path.is_dir():
            path.rmdir()
    return case.manifest()


def test_float_audio_is_put_on_the_16_bit_grid_and_clipping_is_reported(case):
    """A float copy of the 16-bit file gives the same spectrogram; samples beyond full scale are clipped to it and
    counted in the preprocess details and on stderr."""
    from porter_deepspeech.features import spectrogram

    pcm = case.speech.samples()
    samples = pcm / 32768.0
    samples[:50] = 1.7  # beyond full scale
    samples[50:60] = -3.0
    manifest = _float_wav(case, samples)
    code, out, err = case.porter(*case.run_args(case.ds_recipe(manifest=manifest)))
    assert code == 0, out + err
    description, (spect,) = _preprocessed(case.workspace)
    assert description["details"]["clipped_samples"] == {"count": 60, "utterances": {"utt": 60}}
    assert "clipped 60 float sample(s) beyond 16-bit full scale" in err and "utt (60)" in err
    expected = pcm.astype(np.float32) / 32768.0
    expected[:50], expected[50:60] = 32767 / 32768.0, -1.0
    np.testing.assert_allclose(spect[0, 0], spectrogram(expected), atol=1e-5)


def test_sixteen_bit_audio_reports_no_clipping(case):
    code, out, err = case.porter(*case.run_args(case.ds_recipe()))
    assert code == 0, out + err
    description, _ = _preprocessed(case.workspace)
    assert description["details"]["clipped_samples"] == {"count": 0, "utterances": {}}
    assert "clipped" not in err
