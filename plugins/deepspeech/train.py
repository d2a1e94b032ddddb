"""`porter train`: CTC training of a compact V3 DeepSpeech on V3 manifests, resumable and deterministic.

Small-data CTC needs help to converge and to generalise across voices: a length-sorted first epoch
(SortaGrad), AdamW with warm-up and cosine decay, gradient clipping, and from the second epoch on speed
perturbation (tempo and pitch together), additive noise and SpecAugment-style masks. Each epoch ends with a
resume file (model, optimiser, history, RNG) in the run directory; the epoch with the best dev WER is written
as a weights-only V3 checkpoint. Test splits are only scored at the end, never used for selection.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from porter.api import InputError, atomic_write_text

from .checkpoint import atomic_torch_save, build_model, load_checkpoint, save_checkpoint
from .decode import greedy_decode
from .features import load_audio, spectrogram
from .labels import default_labels, text_to_targets
from .metrics import corpus_wer_cer
from .model import DeepSpeech, ModelConfig, SpectConfig
from .train_config import TrainConfig, add_arguments, config_from_args

log = logging.getLogger("porter.train")
RESUME_NAME = "resume.pt"


@dataclass
class Utterance:
    uid: str
    samples: np.ndarray  # int16, 16 kHz
    transcript: str


def read_manifest(path, limit: int | None = None) -> list[Utterance]:
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        root = Path(manifest["root_path"])
        samples = manifest["samples"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read V3 manifest ({exc}); expected JSON with root_path and samples",
                         file=path) from None
    out = []
    for entry in samples[:limit] if limit else samples:
        try:
            wav, txt = root / entry["wav_path"], root / entry["transcript_path"]
            text = txt.read_text(encoding="utf-8").replace("\n", "").strip().upper()
        except (KeyError, TypeError, OSError) as exc:
            raise InputError(f"bad sample {entry!r} ({exc}); expected wav_path and a readable transcript_path "
                             "relative to root_path", file=path, field="samples") from None
        audio = load_audio(wav)
        out.append(Utterance(Path(entry["wav_path"]).stem, np.round(audio * 32768).astype(np.int16), text))
    return out


def speed_perturb(samples: np.ndarray, factor: float) -> np.ndarray:
    """Plays the audio `factor` times faster (tempo and pitch move together), by linear interpolation."""
    n_out = max(int(round(len(samples) / factor)), 2)
    positions = np.linspace(0, len(samples) - 1, n_out)
    return np.interp(positions, np.arange(len(samples)), samples).astype(np.float32)


def augmented_spectrogram(utt: Utterance, rng: np.random.Generator, spect_cfg: SpectConfig,
                          augment: bool) -> np.ndarray:
    samples = utt.samples.astype(np.float32) / 32768.0
    if augment:
        if rng.random() < 0.7:
            samples = speed_perturb(samples, rng.uniform(0.85, 1.15))
        if rng.random() < 0.4:
            rms = float(np.sqrt(np.mean(samples ** 2))) + 1e-6
            snr_db = rng.uniform(12, 35)
            samples = samples + rng.standard_normal(len(samples)).astype(np.float32) * (rms / 10 ** (snr_db / 20))
    spect = spectrogram(samples, spect_cfg)
    if augment:
        n_bins, n_frames = spect.shape
        for _ in range(2):
            width = int(rng.integers(0, 20))
            start = int(rng.integers(0, n_bins - width + 1))
            spect[start:start + width, :] = 0
        for _ in range(2):
            width = int(rng.integers(0, max(2, int(0.06 * n_frames))))
            start = int(rng.integers(0, max(1, n_frames - width + 1)))
            spect[:, start:start + width] = 0
    return spect


def collate(spects: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [s.shape[1] for s in spects]
    batch = np.zeros((len(spects), 1, spects[0].shape[0], max(lengths)), np.float32)
    for i, s in enumerate(spects):
        batch[i, 0, :, : s.shape[1]] = s
    return torch.from_numpy(batch), torch.tensor(lengths, dtype=torch.int32)


def epoch_batches(lengths: list[int], batch_size: int, epoch: int, seed: int) -> list[list[int]]:
    """Epoch 1 in ascending length order (SortaGrad); later epochs length-bucketed then shuffled."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    if epoch == 1:
        return [order[i:i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    rng = np.random.default_rng([seed, epoch, 1])
    shuffled = rng.permutation(len(lengths))
    bucket = batch_size * 32
    batches = []
    for start in range(0, len(shuffled), bucket):
        group = sorted(shuffled[start:start + bucket].tolist(), key=lambda i: lengths[i])
        batches += [group[i:i + batch_size] for i in range(0, len(group), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def learning_rate(cfg: TrainConfig, step: int, total_steps: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    floor = cfg.final_lr_fraction
    return cfg.learning_rate * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def transcribe(model: DeepSpeech, spects: list[np.ndarray], batch_size: int = 32) -> list[str]:
    model.eval()
    order = sorted(range(len(spects)), key=lambda i: spects[i].shape[1])
    texts: list[str | None] = [None] * len(spects)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, lengths = collate([spects[i] for i in idx])
        probs, out_lengths = model(x, lengths)
        for i, text in zip(idx, greedy_decode(probs, out_lengths, model.labels)):
            texts[i] = text
    return cast("list[str]", texts)  # every index is in ``order``, so none is left None


def evaluate(model: DeepSpeech, utts: list[Utterance], spects: list[np.ndarray] | None = None):
    spects = spects or [spectrogram(u.samples.astype(np.float32) / 32768.0, model.spect_cfg) for u in utts]
    hyps = transcribe(model, spects)
    wer, cer = corpus_wer_cer([(u.transcript, h) for u, h in zip(utts, hyps)])
    return wer, cer, hyps


def rng_snapshot() -> dict:
    return {"torch": torch.get_rng_state()}


def save_resume(path: Path, model, optimizer, *, epoch: int, next_batch: int, global_step: int, history: list,
                best: dict, minutes: float = 0.0) -> None:
    atomic_torch_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                       "next_batch": next_batch, "global_step": global_step, "minutes": minutes,
                       "history": history, "best": best, "rng": rng_snapshot()}, path)


def load_resume(path: Path) -> dict:
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot read the resume file ({exc})", file=path) from None


def restore_training_state(path: Path, model: DeepSpeech, optimizer) -> dict:
    """Loads a resume file into the model and optimiser (and torch's RNG); returns the saved state."""
    state = load_resume(path)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    return state


def setup_logging(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    log.setLevel(logging.INFO)
    log.handlers.clear()
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.propagate = False


def train(cfg: TrainConfig, *, resume: bool = False) -> dict:
    from tqdm import tqdm

    started = time.monotonic()
    torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.run_dir)
    setup_logging(run_dir)
    log.info("config %s", json.dumps(asdict(cfg)))
    labels = default_labels()
    spect_cfg = SpectConfig()
    model_cfg = ModelConfig(rnn_type=cfg.rnn_type, hidden_size=cfg.hidden_size, hidden_layers=cfg.hidden_layers,
                            bidirectional=True)
    torch.manual_seed(cfg.seed)
    model = DeepSpeech(labels, model_cfg, spect_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    ctc = nn.CTCLoss(blank=0, reduction="sum", zero_infinity=True)

    train_utts = read_manifest(cfg.train_manifest, cfg.max_train)
    dev_utts = read_manifest(cfg.dev_manifest, cfg.max_dev)
    dev_spects = [spectrogram(u.samples.astype(np.float32) / 32768.0, spect_cfg) for u in dev_utts]
    lengths = [1 + len(u.samples) // spect_cfg.hop_length for u in train_utts]
    targets = [torch.tensor(text_to_targets(u.transcript, labels), dtype=torch.int32) for u in train_utts]
    steps_per_epoch = math.ceil(len(train_utts) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    log.info("train %d utts, dev %d utts, %d steps/epoch, %d params", len(train_utts), len(dev_utts),
             steps_per_epoch, sum(p.numel() for p in model.parameters()))

    epoch, next_batch, global_step, history = 1, 0, 0, []
    earlier_minutes = 0.0  # wall time of earlier runs this one resumes, up to their last resume point
    best = {"dev_wer": float("inf"), "epoch": 0, "step": 0}
    resume_path = run_dir / RESUME_NAME
    if resume and resume_path.is_file():
        state = restore_training_state(resume_path, model, optimizer)
        epoch, next_batch = int(state["epoch"]), int(state["next_batch"])
        global_step = int(state["global_step"])
        history, best = list(state["history"]), dict(state["best"])
        earlier_minutes = float(state.get("minutes", 0.0))
        log.info("resumed from %s at epoch %d batch %d step %d", resume_path, epoch, next_batch, global_step)

    def checkpoint_and_score(epoch_done: int, batch_done: int) -> None:
        nonlocal best
        eval_start = time.monotonic()
        dev_wer, dev_cer, _ = evaluate(model, dev_utts, dev_spects)
        model.train()
        elapsed = earlier_minutes + (time.monotonic() - started) / 60
        history.append({"epoch": epoch_done, "batches_in_epoch": batch_done, "step": global_step,
                        "train_loss": window_loss[0] / max(1, window_loss[1]), "dev_wer": round(dev_wer, 2),
                        "dev_cer": round(dev_cer, 2), "minutes": round(elapsed, 1)})
        window_loss[:] = [0.0, 0]
        log.info("eval epoch %d batch %d step %d: train loss %.3f dev WER %.2f CER %.2f (eval %.0f s, %.1f min)",
                 epoch_done, batch_done, global_step, history[-1]["train_loss"], dev_wer, dev_cer,
                 time.monotonic() - eval_start, elapsed)
        if dev_wer < best["dev_wer"]:
            best = {"dev_wer": dev_wer, "dev_cer": dev_cer, "epoch": epoch_done, "step": global_step}
            save_checkpoint(cfg.out, model, labels=labels, model_cfg=model_cfg, spect_cfg=spect_cfg,
                            epoch=epoch_done, global_step=global_step,
                            extra={"dev_wer": dev_wer, "dev_cer": dev_cer, "seed": cfg.seed})
            log.info("new best (dev WER %.2f) written to %s", dev_wer, cfg.out)

    window_loss = [0.0, 0]
    stop_reason = "epochs done"
    while epoch <= cfg.epochs and stop_reason == "epochs done":
        model.train()
        augment = epoch >= cfg.augment_from_epoch
        batches = epoch_batches(lengths, cfg.batch_size, epoch, cfg.seed)
        bar = tqdm(total=len(batches), initial=next_batch, desc=f"epoch {epoch}", unit="batch",
                   disable=not cfg.progress, file=sys.stderr)
        while next_batch < len(batches):
            batch = batches[next_batch]
            # One generator per batch, so a resumed run draws the same augmentation as an unbroken one.
            rng = np.random.default_rng([cfg.seed, epoch, next_batch])
            spects = [augmented_spectrogram(train_utts[i], rng, spect_cfg, augment) for i in batch]
            x, x_lengths = collate(spects)
            logits, out_lengths = model.forward_logits(x, x_lengths)
            log_probs = logits.log_softmax(-1).transpose(0, 1)  # [T, B, C] for CTCLoss
            batch_targets = [targets[i] for i in batch]
            loss = ctc(log_probs, torch.cat(batch_targets), out_lengths,
                       torch.tensor([len(t) for t in batch_targets], dtype=torch.int32)) / len(batch)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, global_step, total_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            global_step += 1
            next_batch += 1
            window_loss[0] += loss.item() * len(batch)
            window_loss[1] += len(batch)
            bar.update(1)
            bar.set_postfix(loss=f"{window_loss[0] / window_loss[1]:.2f}",
                            lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if global_step % 25 == 0:
                log.info("epoch %d step %d loss %.3f lr %.2e", epoch, global_step,
                         window_loss[0] / window_loss[1], optimizer.param_groups[0]["lr"])
            epoch_end = next_batch == len(batches)
            if epoch_end or (cfg.eval_every and global_step % cfg.eval_every == 0):
                checkpoint_and_score(epoch, next_batch)
                resume_epoch, resume_batch = (epoch + 1, 0) if epoch_end else (epoch, next_batch)
                save_resume(resume_path, model, optimizer, epoch=resume_epoch, next_batch=resume_batch,
                            global_step=global_step, history=history, best=best,
                            minutes=earlier_minutes + (time.monotonic() - started) / 60)
            if cfg.max_steps and global_step >= cfg.max_steps:
                stop_reason = "max steps"
                break
            if cfg.max_minutes and (time.monotonic() - started) / 60 > cfg.max_minutes:
                # Work since the last resume point is dropped: the last saved state is what a resume continues.
                stop_reason = "time budget"
                log.info("time budget of %.1f min reached at epoch %d step %d", cfg.max_minutes, epoch,
                         global_step)
                break
        bar.close()
        if next_batch == len(batches):
            epoch, next_batch = epoch + 1, 0

    epochs_completed = round(epoch - 1 + next_batch / max(1, steps_per_epoch), 3)
    summary: dict[str, Any] = {
        "stop_reason": stop_reason, "epochs_completed": epochs_completed, "global_step": global_step,
        "best": best, "history": history,
        "train_minutes_this_run": round((time.monotonic() - started) / 60, 1),
        "train_minutes_total": round(earlier_minutes + (time.monotonic() - started) / 60, 1)}
    if cfg.test_manifests and Path(cfg.out).is_file():
        best_model = build_model(load_checkpoint(cfg.out))
        summary["test"] = {}
        for manifest in cfg.test_manifests:
            name = Path(manifest).name.replace("_manifest.json", "")
            wer, cer, _ = evaluate(best_model, read_manifest(manifest))
            summary["test"][name] = {"wer": round(wer, 2), "cer": round(cer, 2)}
            log.info("test %s: WER %.2f CER %.2f", name, wer, cer)
    if cfg.summary:
        summary.update({
            "command": cfg.command, "seed": cfg.seed, "checkpoint": str(cfg.out),
            "model_cfg": asdict(model_cfg), "train_utterances": len(train_utts), "dev_utterances": len(dev_utts),
            "machine": {"platform": platform.platform(), "processor": cpu_model(),
                        "cpus": os.cpu_count(), "torch_threads": cfg.threads, "torch": torch.__version__},
        })
        atomic_write_text(Path(cfg.summary), json.dumps(summary, indent=2) + "\n")
    log.info("finished: %s", json.dumps({k: summary[k] for k in ("stop_reason", "epochs_completed", "best")}))
    return summary


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_from_args(args) -> int:
    command = "porter train " + " ".join(shlex.quote(a) for a in sys.argv[1:] if a != "train")
    summary = train(config_from_args(args, command), resume=args.resume)
    print(json.dumps({k: summary.get(k) for k in ("stop_reason", "epochs_completed", "best", "test")}, indent=1))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="porter train", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
