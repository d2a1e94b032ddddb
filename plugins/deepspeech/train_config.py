"""`porter train`'s settings and command line, without torch: building porter's argument parser (every
`porter` command does) must not pay for importing the training code."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field


@dataclass
class TrainConfig:
    train_manifest: str
    dev_manifest: str
    out: str
    run_dir: str
    test_manifests: list = field(default_factory=list)
    summary: str | None = None
    seed: int = 1234
    epochs: int = 8
    batch_size: int = 16
    learning_rate: float = 1.5e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 300
    final_lr_fraction: float = 0.03
    grad_clip: float = 40.0
    hidden_size: int = 256
    hidden_layers: int = 3
    rnn_type: str = "lstm"
    augment_from_epoch: int = 2
    max_minutes: float | None = None
    max_train: int | None = None
    max_dev: int | None = None
    max_steps: int | None = None  # stop after this many optimiser steps (tests)
    eval_every: int | None = None  # also score dev and save a resume point every N steps
    threads: int = 1  # on a shared 2-core host, 2 OpenMP threads measured 5-10x slower than 1 (spin-waits)
    progress: bool = True
    command: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-manifest", required=True)
    parser.add_argument("--dev-manifest", required=True)
    parser.add_argument("--test-manifest", action="append", default=[], dest="test_manifests",
                        help="scored once with the chosen checkpoint at the end (repeatable); never used to select")
    parser.add_argument("--out", required=True, help="weights-only V3 checkpoint of the best dev epoch")
    parser.add_argument("--run-dir", required=True, help="resume file and train.log")
    parser.add_argument("--summary", default=None, help="JSON summary written at the end")
    parser.add_argument("--resume", action="store_true")
    defaults = TrainConfig("", "", "", "")
    for name in ("seed", "epochs", "batch_size", "learning_rate", "weight_decay", "warmup_steps", "grad_clip",
                 "hidden_size", "hidden_layers", "augment_from_epoch", "max_train", "max_dev", "max_steps",
                 "eval_every",
                 "threads"):
        default = getattr(defaults, name)
        kind = float if isinstance(default, float) else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=default)
    parser.add_argument("--rnn-type", choices=("lstm", "gru", "rnn"), default="lstm")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="wall-clock budget of this run; it stops at the next step past it")
    parser.add_argument("--no-progress", action="store_true")


def config_from_args(args, command: str) -> TrainConfig:
    return TrainConfig(
        train_manifest=args.train_manifest, dev_manifest=args.dev_manifest, out=args.out, run_dir=args.run_dir,
        test_manifests=list(args.test_manifests), summary=args.summary, seed=args.seed, epochs=args.epochs,
        batch_size=args.batch_size, learning_rate=args.learning_rate, weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps, grad_clip=args.grad_clip, hidden_size=args.hidden_size,
        hidden_layers=args.hidden_layers, rnn_type=args.rnn_type, augment_from_epoch=args.augment_from_epoch,
        max_minutes=args.max_minutes, max_train=args.max_train, max_dev=args.max_dev, max_steps=args.max_steps,
        eval_every=args.eval_every,
        threads=args.threads,
        progress=not args.no_progress, command=command)


__all__ = ["TrainConfig", "add_arguments", "config_from_args"]
