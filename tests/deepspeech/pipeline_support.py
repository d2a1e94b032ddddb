"""Shared helpers for the deepspeech pipeline tests: real speech made with espeak-ng, AN4 in all three forms,
a tiny random DeepSpeech checkpoint, and a plugin manager holding the deepspeech plugin."""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

# id -> transcript: short AN4-style prompts (spelled letters, digits, control words)
PROMPTS = {
    "an1-spk-b": "YES",
    "an2-spk-b": "G O",
    "an3-spk-b": "ONE FIVE TWO",
}


@dataclass(frozen=True)
class An4Forms:
    """The same utterances as a V3 JSON manifest, a CSV manifest and an original-style AN4 tree."""

    json_manifest: Path
    csv_manifest: Path
    tree: Path  # the an4/ folder
    wav_dir: Path


def require_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")


def speak(text: str, out_wav: Path, *, voice: str = "en-us", words_per_minute: int = 170) -> Path:
    """Real speech: espeak-ng at its own rate, then sox to 16 kHz mono 16-bit as AN4 is."""
    require_tools("espeak-ng", "sox")
    raw = out_wav.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text],
                   check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", "-e", "signed-integer", str(out_wav)],
                   check=True, capture_output=True)
    raw.unlink()
    return out_wav


def write_an4_forms(root: Path, prompts: dict[str, str] = PROMPTS) -> An4Forms:
    """Speak each prompt once and write it in the three layouts users have AN4 in."""
    import soundfile as sf

    split_dir = root / "test"
    wav_dir, txt_dir = split_dir / "an4" / "wav", split_dir / "an4" / "txt"
    wav_dir.mkdir(parents=True)
    txt_dir.mkdir(parents=True)
    tree = root / "an4"
    (tree / "etc").mkdir(parents=True)
    samples, csv_lines, fileids, transcription = [], [], [], []
    for index, (utt_id, text) in enumerate(prompts.items()):
        wav = speak(text, wav_dir / f"{utt_id}.wav", voice=("en-us", "en", "en-us+f3")[index % 3])
        (txt_dir / f"{utt_id}.txt").write_text(text, encoding="utf-8")
        samples.append({"wav_path": f"an4/wav/{utt_id}.wav", "transcript_path": f"an4/txt/{utt_id}.txt"})
        csv_lines.append(f"{wav},{txt_dir / f'{utt_id}.txt'}")
        # The original distribution: headerless big-endian 16-bit, speaker folders, ids in etc/.
        speaker = utt_id.split("-")[1]
        raw = tree / "wav" / "an4test_clstk" / speaker / f"{utt_id}.raw"
        raw.parent.mkdir(parents=True, exist_ok=True)
        pcm, rate = sf.read(str(wav), dtype="int16")
        assert rate == 16000
        raw.write_bytes(pcm.astype(">i2").tobytes())
        fileids.append(f"an4test_clstk/{speaker}/{utt_id}")
        transcription.append(f"<s> {text.lower() if index == 1 else text} </s> ({utt_id})")
    json_manifest = root / "an4_test_manifest.json"
    json_manifest.write_text(json.dumps({"root_path": str(split_dir), "samples": samples}), encoding="utf-8")
    csv_manifest = root / "an4_test_manifest.csv"
    csv_manifest.write_text("\n".join(csv_lines) + "\n", encoding="utf-8")
    (tree / "etc" / "an4_test.fileids").write_text("\n".join(fileids) + "\n", encoding="utf-8")
    (tree / "etc" / "an4_test.transcription").write_text("\n".join(transcription) + "\n", encoding="utf-8")
    return An4Forms(json_manifest=json_manifest, csv_manifest=csv_manifest, tree=tree, wav_dir=wav_dir)


def tiny_checkpoint(path: Path, *, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A random DeepSpeech small enough for tests, saved in V3 form; BatchNorm statistics are randomised too,
    so running means/variances take part in every comparison."""
    import torch

    from porter_deepspeech.checkpoint import save_checkpoint
    from porter_deepspeech.labels import V3_LABELS
    from porter_deepspeech.model import DeepSpeech, ModelConfig, SpectConfig

    torch.manual_seed(seed)
    model_cfg, spect_cfg = ModelConfig(hidden_size=hidden, hidden_layers=layers), SpectConfig()
    model = DeepSpeech(list(V3_LABELS), model_cfg, spect_cfg)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 1.5)
    return save_checkpoint(path, model.eval(), labels=list(V3_LABELS), model_cfg=model_cfg, spect_cfg=spect_cfg)


def deepspeech_plugins():
    """The plugin manager porter builds, holding the deepspeech plugin (no other entry-point plugins)."""
    from porter.plugins import load_plugins
    from porter_deepspeech import plugin

    try:
        return load_plugins(use_entry_points=False, extra_objects=[("deepspeech", plugin)])
    except ModuleNotFoundError as missing:
        if not (missing.name or "").startswith("porter.builtin."):
            raise
    # A builtin of the core is still being written: the same hook specs, the deepspeech plugin alone.
    import pluggy

    from porter import PROJECT_NAME, hookspecs

    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, name="deepspeech")
    manager.check_pending()
    return manager


def model_config(checkpoint: Path, **export):
    """The validated ModelConfig the core would hand the hooks (defaults filled from the plugin's spec)."""
    from porter.specs import ModelConfig
    from porter_deepspeech.plugin import porter_register_models

    spec = porter_register_models()[0]
    options = {name: opt.default for name, opt in spec.options.items()}
    options["checkpoint"] = checkpoint
    settings = {name: opt.default for name, opt in spec.export_options.items()}
    settings.update(export)
    return ModelConfig(name=spec.name, options=options, export=settings)


def dataset_config(name: str, **options):
    from porter.specs import DatasetConfig
    from porter_deepspeech.plugin import porter_register_datasets

    spec = next(s for s in porter_register_datasets() if s.name == name)
    values = {key: opt.default for key, opt in spec.options.items()}
    values.update(options)
    return DatasetConfig(name=name, options=values)
