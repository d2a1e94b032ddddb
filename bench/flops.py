"""Floating-point work of one DeepSpeech forward pass, counted from the model's own modules.

Multiply-adds count as two FLOPs; bias additions are counted; activations, masking, BatchNorm and the
softmax are not (they are a fraction of a percent here and no BLAS kernel runs them). The count follows the
time axis through each Conv2d exactly as the model does, so it holds for any input length and configuration.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

GATES = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}


@dataclass
class FlopCount:
    frames: int
    rnn_steps: int = 0
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.parts.values())

    def add(self, part: str, flops: float) -> None:
        self.parts[part] = self.parts.get(part, 0.0) + float(flops)


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def deepspeech_flops(model, frames: int) -> FlopCount:
    """FLOPs of ``model`` (a porter_deepspeech DeepSpeech) on one utterance of ``frames`` spectrogram frames."""
    count = FlopCount(frames=frames)
    freq, time = model.spect_cfg.n_bins, frames
    for module in model.conv.seq_module:
        if isinstance(module, nn.Conv2d):
            freq = _conv_out(freq, module.kernel_size[0], module.stride[0], module.padding[0], module.dilation[0])
            time = _conv_out(time, module.kernel_size[1], module.stride[1], module.padding[1], module.dilation[1])
            outputs = module.out_channels * freq * time
            per_output = (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
            count.add("conv", 2 * outputs * per_output + (outputs if module.bias is not None else 0))
    count.rnn_steps = time
    for index, layer in enumerate(model.rnns):
        rnn = layer.rnn
        gates = GATES[type(rnn)] * rnn.hidden_size
        directions = 2 if rnn.bidirectional else 1
        # per step and direction: input projection, recurrent projection, both biases
        per_step = 2 * gates * (rnn.input_size + rnn.hidden_size) + (2 * gates if rnn.bias else 0)
        count.add(f"rnn{index}", per_step * directions * time)
    if model.lookahead is not None:
        conv = model.lookahead[0].conv
        count.add("lookahead", 2 * conv.out_channels * conv.kernel_size[0] * time)
    for module in model.fc.modules():
        if isinstance(module, nn.Linear):
            count.add("fc", 2 * module.in_features * module.out_features * time
                      + (module.out_features * time if module.bias is not None else 0))
    return count


__all__ = ["FlopCount", "deepspeech_flops"]
