"""The AN4-style corpus synthesiser: prompts, letter names, voice separation, determinism, layout, reuse."""
import json
import random
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from porter_deepspeech.labels import V3_LABELS
from porter_deepspeech.synth import corpus, engines, prompts, voices

TOOLS = ("espeak-ng", "flite", "festival", "sox")
needs_tools = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS),
                                 reason="espeak-ng, flite, festival and sox are needed to synthesise")


def test_number_words_hand_checked():
    assert prompts.number_words(2409) == "TWO THOUSAND FOUR HUNDRED NINE"
    assert prompts.number_words(15) == "FIFTEEN"
    assert prompts.number_words(90) == "NINETY"
    assert prompts.number_words(31000) == "THIRTY ONE THOUSAND"
    assert prompts.year_words(1986) == "NINETEEN EIGHTY SIX"
    assert prompts.year_words(1905) == "NINETEEN OH FIVE"
    assert prompts.year_words(1900) == "NINETEEN HUNDRED"
    assert prompts.ordinal_words(21) == "TWENTY FIRST"
    assert prompts.ordinal_words(30) == "THIRTIETH"


def test_transcripts_use_only_label_characters_and_spell_letters():
    rng = random.Random(5)
    allowed = set(V3_LABELS) - {"_"}
    kinds = set()
    for _ in range(2000):
        prompt = prompts.random_prompt(rng)
        kinds.add(prompt.kind)
        text = prompt.transcript
        assert set(text) <= allowed and text == text.strip() and "  " not in text
        for token in prompt.tokens:
            if token.spelled:
                assert " ".join(token.text) in text
    assert kinds == {"spelled", "digits", "phone", "zip", "date", "number", "control"}


def test_engine_texts_say_letter_names():
    tokens = (prompts.Token("ENTER"), prompts.Token("ROBERTSA", spelled=True))
    assert engines.espeak_ssml(tokens) == ('<speak>enter <say-as interpret-as="characters">robertsa</say-as>'
                                           '</speak>')
    assert engines.hyphenated_text(tokens) == "enter R-O-B-E-R-T-S-A"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_phonemes_are_letter_names():
    ssml = engines.espeak_ssml((prompts.Token("GO"), prompts.Token("AZA", spelled=True)))
    phonemes = subprocess.run(["espeak-ng", "-m", "-q", "-x", "-v", "en-us", ssml], capture_output=True,
                              text=True, check=True).stdout
    # "A" must be the letter name (eI), not a schwa, on both sides of "Z".
    assert phonemes.count("eI") == 2 and "z" in phonemes


def test_voice_separation_between_splits():
    part = voices.espeak_partition(1234)
    assert not set(part.test) & set(part.train) and not set(part.test) & set(part.dev)
    assert not set(part.dev) & set(part.train)
    assert len(part.test) >= 30
    plans = {split: corpus.plan_split(split, 1234, 400 if split == "train" else 130) for split in corpus.SPLITS}
    unseen_engine = {(p.engine, p.voice) for p in plans["test_unseen_engine"]}
    assert unseen_engine == set(voices.UNSEEN_ENGINE_VOICES)
    for split in ("train", "dev"):
        used = {(p.engine, p.voice) for p in plans[split]}
        assert not used & unseen_engine
        assert not {v for e, v in used if e == "espeak-ng"} & {v.name for v in part.test}
    train_voices = {(p.engine, p.voice) for p in plans["train"]}
    assert not {v for e, v in train_voices if e == "espeak-ng"} & {v.name for v in part.dev}
    assert ("flite", "rms") not in train_voices and {e for e, _ in train_voices} == {"espeak-ng", "flite",
                                                                                     "festival"}
    assert any(p.pitch_cents >= 300 for p in plans["train"] if p.engine != "espeak-ng")
    assert all(p.pitch_cents == 0 for p in plans["test_unseen_engine"] + plans["test_unseen_voices"])
    # Female-like versions of the male engines' voices: raised F0 from the engine itself, only in training.
    with_f0 = [p for p in plans["train"] if p.f0_mean_hz is not None]
    assert with_f0 and {(p.engine, p.voice) for p in with_f0} <= corpus.F0_TARGET_VOICES
    assert all(140 <= p.f0_mean_hz <= 215 and 80 <= p.pitch_cents <= 330 for p in with_f0)
    assert all(p.f0_mean_hz is None for split in ("dev", "test_unseen_voices", "test_unseen_engine")
               for p in plans[split])


