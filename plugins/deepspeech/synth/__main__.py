"""python -m porter_deepspeech.synth --out DIR [--seed N] [--splits ...]"""
from __future__ import annotations

import argparse

from .corpus import SPLITS, generate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="porter data an4-synth", description="Synthesise an AN4-style corpus")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--splits", nargs="+", choices=SPLITS, default=None)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    for split, path in generate(args.out, seed=args.seed, splits=args.splits, workers=args.workers,
                                n_train=args.n_train).items():
        print(f"{split}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
