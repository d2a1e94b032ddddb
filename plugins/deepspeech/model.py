"""DeepSpeech2 exactly as deepspeech.pytorch V3.0 builds it (module tree, state-dict names, forward maths).

Only the MaskConv mask differs in construction: it is computed with tensor ops from the lengths, so a traced
ONNX export keeps it input-dependent instead of freezing it at the tracing length (the reference's
per-item `.item()` loop). The values it produces are the same.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


@dataclass
class ModelConfig:
    rnn_type: str = "lstm"
    hidden_size: int = 1024
    hidden_layers: int = 5
    bidirectional: bool = True
    lookahead_context: int = 20


@dataclass
class SpectConfig:
    sample_rate: int = 16000
    window_size: float = 0.02
    window_stride: float = 0.01
    window: str = "hamming"

    @property
    def n_fft(self) -> int:
        return int(self.sample_rate * self.window_size)

    @property
    def hop_length(self) -> int:
        return int(self.sample_rate * self.window_stride)

    @property
    def n_bins(self) -> int:
        return int(math.floor(self.sample_rate * self.window_size / 2) + 1)


class SequenceWise(nn.Module):
    """Applies a per-frame module to a time-major [T, N, H] tensor by folding time into the batch."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, n = x.size(0), x.size(1)
        x = x.reshape(t * n, -1)
        x = self.module(x)
        return x.view(t, n, -1)


def time_padding_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """[B, steps] bool, True where a time step lies beyond the utterance's length."""
    time_index = torch.arange(steps, device=lengths.device)
    return time_index.unsqueeze(0) >= lengths.to(time_index.dtype).unsqueeze(1)


class MaskConv(nn.Module):
    """Runs a Sequential and zeroes the padded time steps after its modules.

    Training zeroes them after every module, as V3 does: BatchNorm's batch statistics then count padded steps as
    zeros. In eval a pointwise module (BatchNorm on running statistics, an activation) maps each time step on its
    own, so whatever it leaves in the padded steps stays there; zeroing them only before a module that mixes time
    steps (the next Conv) and at the end gives the same values bit for bit, with a third of the masking, and lets
    ONNX Runtime and atc fuse Conv + BatchNorm + activation.
    """

    def __init__(self, seq_module: nn.Sequential):
        super().__init__()
        self.seq_module = seq_module

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        modules = list(self.seq_module)
        for i, module in enumerate(modules):
            x = module(x)
            if self.training or i + 1 == len(modules) or not _pointwise_in_eval(modules[i + 1]):
                pad = time_padding_mask(lengths, x.size(3))[:, None, None, :]
                x = x.masked_fill(pad, 0)
        return x, lengths


