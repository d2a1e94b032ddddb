"""The configuration a checkpoint carries (labels, model_cfg, spect_cfg), checked when the checkpoint is loaded.

A value that cannot describe a V3 model is refused here, naming the file it came from (the checkpoint or its
sidecar) and the field, instead of failing later inside a stage (an STFT window called ``system``, a hop of zero
samples, a hidden size of 10^12 that no machine can hold).
"""
from __future__ import annotations

import math

from porter.api import InputError

from .labels import BLANK, BLANK_INDEX
from .model import RNN_TYPES, ModelConfig, SpectConfig

TORCH_NN_CLASS_TO_RNN = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
# deepspeech.pytorch V3's SpectrogramWindow enum: the windows its front end (and porter's) computes
WINDOWS = ("hamming", "hann", "blackman", "bartlett")
# Far above any DeepSpeech2 (V3's largest config is 1024 x 5, lookahead 20); beyond them a model cannot be
# built in memory, so the value is a mistake rather than a model.
MAX_HIDDEN_SIZE = 1 << 16
MAX_HIDDEN_LAYERS = 100
MAX_LOOKAHEAD = 1000
MAX_SAMPLE_RATE = 384_000
MAX_FFT = 1 << 16


def _mapping(raw, path, field: str, expected: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputError(f"is a {type(raw).__name__} ({_short(raw)}); expected a mapping with {expected}",
                         file=path, field=field)
    return raw


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole_number(raw: dict, key: str, default: int, *, low: int, high: int, path, section: str) -> int:
    value = raw.get(key, default)
    field = f"{section}.{key}"
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value)
    else:
        number = None
    if number is None:
        raise InputError(f"is {_short(value)}; expected a whole number from {low} to {high}", file=path, field=field)
    if not low <= number <= high:
        raise InputError(f"is {number}; expected a whole number from {low} to {high}", file=path, field=field)
    return number


def _positive_number(raw: dict, key: str, default: float, *, path, section: str) -> float:
    value = raw.get(key, default)
    field = f"{section}.{key}"
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise InputError(f"is {_short(value)}; expected a positive number of seconds", file=path, field=field)
    return number


def model_config_from(raw, state_dict, path) -> ModelConfig:
    """model_cfg as V3 writes it (rnn_type, hidden_size, hidden_layers, lookahead_context), or porter's form with
    ``bidirectional``. Whether it is bidirectional comes from the config's class where the pickle names it, as in
    V3.0 (``OmegaConf.get_type(model_cfg) is BiDirectionalConfig``), else from the weights."""
    raw = _mapping(raw, path, "model_cfg", "rnn_type, hidden_size and hidden_layers")
    named = str(raw.get("rnn_type", "lstm"))
    rnn_type = TORCH_NN_CLASS_TO_RNN.get(named.rsplit(".", 1)[-1].upper(), named.lower())
    if rnn_type not in RNN_TYPES:
        raise InputError(f"is {_short(raw.get('rnn_type'))}; expected one of {sorted(RNN_TYPES)}", file=path,
                         field="model_cfg.rnn_type")
    if "bidirectional" in raw:
        if not isinstance(raw["bidirectional"], bool):
            raise InputError(f"is {_short(raw['bidirectional'])}; expected true or false", file=path,
                             field="model_cfg.bidirectional")
        bidirectional = raw["bidirectional"]
    elif raw.get("_config_type") in ("BiDirectionalConfig", "UniDirectionalConfig"):
        bidirectional = raw["_config_type"] == "BiDirectionalConfig"
    else:
        bidirectional = "lookahead.0.conv.weight" not in state_dict
    common = {"path": path, "section": "model_cfg"}
    return ModelConfig(
        rnn_type=rnn_type,
        hidden_size=_whole_number(raw, "hidden_size", 1024, low=1, high=MAX_HIDDEN_SIZE, **common),
        hidden_layers=_whole_number(raw, "hidden_layers", 5, low=1, high=MAX_HIDDEN_LAYERS, **common),
        bidirectional=bidirectional,
        lookahead_context=_whole_number(raw, "lookahead_context", 20, low=1, high=MAX_LOOKAHEAD, **common))


def spect_config_from(raw, path) -> SpectConfig:
    """spect_cfg: sample rate, window size and stride in seconds, and one of V3's windows."""
    raw = _mapping(raw, path, "spect_cfg", "sample_rate, window_size, window_stride and window")
    common = {"path": path, "section": "spect_cfg"}
    sample_rate = _whole_number(raw, "sample_rate", 16000, low=1, high=MAX_SAMPLE_RATE, **common)
    window_size = _positive_number(raw, "window_size", 0.02, **common)
    window_stride = _positive_number(raw, "window_stride", 0.01, **common)
    window_value = raw.get("window", "hamming")
    # an enum member is read as its value ("hamming"); a string may spell it "SpectrogramWindow.hamming"
    window = str(window_value).rsplit(".", 1)[-1] if isinstance(window_value, str) else None
    if window not in WINDOWS:
        raise InputError(f"is {_short(window_value)}; expected one of {list(WINDOWS)}", file=path,
                         field="spect_cfg.window")
    cfg = SpectConfig(sample_rate=sample_rate, window_size=window_size, window_stride=window_stride, window=window)
    if not 2 <= cfg.n_fft <= MAX_FFT:
        raise InputError(f"window_size {window_size} s at {sample_rate} Hz is a {cfg.n_fft}-sample window; "
                         f"expected 2 to {MAX_FFT} samples", file=path, field="spect_cfg.window_size")
    if cfg.hop_length < 1:
        raise InputError(f"is {window_stride} s, less than one sample at {sample_rate} Hz; expected a hop of at "
                         "least one sample", file=path, field="spect_cfg.window_stride")
    return cfg


def labels_from(raw, path) -> list[str]:
    """The output alphabet: single characters, each once, the CTC blank first (porter decodes index 0 as the
    blank, where V3's labels.json puts it); a duplicate or a multi-character entry would decode silently wrong."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise InputError(f"is {_short(raw)}; expected a list of characters with the blank {BLANK!r} first",
                         file=path, field="labels")
    seen: dict[str, int] = {}
    for index, label in enumerate(raw):
        field = f"labels[{index}]"
        if not isinstance(label, str) or len(label) != 1:
            raise InputError(f"is {_short(label)}; expected a single character", file=path, field=field)
        if label in seen:
            raise InputError(f"{label!r} repeats labels[{seen[label]}]; expected each character once", file=path,
                             field=field)
        seen[label] = index
    if raw[BLANK_INDEX] != BLANK:
        raise InputError(f"is {raw[BLANK_INDEX]!r}; expected the CTC blank {BLANK!r} at index {BLANK_INDEX}",
                         file=path, field=f"labels[{BLANK_INDEX}]")
    return list(raw)
