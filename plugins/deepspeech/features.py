"""The deepspeech.pytorch V3.0 audio front end: int16/32768 samples, hamming STFT, log1p magnitude, normalised."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from porter.api import InputError

from .model import SpectConfig

# librosa's numba kernels cache next to the package; a read-only site-packages would recompile every process.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "porter-numba-cache"))


def load_audio(path, *, resample: bool = False, sample_rate: int = 16000) -> np.ndarray:
    """Mono float32 samples as V3.0's torchaudio sox_io loading gives them (int16 / 32768, channels averaged)."""
    import soundfile as sf

    path = Path(path)
    try:
        data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as exc:  # soundfile raises several types for missing or non-audio files
        raise InputError(f"cannot read audio ({exc}); expected a 16 kHz mono 16-bit wav", file=path) from None
    if data.shape[0] == 0:
        raise InputError("audio file holds no samples; expected a non-empty 16 kHz wav", file=path)
    samples = data.astype(np.float32) / 32768.0
    samples = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if rate != sample_rate:
        if not resample:
            raise InputError(f"sample rate {rate} Hz; expected {sample_rate} Hz (set the model option "
                             "`resample: true` in the recipe to convert it)", file=path)
        import librosa
        samples = librosa.resample(samples, orig_sr=rate, target_sr=sample_rate).astype(np.float32)
    return np.ascontiguousarray(samples, dtype=np.float32)


def check_usable(samples: np.ndarray, spect_cfg: SpectConfig, path) -> None:
    """Refuse audio the front end cannot turn into a meaningful spectrogram, naming the file.

    The reference's centred STFT reflect-pads half a window on each side, which needs more samples than that
    (torch refuses shorter input); all-zero audio has a constant spectrogram whose normalisation divides 0 by 0
    and would feed NaN to every model."""
    shortest = spect_cfg.n_fft // 2 + 1
    rate = spect_cfg.sample_rate
    if samples.size < shortest:
        raise InputError(f"audio has {samples.size} samples ({1000 * samples.size / rate:.1f} ms); expected at "
                         f"least {shortest} ({1000 * shortest / rate:.1f} ms at {rate} Hz), more than the half "
                         "window the centred STFT pads on each side", file=path)
    if not np.any(samples):
        raise InputError(f"audio is digital silence (all {samples.size} samples are 0), so its normalised "
                         "spectrogram is 0/0; expected a recording with sound in it", file=path)


def spectrogram(samples: np.ndarray, spect_cfg: SpectConfig | None = None, *, normalize: bool = True) -> np.ndarray:
    """[n_bins, T] float32 log-magnitude spectrogram with T = 1 + len(samples) // hop."""
    import librosa

    cfg = spect_cfg or SpectConfig()
    n_fft = cfg.n_fft
    stft = librosa.stft(np.asarray(samples, dtype=np.float32), n_fft=n_fft, hop_length=cfg.hop_length,
                        win_length=n_fft, window=cfg.window, center=True, pad_mode="reflect")
    spect = np.log1p(np.abs(stft)).astype(np.float32)
    if normalize:
        mean = spect.mean(dtype=np.float64)
        std = spect.std(ddof=1, dtype=np.float64)  # torch's .std() is unbiased
        spect = ((spect - mean) / std).astype(np.float32)
    return spect
