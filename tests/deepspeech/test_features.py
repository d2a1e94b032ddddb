"""The V3.0 front end on real (synthesised) audio against an independent numpy computation; audio loading."""
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from porter.errors import InputError
from porter_deepspeech.features import load_audio, spectrogram
from porter_deepspeech.model import SpectConfig


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.skip("espeak-ng and sox are needed to make real speech for this test")
    folder = tmp_path_factory.mktemp("speech")
    raw, wav = folder / "raw.wav", folder / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(raw), "enter one five oh two"], check=True)
    subprocess.run(["sox", "-V1", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(wav)], check=True)
    return wav


def numpy_v3_spectrogram(samples: np.ndarray) -> np.ndarray:
    """Written from the V3.0 description alone: reflect-pad n_fft/2, periodic hamming, |rfft|, log1p, normalise."""
    n_fft, hop = 320, 160
    padded = np.pad(samples.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.54 - 0.46 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic
    n_frames = 1 + (len(padded) - n_fft) // hop
    frames = np.stack([padded[i * hop: i * hop + n_fft] * window for i in range(n_frames)], axis=1)
    spect = np.log1p(np.abs(np.fft.rfft(frames, axis=0)))
    return (spect - spect.mean()) / spect.std(ddof=1)


@pytest.mark.slow
def test_spectrogram_equals_independent_computation(speech_wav):
    samples = load_audio(speech_wav)
    ours = spectrogram(samples, SpectConfig())
    reference = numpy_v3_spectrogram(samples)
    assert ours.shape == (161, 1 + len(samples) // 160) == reference.shape
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=2e-4)
    # the first frame is where zero padding (librosa >= 0.9's default) would differ from reflect padding
    np.testing.assert_allclose(ours[:, 0], reference[:, 0], atol=2e-4)


def test_spectrogram_unnormalised_is_log1p_magnitude(speech_wav):
    samples = load_audio(speech_wav)
    raw = spectrogram(samples, SpectConfig(), normalize=False)
    assert raw.min() >= 0
    normalised = spectrogram(samples, SpectConfig())
    np.testing.assert_allclose(normalised, (raw - raw.mean()) / raw.std(ddof=1), atol=1e-5)


def test_load_audio_is_int16_over_32768(tmp_path):
    pcm = np.array([0, 1, -1, 32767, -32768, 16384], np.int16)
    path = tmp_path / "x.wav"
    sf.write(str(path), pcm, 16000, subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(path), pcm.astype(np.float32) / 32768.0)


def test_stereo_is_averaged(tmp_path):
    left = np.array([1000, 2000, -3000], np.int16)
    right = np.array([3000, 0, -1000], np.int16)
    path = tmp_path / "st.wav"
    sf.write(str(path), np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(path), (left / 32768.0 + right / 32768.0) / 2, atol=1e-7)


def test_wrong_rate_rejected_or_resampled(tmp_path):
    path = tmp_path / "8k.wav"
    sf.write(str(path), (np.sin(np.arange(8000) / 5) * 8000).astype(np.int16), 8000, subtype="PCM_16")
    with pytest.raises(InputError, match=r"8k\.wav.*8000 Hz"):
        load_audio(path)
    resampled = load_audio(path, resample=True)
    assert abs(len(resampled) - 16000) <= 1


def test_non_audio_and_empty_files_named(tmp_path):
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    with pytest.raises(InputError, match="notes.wav"):
        load_audio(text)
    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros(0, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(InputError, match="empty.wav"):
        load_audio(empty)
    with pytest.raises(InputError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