def _pointwise_in_eval(module: nn.Module) -> bool:
    """Whether ``module`` in eval mode computes each element from that element alone."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.track_running_stats  # without running statistics it normalises over the batch
    return isinstance(module, (nn.Hardtanh, nn.ReLU, nn.ReLU6, nn.Identity))


class BatchRNN(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, rnn_type: type[nn.Module] = nn.LSTM,
                 bidirectional: bool = False, batch_norm: bool = True):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = rnn_type(input_size=input_size, hidden_size=hidden_size,
                            bidirectional=bidirectional, bias=True)

        # A one-direction RNN of the same kind, never registered (the checkpoint keeps V3's keys): training runs
        # each direction of self.rnn's weights through it on padded batches (see rnn_on_padded). On the meta
        # device it holds no weights of its own, so models that only infer pay nothing for it.
        self._one_direction = (rnn_type(input_size=input_size, hidden_size=hidden_size, bias=True, device="meta"),)

    def forward(self, x: torch.Tensor, output_lengths: torch.Tensor) -> torch.Tensor:
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        if self.training:
            x = self.rnn_on_padded(x, output_lengths)
        else:
            # enforce_sorted=False gives the same results as the reference's pre-sorted batches.
            packed = nn.utils.rnn.pack_padded_sequence(x, output_lengths.cpu(), enforce_sorted=False)
            packed, _ = self.rnn(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(packed)
        if self.bidirectional:
            x = x.view(x.size(0), x.size(1), 2, -1).sum(2)
        return x

    def rnn_on_padded(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """What the packed RNN computes, on the padded batch: the same outputs at every valid step, zeros after.

        The backward pass of torch's packed CPU RNN slices the packed input once per time step and each slice's
        gradient is a zero-filled copy of the whole input, so a step costs O(T^2): measured 1.7x slower than this
        at 110 steps and 3x at 300. The forward direction cannot see the padding after each sequence; the
        backward direction runs on each sequence reversed within its own length.
        """
        lengths = lengths.to(torch.long).cpu()
        steps = int(lengths.max())
        x = x[:steps]
        positions = torch.arange(steps).unsqueeze(1)
        template = self._one_direction[0]
        suffixes = [""] + (["_reverse"] if self.bidirectional else [])
        outputs = []
        for suffix in suffixes:
            weights = {name: getattr(self.rnn, name + suffix)
                       for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
            if suffix:
                within = lengths.unsqueeze(0) - 1 - positions
                order = torch.where(within >= 0, within, positions).unsqueeze(-1).expand_as(x)
                y, _ = torch.func.functional_call(template, weights, (x.gather(0, order),))
                y = y.gather(0, order[..., :1].expand_as(y))
            else:
                y, _ = torch.func.functional_call(template, weights, (x,))
            outputs.append(y)
        valid = (positions < lengths.unsqueeze(0)).unsqueeze(-1).to(x.dtype)
        return torch.cat(outputs, dim=-1) * valid


class Lookahead(nn.Module):
    """Depthwise future-context convolution used by the unidirectional configuration."""

    def __init__(self, n_features: int, context: int):
        super().__init__()
        assert context > 0
        self.context = context
        self.n_features = n_features
        self.conv = nn.Conv1d(n_features, n_features, kernel_size=context, stride=1,
                              groups=n_features, padding=0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(0, 1).transpose(1, 2)  # [T, N, H] -> [N, H, T]
        x = F.pad(x, pad=(0, self.context - 1))
        x = self.conv(x)
        return x.transpose(1, 2).transpose(0, 1).contiguous()


class DeepSpeech(nn.Module):
    def __init__(self, labels, model_cfg: ModelConfig | None = None, spect_cfg: SpectConfig | None = None):
        super().__init__()
        self.labels = list(labels)
        self.model_cfg = model_cfg or ModelConfig()
        self.spect_cfg = spect_cfg or SpectConfig()
        cfg = self.model_cfg
        if cfg.rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type {cfg.rnn_type!r}: expected one of {sorted(RNN_TYPES)}")
        rnn_type = RNN_TYPES[cfg.rnn_type]
        num_classes = len(self.labels)
        self.bidirectional = bool(cfg.bidirectional)

        self.conv = MaskConv(nn.Sequential(
            nn.Conv2d(1, 32, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5)),
            nn.BatchNorm2d(32),
            nn.Hardtanh(0, 20, inplace=True),
            nn.Conv2d(32, 32, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5)),
            nn.BatchNorm2d(32),
            nn.Hardtanh(0, 20, inplace=True),
        ))
        rnn_input_size = self.spect_cfg.n_bins
        rnn_input_size = int(math.floor(rnn_input_size + 2 * 20 - 41) / 2 + 1)
        rnn_input_size = int(math.floor(rnn_input_size + 2 * 10 - 21) / 2 + 1)
        rnn_input_size *= 32
        self.rnn_input_size = rnn_input_size

        layers = [BatchRNN(rnn_input_size, cfg.hidden_size, rnn_type, self.bidirectional, batch_norm=False)]
        layers += [BatchRNN(cfg.hidden_size, cfg.hidden_size, rnn_type, self.bidirectional)
                   for _ in range(cfg.hidden_layers - 1)]
        self.rnns = nn.Sequential(*layers)
        self.lookahead = None if self.bidirectional else nn.Sequential(
            Lookahead(cfg.hidden_size, context=cfg.lookahead_context),
            nn.Hardtanh(0, 20, inplace=True),
        )
        self.fc = nn.Sequential(SequenceWise(nn.Sequential(
            nn.BatchNorm1d(cfg.hidden_size),
            nn.Linear(cfg.hidden_size, num_classes, bias=False),
        )))

    def get_seq_lens(self, input_length: torch.Tensor) -> torch.Tensor:
        """Frames left after the conv front end (time axis of each Conv2d), as int32."""
        seq_len = input_length
        for m in self.conv.modules():
            if isinstance(m, nn.Conv2d):
                seq_len = (seq_len + 2 * int(m.padding[1]) - m.dilation[1] * (m.kernel_size[1] - 1) - 1) \
                    // m.stride[1] + 1
        return seq_len.int()

    def forward_logits(self, x: torch.Tensor, lengths: torch.Tensor):
        """Pre-softmax outputs [B, T', C] and output lengths; training takes log_softmax of these."""
        lengths = lengths.cpu().int()
        output_lengths = self.get_seq_lens(lengths)
        x, _ = self.conv(x, output_lengths)
        sizes = x.size()
        x = x.view(sizes[0], sizes[1] * sizes[2], sizes[3])
        x = x.transpose(1, 2).transpose(0, 1).contiguous()  # [T', B, 1312]
        for rnn in self.rnns:
            x = rnn(x, output_lengths)
        if self.lookahead is not None:
            x = self.lookahead(x)
        x = self.fc(x)
        return x.transpose(0, 1), output_lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        x, output_lengths = self.forward_logits(x, lengths)
        if not self.training:
            x = F.softmax(x, dim=-1)
        return x, output_lengths
