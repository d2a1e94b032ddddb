"""The recipe benches 2–6 run through porter: one demo-size DeepSpeech, one synthetic test split, the seed's
method and porter's variants side by side.

Variants (all on the onnxruntime target unless noted):
  reference      PyTorch eager (the ΔWER/ΔCER baseline)
  seed           the seed's method: static export padded to 621 frames, batch 1
  seed_fixed     the same with the Ascend 310 graph passes applied (bench 4)
  bucketed       dynamic batch/time axes, utterances sorted by length and batched (bench 2, 5)
  int8_bucketed  int8 dynamic quantisation of the weights + bucketed batching (bench 3)
  bucketed_frames_N  bucketed with a frame budget of N (0: none) instead of bucketed's: the batching sweep
  openvino_bf16_bucketed  the openvino target, bf16, bucketed, after split_bidirectional_lstm + direction_sum_to_add
                 (OpenVINO's bidirectional LSTM mishandles padded batches without them) (bench 7)
  openvino_int8_bucketed  the same with NNCF int8 on top (bench 7)
"""
from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CHECKPOINT = REPO / "plugins" / "deepspeech" / "checkpoints" / "an4_synth.ckpt"
SEED_LENGTH = 621  # AN4's longest utterance in frames: the seed pads every utterance to it
TEST_SPLIT = "test_unseen_voices"

SEED, SEED_FIXED, BUCKETED, INT8_BUCKETED, REFERENCE = "seed", "seed_fixed", "bucketed", "int8_bucketed", "reference"
TIMED_VARIANTS = (SEED, SEED_FIXED, BUCKETED, INT8_BUCKETED)
# a batch holds at most as many padded frames as two of the seed's inputs (the default recipe's setting)
DEFAULT_MAX_BATCH_FRAMES = 2 * SEED_LENGTH
SWEEP_PREFIX = "bucketed_frames_"
OPENVINO_BF16, OPENVINO_INT8 = "openvino_bf16_bucketed", "openvino_int8_bucketed"
OPENVINO_VARIANTS = (OPENVINO_BF16, OPENVINO_INT8)
OPENVINO_PASSES = ["split_bidirectional_lstm", "direction_sum_to_add"]
# the int8 flags the default recipe uses (README, OpenVINO section: what was tried and why these)
OPENVINO_INT8_FLAGS = {"quantize": "int8", "inference_precision": "bf16", "subset_size": 16,
                       "ignored_scope": {"types": ["LSTMSequence"]}}


def sweep_variant(max_batch_frames: int) -> str:
    return f"{SWEEP_PREFIX}{max_batch_frames}"


def demo_checkpoint(cache: Path) -> tuple[Path, str]:
    """The shipped demo checkpoint when there is one, else random weights at the demo size (hidden 256 x 3).

    Random weights make the speed figures valid and the accuracy figures meaningless (every variant decodes
    noise); the second value says which it is.
    """
    if SHIPPED_CHECKPOINT.is_file():
        return SHIPPED_CHECKPOINT, f"shipped checkpoint {SHIPPED_CHECKPOINT.relative_to(REPO)}"
    path = cache / "demo_random_256x3.ckpt"
    if not path.is_file():
        import torch

        from porter_deepspeech.checkpoint import save_checkpoint
        from porter_deepspeech.labels import default_labels
        from porter_deepspeech.model import DeepSpeech, ModelConfig, SpectConfig

        torch.manual_seed(0)
        cfg = ModelConfig(hidden_size=256, hidden_layers=3)
        model = DeepSpeech(default_labels(), cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, model, labels=default_labels(), model_cfg=cfg, spect_cfg=SpectConfig())
    return path, "random weights, hidden 256 x 3 (no shipped checkpoint): accuracy figures are meaningless"


# The chain porter_ascend310.passes documents as typical for an Ascend 310 port: structural rewrites that keep
# fp32 numerics. emulate_fp16 is left out on purpose: it emulates the device's precision (an estimate), it is
# not a graph fix, and it would change the transcripts being compared.
ASCEND_CHAIN = ("cleanup", "fold_batchnorm_into_lstm", "split_bidirectional_lstm", "direction_sum_to_add",
                "cancel_transposes", "fold_batchnorm_into_matmul", "pad_rnn_to_multiple", "cleanup")


def ascend_pass_names(chain=ASCEND_CHAIN) -> list[str]:
    """``chain`` without the passes no installed plugin registers (empty when the Ascend passes are missing)."""
    from porter.plugins import load_plugins

    registered = load_plugins().registry.specs["passes"]
    if not any(name in registered for name in chain if name != "cleanup"):
        return []
    return [name for name in chain if name in registered]


def _has_openvino() -> bool:
    from porter.plugins import load_plugins

    return "openvino" in load_plugins().registry.specs["targets"]


def _registered_passes() -> set[str]:
    from porter.plugins import load_plugins

    return set(load_plugins().registry.specs["passes"])


def write_recipe(path: Path, *, checkpoint: Path, limit: int | None, batch_size: int, passes: list[str],
                 max_batch_frames: int = DEFAULT_MAX_BATCH_FRAMES, frame_budgets: tuple[int, ...] = (),
                 warmup: int = 2) -> Path:
    static = {"export": {"dynamic": False, "static_length": SEED_LENGTH, "batch": 1}}
    dynamic = {"export": {"dynamic": True}}
    bucketed = {"batching": "bucketed", "batch_size": batch_size, "max_batch_frames": max_batch_frames}
    dataset_options = {"splits": [TEST_SPLIT]}
    if limit:
        dataset_options["limit"] = limit
    recipe = {
        "name": "bench",
        "model": {"name": "deepspeech", "options": {"checkpoint": str(checkpoint)}},
        "dataset": {"name": "an4_synth", "options": dataset_options},
        "target": {"name": "onnxruntime", "flags": {"warmup": warmup}},
        "metrics": ["wer", "cer"],
        "variants": {
            REFERENCE: {"reference": True},
            SEED: {"model": static},
            BUCKETED: {"model": dynamic, "target": {"flags": bucketed}},
            INT8_BUCKETED: {"model": dynamic, "target": {"flags": {**bucketed, "quantize": "int8_dynamic"}}},
        },
    }
    for budget in frame_budgets:
        if budget != max_batch_frames:
            recipe["variants"][sweep_variant(budget)] = {
                "model": dynamic, "target": {"flags": {**bucketed, "max_batch_frames": budget}}}
    if passes:
        recipe["variants"][SEED_FIXED] = {"model": static, "graph_fix": list(passes)}
    if _has_openvino():
        ov_passes = [p for p in OPENVINO_PASSES if p in _registered_passes()]
        recipe["variants"][OPENVINO_BF16] = {
            "model": dynamic, "graph_fix": ov_passes,
            "target": {"name": "openvino", "flags": {**bucketed, "inference_precision": "bf16", "warmup": warmup}}}
        recipe["variants"][OPENVINO_INT8] = {
            "model": dynamic, "graph_fix": ov_passes,
            "target": {"name": "openvino", "flags": {**bucketed, **OPENVINO_INT8_FLAGS, "warmup": warmup}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


__all__ = ["OPENVINO_BF16", "OPENVINO_INT8", "OPENVINO_VARIANTS",
           "demo_checkpoint", "ascend_pass_names", "write_recipe", "sweep_variant", "SWEEP_PREFIX", "TIMED_VARIANTS",
           "ASCEND_CHAIN", "DEFAULT_MAX_BATCH_FRAMES"]
