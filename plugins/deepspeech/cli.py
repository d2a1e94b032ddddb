"""`porter train` and `porter data an4-synth`, added through the deepspeech plugin's porter_add_commands hook."""
from __future__ import annotations

import argparse


def run_synth(args) -> int:
    from .synth.corpus import generate

    manifests = generate(args.out, seed=args.seed, splits=args.splits, workers=args.workers, n_train=args.n_train,
                         progress=not args.no_progress)
    for split, path in manifests.items():
        print(f"{split}: {path}")
    return 0


def run_train(args) -> int:
    from .train import run_from_args

    return run_from_args(args)


def add_commands(subparsers) -> None:
    from .synth.corpus import SPLITS
    from .train_config import add_arguments

    train = subparsers.add_parser("train", help="train a compact DeepSpeech2 (V3 architecture) with CTC",
                                  description="Train a V3 DeepSpeech on V3 JSON manifests; resumable, seeded.")
    add_arguments(train)
    train.set_defaults(func=run_train)

    data = subparsers.add_parser("data", help="make data sets")
    data_sub = data.add_subparsers(dest="data_command", metavar="DATASET")
    synth = data_sub.add_parser("an4-synth", help="synthesise an AN4-style corpus with espeak-ng, flite, festival",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    synth.add_argument("--out", required=True, help="output folder (splits + manifests)")
    synth.add_argument("--seed", type=int, default=1234)
    synth.add_argument("--splits", nargs="+", choices=SPLITS, default=None, help="default: all four")
    synth.add_argument("--n-train", type=int, default=None, help="training utterances (default 6000)")
    synth.add_argument("--workers", type=int, default=None, help="parallel processes (default: up to 2)")
    synth.add_argument("--no-progress", action="store_true")
    synth.set_defaults(func=run_synth)
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])
