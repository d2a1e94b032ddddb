"""The deepspeech.pytorch V3.0 audio front end: int16/32768 samples, hamming STFT, log1p magnitude, normalised."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from porter.api import InputError

from .model import SpectConfig

# librosa's numba kernels cache next to the package; a read-only site-packages would recompile every process.
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "porter-numba-cache"))


# libsndfile hands float files to an int16 read unscaled (0.5 becomes 0), so they are read as floats and put on
# the 16-bit scale here.
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")
INT16_FULL_SCALE = 32768.0


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples on V3.0's scale (int16 / 32768) and how many were clipped to get there."""

    samples: np.ndarray
    clipped: int = 0  # samples of a float file beyond 16-bit full scale, clipped to it


def read_audio(path, *, resample: bool = False, sample_rate: int = 16000) -> Audio:
    """Mono float32 samples as V3.0's torchaudio sox_io loading gives them (int16 / 32768, channels averaged).

    A float wav is put on the same 16-bit grid (so a float copy of a 16-bit file gives the same spectrogram):
    non-finite samples are refused, and samples beyond full scale are clipped and counted."""
    import soundfile as sf

    path = Path(path)
    clipped = 0
    try:
        subtype = sf.info(str(path)).subtype
        if subtype in FLOAT_SUBTYPES:
            data, rate = sf.read(str(path), dtype="float64", always_2d=True)
        else:
            data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as exc:  # soundfile raises several types for missing or non-audio files
        raise InputError(f"cannot read audio ({exc}); expected a 16 kHz mono 16-bit wav", file=path) from None
    if data.shape[0] == 0:
        raise InputError("audio file holds no samples; expected a non-empty 16 kHz wav", file=path)
    if subtype in FLOAT_SUBTYPES:
        finite = np.isfinite(data)
        if not finite.all():
            first = int(np.argwhere(~finite)[0][0])
            raise InputError(f"{subtype.lower()} audio holds {int((~finite).sum())} NaN/Inf sample(s), the first at "
                             f"sample {first}; expected finite samples", file=path)
        levels = np.rint(data * INT16_FULL_SCALE)
        beyond = (levels > 32767) | (levels < -32768)
        clipped = int(beyond.sum())
        data = np.clip(levels, -32768, 32767).astype(np.int16)
    samples = data.astype(np.float32) / np.float32(INT16_FULL_SCALE)
    samples = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if rate != sample_rate:
        if not resample:
            raise InputError(f"sample rate {rate} Hz; expected {sample_rate} Hz (set the model option "
                             "`resample: true` in the recipe to convert it)", file=path)
        import librosa
        samples = librosa.resample(samples, orig_sr=rate, target_sr=sample_rate).astype(np.float32)
    return Audio(samples=np.ascontiguousarray(samples, dtype=np.float32), clipped=clipped)


def load_audio(path, *, resample: bool = False, sample_rate: int = 16000) -> np.ndarray:
    """The samples of :func:`read_audio`."""
    return read_audio(path, resample=resample, sample_rate=sample_rate).samples


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
