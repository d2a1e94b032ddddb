"""The worked example's setup step: a small CNN that no porter plugin knows, exported to ONNX here, with a few
inputs and the outputs PyTorch gives for them.

    python recipes/examples/make_tiny_cnn.py            # writes recipes/examples/tiny_cnn/
    porter run recipes/examples/tiny_cnn.yaml

Writes ``tiny_cnn/model.onnx`` (dynamic batch), ``tiny_cnn/inputs/<n>.npz`` (one image per file, array
``image``) and ``tiny_cnn/references/<n>.npz`` (``logits`` and ``embedding`` from PyTorch eager). The weights are
seeded, not trained: the example is about keeping outputs, not about what the model predicts.
"""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
CLASSES = 10
SIZE = 28


class TinyCNN(nn.Module):
    """Two conv blocks with BatchNorm, global pooling, a linear head: the shape of most small vision models."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(16, CLASSES)

    def forward(self, image):
        embedding = self.features(image).flatten(1)
        return self.head(embedding), embedding


def build(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    model = TinyCNN()
    # non-trivial BatchNorm statistics, so folding them is visible in the numbers
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def write_example(out: Path, *, samples: int = 6, seed: int = 0) -> Path:
    """The .onnx, the inputs and PyTorch's outputs under ``out``; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    model = build(seed)
    example = torch.zeros(1, 1, SIZE, SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(model, (example,), str(out / "model.onnx"), input_names=["image"],
                          output_names=["logits", "embedding"], opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}, "embedding": {0: "batch"}})
    rng = np.random.default_rng(seed)
    for folder in ("inputs", "references"):
        (out / folder).mkdir(exist_ok=True)
    with torch.inference_mode():
        for index in range(samples):
            # smooth blobs rather than white noise: closer to what a vision model sees
            image = rng.standard_normal((1, 1, SIZE // 4, SIZE // 4)).astype(np.float32)
            image = np.kron(image, np.ones((1, 1, 4, 4), np.float32))
            logits, embedding = model(torch.from_numpy(image))
            np.savez(out / "inputs" / f"{index:03d}.npz", image=image)
            np.savez(out / "references" / f"{index:03d}.npz", logits=logits.numpy(), embedding=embedding.numpy())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "tiny_cnn")
    parser.add_argument("--samples", type=int, default=6)
    args = parser.parse_args(argv)
    print(write_example(args.out, samples=args.samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