def median_f0(path) -> float:
    """Median autocorrelation pitch of the voiced 40 ms frames, in Hz."""
    audio, rate = sf.read(str(path), dtype="float32")
    frame, hop, lowest_lag, highest_lag = int(0.04 * rate), int(0.01 * rate), rate // 400, rate // 70
    pitches = []
    for start in range(0, len(audio) - frame, hop):
        window = audio[start:start + frame] - audio[start:start + frame].mean()
        if np.sqrt(np.mean(window ** 2)) < 0.02 * np.abs(audio).max():
            continue
        corr = np.correlate(window, window, "full")[frame - 1:]
        lag = lowest_lag + int(np.argmax(corr[lowest_lag:highest_lag]))
        if corr[lag] > 0.5 * corr[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


@needs_tools
def test_engine_f0_target_raises_a_male_voice_into_the_female_range(tmp_path):
    tokens = (prompts.Token("FIVE SIX ONE THREE SIX NINE ZERO"),)
    engines.flite_render(tokens, "kal", tmp_path / "kal.wav", duration_stretch=1.0)
    engines.flite_render(tokens, "kal", tmp_path / "kal_f0.wav", duration_stretch=1.0, f0_mean_hz=200.0)
    engines.festival_render_batch([(tokens, 1.0, 200.0, tmp_path / "ked_f0.wav"),
                                   (tokens, 1.0, None, tmp_path / "ked.wav")], "ked_diphone",
                                  tmp_path / "ked.scm")
    for voice in ("kal", "ked"):
        own, raised = median_f0(tmp_path / f"{voice}.wav"), median_f0(tmp_path / f"{voice}_f0.wav")
        assert own < 130 and 170 < raised < 240, (voice, own, raised)


def test_plans_depend_only_on_seed_and_split():
    assert corpus.plan_split("dev", 7, 20) == corpus.plan_split("dev", 7, 20)
    assert corpus.plan_split("dev", 7, 20)[:5] == corpus.plan_split("dev", 7, 5)
    assert corpus.plan_split("dev", 7, 20) != corpus.plan_split("dev", 8, 20)


@pytest.mark.slow
@needs_tools
def test_generate_layout_determinism_and_reuse(tmp_path):
    sizes = {"dev": 4, "test_unseen_engine": 3}
    first = corpus.generate(tmp_path / "a", seed=11, splits=["dev", "test_unseen_engine"], workers=2,
                            progress=False, sizes=sizes)
    assert set(first) == {"dev", "test_unseen_engine"}
    manifest = json.loads(first["dev"].read_text())
    root = tmp_path / "a" / "dev"
    assert manifest["root_path"] == str(root.resolve())
    assert [s["wav_path"] for s in manifest["samples"]] == [f"an4/wav/dev_{i:05d}.wav" for i in range(4)]
    csv_lines = (tmp_path / "a" / "dev_manifest.csv").read_text().split()
    assert csv_lines[0] == f"{root.resolve()}/an4/wav/dev_00000.wav,{root.resolve()}/an4/txt/dev_00000.txt"
    plans = corpus.plan_split("dev", 11, 4)
    for sample, plan in zip(manifest["samples"], plans):
        info = sf.info(str(root / sample["wav_path"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 0.5 < info.duration < 12
        assert (root / sample["transcript_path"]).read_text() == plan.transcript
        audio, _ = sf.read(str(root / sample["wav_path"]), dtype="int16")
        assert np.abs(audio).max() > 1000  # speech, not silence

    # dev alone, in another folder: the same audio, byte for byte
    second = corpus.generate(tmp_path / "b", seed=11, splits=["dev"], workers=1, progress=False, sizes=sizes)
    for i in range(4):
        name = f"an4/wav/dev_{i:05d}.wav"
        assert (tmp_path / "a" / "dev" / name).read_bytes() == (tmp_path / "b" / "dev" / name).read_bytes()

    # a complete split is reused, not regenerated
    wav = tmp_path / "b" / "dev" / "an4" / "wav" / "dev_00000.wav"
    stamp = wav.stat().st_mtime_ns
    corpus.generate(tmp_path / "b", seed=11, splits=["dev"], progress=False, sizes=sizes)
    assert wav.stat().st_mtime_ns == stamp
    assert second["dev"].exists()
    with pytest.raises(ValueError, match="unknown split"):
        corpus.generate(tmp_path / "c", splits=["test"], progress=False)
