"""Synthesise an AN4-style corpus: wav + txt per utterance and V3 JSON/CSV manifests per split.

Each split is planned from (seed, split name) alone, so generating only the test splits on first use yields
the same audio as a full run. A split whose completion marker matches its plan is reused as it is.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from porter.api import atomic_path, atomic_write_text

from . import engines
from .prompts import Prompt, Token, random_prompt
from .voices import (
    FESTIVAL_TRAIN_VOICES,
    FLITE_DEV_VOICES,
    FLITE_TRAIN_VOICES,
    UNSEEN_ENGINE_VOICES,
    Voice,
    espeak_partition,
)

SPLITS = ("train", "dev", "test_unseen_voices", "test_unseen_engine")
DEFAULT_SIZES = {"train": 6000, "dev": 300, "test_unseen_voices": 130, "test_unseen_engine": 130}
MARKER = ".complete.json"
FORMAT_VERSION = 2  # 2: sox writes float, no random dither (bit-exact reruns)
# Voices whose engine takes an F0 target (measured: rms ignores flite's int_f0_target_mean).
F0_TARGET_VOICES = {("flite", "kal"), ("flite", "kal16"), ("flite", "awb"), ("festival", "kal_diphone"),
                    ("festival", "ked_diphone")}
CHUNK = 24


@dataclass(frozen=True)
class UttPlan:
    uid: str
    engine: str
    voice: str
    tokens: tuple[Token, ...]
    transcript: str
    words_per_minute: int  # espeak-ng
    espeak_pitch: int
    duration_stretch: float  # flite, festival
    pitch_cents: float  # sox pitch shift after synthesis: moves F0 and formants together
    gain_db: float
    snr_db: float | None  # white noise; None = clean
    lead_s: float
    trail_s: float
    noise_seed: int
    f0_mean_hz: float | None = None  # the engine's own F0 target (formants stay); None = the voice's own


def choose_voice(rng: random.Random, split: str, seed: int) -> Voice:
    part = espeak_partition(seed)
    if split == "test_unseen_voices":
        return rng.choice(part.test)
    if split == "test_unseen_engine":
        engine, name = rng.choice(UNSEEN_ENGINE_VOICES)
        return Voice(engine, name, True)
    if split == "dev":
        if rng.random() < 0.65:
            return rng.choice(part.dev)
        return Voice("flite", rng.choice(FLITE_DEV_VOICES), False)
    roll = rng.random()
    if roll < 0.6:
        # Female variants are few among espeak-ng's: weight them up (x3) since the unseen engine is female.
        weights = [3.0 if v.female else 1.0 for v in part.train]
        return rng.choices(part.train, weights=weights, k=1)[0]
    if roll < 0.8:
        return Voice("flite", rng.choice(FLITE_TRAIN_VOICES), False)
    return Voice("festival", rng.choice(FESTIVAL_TRAIN_VOICES), False)


def female_range_shift(split: str, voice: Voice) -> tuple[float, float]:
    """(probability, largest shift in cents) of moving a male voice up into the female range with sox alone."""
    if split != "train":
        return (0.35 if voice.engine == "espeak-ng" else 0.5), 700.0
    return (0.35 if voice.engine == "espeak-ng" else 0.65), 800.0


def female_voice_of_male(rng: random.Random) -> tuple[float, float]:
    """(engine F0 target in Hz, sox shift in cents) that turn a male flite/festival voice into a female-like one."""
    # A sox shift alone scales formants as much as F0: 800 cents takes kal's F0 to slt's (x1.6) but its formants
    # far past a woman's (about x1.15-1.2). The engines' own F0 target raises F0 only; a small sox shift then
    # adds the shorter vocal tract. slt's measured F0 is about 170-180 Hz.
    return round(rng.uniform(140, 215), 1), rng.uniform(80, 330)


def plan_utterance(rng: random.Random, split: str, seed: int, index: int) -> UttPlan:
    voice = choose_voice(rng, split, seed)
    prompt: Prompt = random_prompt(rng)
    is_test = split.startswith("test")
    probability, highest = female_range_shift(split, voice)
    f0_mean_hz = None
    if is_test:
        pitch_cents = 0.0
    elif not voice.female and rng.random() < probability:
        if split == "train" and (voice.engine, voice.name) in F0_TARGET_VOICES and rng.random() < 0.7:
            f0_mean_hz, pitch_cents = female_voice_of_male(rng)
        else:
            pitch_cents = rng.uniform(300, highest)  # sox alone: F0 and formants up together
    else:
        pitch_cents = rng.uniform(-200, 250)
    return UttPlan(
        uid=f"{split}_{index:05d}",
        engine=voice.engine,
        voice=voice.name,
        tokens=prompt.tokens,
        transcript=prompt.transcript,
        words_per_minute=rng.randint(135, 205) if is_test else rng.randint(120, 220),
        espeak_pitch=rng.randint(35, 70) if is_test else rng.randint(25, 80),
        duration_stretch=round(rng.uniform(0.9, 1.15) if is_test else rng.uniform(0.8, 1.3), 3),
        pitch_cents=round(pitch_cents, 1),
        gain_db=round(rng.uniform(-6, 3), 2),
        snr_db=None if rng.random() < 0.3 else round(rng.uniform(25 if is_test else 18, 45), 1),
        lead_s=round(rng.uniform(0.05, 0.35), 3),
        trail_s=round(rng.uniform(0.05, 0.35), 3),
        noise_seed=rng.getrandbits(31),
        f0_mean_hz=f0_mean_hz,
    )


def plan_split(split: str, seed: int, n: int) -> list[UttPlan]:
    rng = random.Random(f"{seed}/{split}")
    return [plan_utterance(rng, split, seed, i) for i in range(n)]


def plan_digest(plans: list[UttPlan]) -> str:
    h = hashlib.sha256()
    for p in plans:
        fields = asdict(p)
        if fields["f0_mean_hz"] is None:
            del fields["f0_mean_hz"]  # plans without an F0 target keep the digests they had before it existed
        h.update(json.dumps(fields, sort_keys=True, default=str).encode())
    return h.hexdigest()


def finish_audio(plan: UttPlan, wav_16k: Path, out_wav: Path) -> None:
    import soundfile as sf

    data, rate = sf.read(str(wav_16k), dtype="float32")
    if data.ndim > 1:
        data = data.mean(axis=1)
    if rate != 16000 or data.size == 0:
        raise RuntimeError(f"{plan.uid}: sox gave {rate} Hz, {data.size} samples")
    rng = np.random.default_rng(plan.noise_seed)
    data = np.concatenate([np.zeros(int(plan.lead_s * rate), np.float32), data,
                           np.zeros(int(plan.trail_s * rate), np.float32)])
    data = data * np.float32(10 ** (plan.gain_db / 20))
    peak = float(np.abs(data).max())
    if peak > 0.95:
        data *= np.float32(0.95 / peak)
    if plan.snr_db is not None:
        speech_rms = float(np.sqrt(np.mean(data ** 2))) + 1e-8
        noise_rms = speech_rms / (10 ** (plan.snr_db / 20))
        data = data + rng.standard_normal(data.size).astype(np.float32) * np.float32(noise_rms)
    pcm = np.clip(np.round(data * 32768.0), -32768, 32767).astype(np.int16)
    with atomic_path(out_wav) as tmp:
        sf.write(str(tmp), pcm, 16000, subtype="PCM_16")


def render_chunk(args: tuple[list[UttPlan], str]) -> int:
    plans, split_dir = args
    wav_dir = Path(split_dir) / "an4" / "wav"
    txt_dir = Path(split_dir) / "an4" / "txt"
    todo = [p for p in plans if not (wav_dir / f"{p.uid}.wav").exists() or not (txt_dir / f"{p.uid}.txt").exists()]
    if not todo:
        return len(plans)
    with tempfile.TemporaryDirectory(prefix="an4synth-") as tmp_name:
        tmp = Path(tmp_name)
        raw = {p.uid: tmp / f"{p.uid}.raw.wav" for p in todo}
        festival_groups: dict[str, list] = {}
        for p in todo:
            if p.engine == "espeak-ng":
                engines.espeak_render(p.tokens, p.voice, raw[p.uid], words_per_minute=p.words_per_minute,
                                      pitch=p.espeak_pitch)
            elif p.engine == "flite":
                engines.flite_render(p.tokens, p.voice, raw[p.uid], duration_stretch=p.duration_stretch,
                                     f0_mean_hz=p.f0_mean_hz)
            elif p.engine == "festival":
                festival_groups.setdefault(p.voice, []).append((p.tokens, p.duration_stretch, p.f0_mean_hz,
                                                                raw[p.uid]))
            else:
                raise ValueError(f"unknown engine {p.engine!r}")
        for voice, jobs in festival_groups.items():
            engines.festival_render_batch(jobs, voice, tmp / f"{voice}.scm")
        for p in todo:
            wav16 = tmp / f"{p.uid}.16k.wav"
            engines.sox_to_16k(raw[p.uid], wav16, pitch_cents=p.pitch_cents)
            finish_audio(p, wav16, wav_dir / f"{p.uid}.wav")
            atomic_write_text(txt_dir / f"{p.uid}.txt", p.transcript)
    return len(plans)


def chunk_plans(plans: list[UttPlan]) -> list[list[UttPlan]]:
    # Festival utterances are grouped so one process renders many of them.
    by_engine: dict[tuple[str, str], list[UttPlan]] = {}
    for p in plans:
        key = (p.engine, p.voice if p.engine == "festival" else "")
        by_engine.setdefault(key, []).append(p)
    chunks = []
    for key in sorted(by_engine):
        group = by_engine[key]
        size = CHUNK * 2 if key[0] == "festival" else CHUNK
        chunks += [group[i:i + size] for i in range(0, len(group), size)]
    return chunks


def write_manifests(out_dir: Path, split: str, plans: list[UttPlan]) -> Path:
    split_dir = (out_dir / split).resolve()
    samples = [{"wav_path": f"an4/wav/{p.uid}.wav", "transcript_path": f"an4/txt/{p.uid}.txt"} for p in plans]
    manifest = out_dir / f"{split}_manifest.json"
    atomic_write_text(manifest, json.dumps({"root_path": str(split_dir), "samples": samples}, indent=1) + "\n")
    csv_lines = [f"{split_dir / s['wav_path']},{split_dir / s['transcript_path']}" for s in samples]
    atomic_write_text(out_dir / f"{split}_manifest.csv", "\n".join(csv_lines) + "\n")
    return manifest


def split_is_complete(split_dir: Path, digest: str) -> bool:
    marker = split_dir / MARKER
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return info.get("digest") == digest and info.get("version") == FORMAT_VERSION


def generate(out_dir, *, seed: int = 1234, splits=None, workers: int | None = None, progress: bool = True,
             n_train: int | None = None, sizes: dict[str, int] | None = None) -> dict[str, Path]:
    """Generate (or reuse) the requested splits; returns the V3 JSON manifest path of each.

    `sizes` overrides utterance counts per split; a smaller count gives a prefix of the same utterances.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    splits = list(splits) if splits else list(SPLITS)
    for split in splits:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected some of {SPLITS}")
    for tool in ("espeak-ng", "flite", "festival", "sox"):
        if shutil.which(tool) is None:
            from porter.api import ToolMissingError
            raise ToolMissingError(f"{tool} is not installed; the synthetic corpus needs espeak-ng, flite, "
                                   "festival (+ festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts) and sox")
    workers = workers or min(2, os.cpu_count() or 1)
    manifests = {}
    for split in splits:
        n = n_train if (split == "train" and n_train) else DEFAULT_SIZES[split]
        if sizes and split in sizes:
            n = int(sizes[split])
        plans = plan_split(split, seed, n)
        digest = plan_digest(plans)
        split_dir = out_dir / split
        if not split_is_complete(split_dir, digest):
            if (split_dir / MARKER).exists():
                # A finished split from another plan or format: its files must not be mistaken for this one's.
                # (Without a marker the files are from an interrupted run of this plan and are kept.)
                (split_dir / MARKER).unlink()
                shutil.rmtree(split_dir / "an4", ignore_errors=True)
            (split_dir / "an4" / "wav").mkdir(parents=True, exist_ok=True)
            (split_dir / "an4" / "txt").mkdir(parents=True, exist_ok=True)
            chunks = chunk_plans(plans)
            bar = tqdm(total=len(plans), desc=f"synth {split}", unit="utt", disable=not progress)
            if workers > 1:
                with get_context("spawn").Pool(workers) as pool:
                    for done in pool.imap_unordered(render_chunk, [(c, str(split_dir)) for c in chunks]):
                        bar.update(done)
            else:
                for c in chunks:
                    bar.update(render_chunk((c, str(split_dir))))
            bar.close()
            atomic_write_text(split_dir / MARKER, json.dumps(
                {"version": FORMAT_VERSION, "seed": seed, "split": split, "utterances": n, "digest": digest}) + "\n")
        manifests[split] = write_manifests(out_dir, split, plans)
    return manifests
