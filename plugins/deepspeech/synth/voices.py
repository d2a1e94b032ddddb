"""The synthesiser voices and how they are shared out between the corpus splits.

Every flite and festival voice allowed for training is male, and both unseen-engine voices are the female slt
speaker; training therefore shifts male voices up into the female range and weights espeak-ng's female variants.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

ESPEAK_ACCENTS = ("en", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")

# espeak-ng 1.51 variant files (`espeak-ng --voices=variant`) with the gender it lists.
ESPEAK_VARIANTS = {
    "adam": "M", "Alex": "M", "Alicia": "F", "Andrea": "F", "Andy": "M", "Annie": "F", "antonio": "M",
    "aunty": "F", "belinda": "F", "benjamin": "M", "boris": "M", "caleb": "M", "david": "M", "Denis": "M",
    "Diogo": "M", "ed": "M", "edward": "M", "edward2": "M", "Gene": "M", "Gene2": "M", "gustave": "M",
    "announcer": "M", "Henrique": "M", "Hugo": "M", "iven": "M", "iven2": "M", "iven3": "M", "iven4": "M",
    "Jacky": "M", "john": "M", "kaukovalta": "M", "Lee": "M", "linda": "F", "marcelo": "M", "Marco": "M",
    "Mario": "M", "max": "M", "Michael": "M", "michel": "M", "miguel": "M", "Mike": "M", "Mr": "M",
    "Nguyen": "M", "pablo": "M", "paul": "M", "pedro": "M", "quincy": "M", "RicishayMax": "M",
    "RicishayMax2": "M", "RicishayMax3": "M", "rob": "M", "robert": "M", "robosoft": "M", "robosoft2": "M",
    "robosoft3": "M", "robosoft4": "M", "robosoft5": "M", "robosoft6": "M", "robosoft7": "M", "robosoft8": "M",
    "steph": "F", "steph2": "F", "steph3": "F", "Storm": "M", "Tweaky": "M", "UniRobot": "M", "zac": "M",
    "anika": "F", "anikaRobot": "F", "AnxiousAndy": "M", "f1": "F", "f2": "F", "f3": "F", "f4": "F",
    "f5": "F", "grandpa": "M", "grandma": "F", "klatt": "M", "klatt2": "M", "klatt3": "M", "klatt4": "M",
    "klatt5": "M", "klatt6": "M", "m1": "M", "m2": "M", "m3": "M", "m4": "M", "m5": "M", "m6": "M",
    "m7": "M", "m8": "M", "norbert": "M", "sandro": "M", "shelby": "M", "travis": "M", "victor": "M",
    "croak": "M", "whisper": "M", "whisperf": "F", "Demonic": "M",
}
# Whispered or distorted variants are hard to hear even for people: useful noise for training, unfair as a test.
TRAIN_ONLY_VARIANTS = frozenset({"whisper", "whisperf", "croak", "Demonic"})

FLITE_TRAIN_VOICES = ("kal", "kal16", "awb")
FLITE_DEV_VOICES = ("rms",)
FESTIVAL_TRAIN_VOICES = ("kal_diphone", "ked_diphone")
UNSEEN_ENGINE_VOICES = (("flite", "slt"), ("festival", "cmu_us_slt_arctic_hts"))


@dataclass(frozen=True)
class Voice:
    engine: str  # espeak-ng, flite or festival
    name: str  # espeak "accent+variant", flite voice, festival voice
    female: bool


@dataclass(frozen=True)
class EspeakPartition:
    train: tuple[Voice, ...]
    dev: tuple[Voice, ...]
    test: tuple[Voice, ...]


def espeak_partition(seed: int, held_out_fraction: float = 0.08) -> EspeakPartition:
    """Accent x variant combinations split three ways; a function of the seed alone so every split agrees."""
    combos = [Voice("espeak-ng", f"{accent}+{variant}", gender == "F")
              for accent in ESPEAK_ACCENTS for variant, gender in sorted(ESPEAK_VARIANTS.items())]
    eligible = [v for v in combos if v.name.split("+")[1] not in TRAIN_ONLY_VARIANTS]
    random.Random(f"{seed}/espeak-partition").shuffle(eligible)
    n_held = int(len(eligible) * held_out_fraction)
    test, dev = eligible[:n_held], eligible[n_held:2 * n_held]
    held = set(test) | set(dev)
    train = tuple(v for v in combos if v not in held)
    return EspeakPartition(train=train, dev=tuple(dev), test=tuple(test))
