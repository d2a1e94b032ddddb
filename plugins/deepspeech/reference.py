"""The framework reference: the checkpoint's model in PyTorch eager mode, batch 1, natural length."""
from __future__ import annotations

import os
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from porter.api import InputError, InputSet, OutputSet, Timing, write_sample

from .checkpoint import LoadedCheckpoint, build_model, load_checkpoint

# Runs before the timed loop, so one-off allocations and kernel selection stay out of the latencies.
WARMUP_RUNS = 2


def load_eval_checkpoint(path: Path) -> LoadedCheckpoint:
    """The checkpoint at ``path``; loaded once per process for each version of the file."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise InputError("checkpoint not found (expected a V3 .ckpt or a state_dict with its config)",
                         file=path) from None
    return _load_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _load_cached(path: str, mtime_ns: int, size: int) -> LoadedCheckpoint:
    # mtime and size are part of the key so a rewritten checkpoint is read again.
    return load_checkpoint(Path(path))


def load_eval_model(path: Path) -> torch.nn.Module:
    """A fresh eval-mode DeepSpeech built from the checkpoint at ``path`` (callers may not share modules)."""
    model = build_model(load_eval_checkpoint(path))
    model.eval()
    return model


def run_reference(checkpoint: Path, inputs: InputSet, workdir: Path, *, warmup: int = WARMUP_RUNS) -> OutputSet:
    """Run every sample through PyTorch eager at batch 1; write probs and out_lengths per sample."""
    from tqdm import tqdm

    if len(inputs) == 0:
        raise InputError("the input set is empty; expected at least one utterance", field="inputs")
    model = load_eval_model(checkpoint)
    workdir = Path(workdir)
    latencies_ms = []
    with torch.inference_mode():
        first = _as_tensors(inputs.load(0))
        for _ in range(warmup):
            model(*first)
        for index in tqdm(range(len(inputs)), desc="pytorch reference", unit="utt",
                          disable=not sys.stderr.isatty(), leave=False):
            spect, lengths = _as_tensors(inputs.load(index))
            started = time.perf_counter()
            probs, out_lengths = model(spect, lengths)
            latencies_ms.append((time.perf_counter() - started) * 1000.0)
            write_sample(workdir, index, {"probs": probs.numpy().astype(np.float32, copy=False),
                                          "out_lengths": out_lengths.numpy().astype(np.int32, copy=False)})
    timing = Timing(latencies_ms=tuple(latencies_ms), wall_seconds=sum(latencies_ms) / 1000.0,
                    warmup=warmup, batch_size=1)
    return OutputSet(path=workdir, sample_ids=tuple(inputs.sample_ids), output_names=("probs", "out_lengths"),
                     timing=timing, details={"framework": f"torch {torch.__version__}",
                                             "threads": torch.get_num_threads(),
                                             "mode": "eager, batch 1, natural length",
                                             "host_cpus": os.cpu_count()})


def _as_tensors(arrays: dict) -> tuple[torch.Tensor, torch.Tensor]:
    spect = torch.from_numpy(np.ascontiguousarray(arrays["spect"], dtype=np.float32))
    lengths = torch.from_numpy(np.ascontiguousarray(arrays["lengths"]).astype(np.int32))
    return spect, lengths
