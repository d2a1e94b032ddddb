"""Checkpoints in the layout deepspeech.pytorch V3.0 writes, for the configurations the fixture does not hold,
and an independent V3.0 forward pass to check porter's model against.

The fixture (a bi-LSTM) is the only checkpoint here written by V3.0 itself. For GRU, RNN and the unidirectional
configuration with Lookahead, its pickle is read back into stand-ins that pickle again under the same global
names, the model part of the configuration is edited as V3.0 spells a UniDirectionalConfig / another RNNType,
and a new state_dict and optimizer state replace the fixture's. Every other part (the omegaconf tree whose
parent is the whole DeepSpeechConfig, callbacks, lr schedulers, the Lightning keys) stays as V3.0 wrote it.

The state_dict is made from the key names and shapes deepspeech-v3.md lists, and the reference forward pass is
assembled from torch built-ins (functional conv/batch-norm, torch.nn RNN modules over packed sequences), so
neither depends on porter's model.
"""
from __future__ import annotations

import collections
import copyreg
import math
import pickle
import pickletools
import sys
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F

FIXTURE = Path(__file__).parent / "fixtures" / "deepspeech_v3_0"
FIXTURE_CKPT = FIXTURE / "bilstm_h64_l2.ckpt"
STAND_IN_PACKAGES = ("omegaconf", "deepspeech_pytorch", "pytorch_lightning")
RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def pickle_globals(path: Path) -> set[str]:
    """The globals a torch-saved file's pickle names, as "module name" (protocol-2 spelling)."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
    return {arg for op, arg, _ in pickletools.genops(data) if op.name in ("GLOBAL", "STACK_GLOBAL")}


# ---------------------------------------------------------------------------------------------------------
# Stand-ins that read the fixture's config objects and write them back under the same names
# ---------------------------------------------------------------------------------------------------------


class Recorded:
    """An instance of a class the fixture's pickle named: its constructor arguments and state, written back the
    way they were read (NEWOBJ for omegaconf's copyreg objects, a call for Enum members)."""

    def __new__(cls, *args):
        obj = object.__new__(cls)
        obj.__dict__.update(args=args, state=None, newobj=True)
        return obj

    def __init__(self, *args):  # only a REDUCE (a call) runs __init__; NEWOBJ does not
        self.__dict__["newobj"] = False

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def __reduce__(self):
        if self.newobj:
            return (copyreg.__newobj__, (type(self), *self.args), self.state)
        return (type(self), self.args, self.state)


def _recorded_class(module: str, name: str, cache: dict) -> type:
    key = (module, name)
    if key not in cache:
        cls = type(name, (Recorded,), {"__module__": module, "__qualname__": name})
        cache[key] = cls
    return cache[key]


def read_fixture_tree(path: Path = FIXTURE_CKPT):
    """The fixture's whole checkpoint with its config classes as Recorded stand-ins; (tree, classes)."""
    classes: dict = {}
    allowed = pickle_globals(path)

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if f"{module} {name}" not in allowed and "Storage" not in name:
                raise pickle.UnpicklingError(f"{module}.{name} is not in the fixture's pickle")
            if module.split(".")[0] in STAND_IN_PACKAGES:
                return _recorded_class(module, name, classes)
            return super().find_class(module, name)

    module = SimpleNamespace(__name__="fixture_reader", Unpickler=Reader, load=lambda f, **kw: Reader(f, **kw).load(),
                             UnpicklingError=pickle.UnpicklingError)
    tree = torch.load(str(path), map_location="cpu", pickle_module=module, weights_only=False)
    return tree, classes


def _save_with_stand_ins(obj, path: Path, classes: dict) -> None:
    """torch.save with the stand-in classes importable under their real names only while pickling."""
    added = []
    try:
        for (module_name, name), cls in classes.items():
            parts = module_name.split(".")
            for depth in range(1, len(parts) + 1):
                prefix = ".".join(parts[:depth])
                if prefix not in sys.modules:
                    sys.modules[prefix] = types.ModuleType(prefix)
                    added.append(prefix)
            setattr(sys.modules[module_name], name, cls)
        torch.save(obj, str(path))
    finally:
        for name in added:
            del sys.modules[name]


# ---------------------------------------------------------------------------------------------------------
# The configurations and their weights
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class V3Config:
    rnn_type: str  # lstm / gru / rnn
    hidden_size: int
    hidden_layers: int
    bidirectional: bool
    lookahead_context: int = 20
    num_classes: int = 29
    n_bins: int = 161

    @property
    def rnn_input_size(self) -> int:
        size = int(math.floor(self.n_bins + 2 * 20 - 41) / 2 + 1)
        size = int(math.floor(size + 2 * 10 - 21) / 2 + 1)
        return size * 32


def v3_state_dict(cfg: V3Config, seed: int) -> collections.OrderedDict:
    """Random weights under V3.0's state_dict names and shapes (deepspeech-v3.md), BatchNorm statistics too."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, low=-0.3, high=0.3):
        return torch.rand(*shape, generator=gen) * (high - low) + low

    sd = collections.OrderedDict()

    def batch_norm(prefix, n):
        sd[f"{prefix}.weight"] = rand(n, low=0.7, high=1.3)
        sd[f"{prefix}.bias"] = rand(n, low=-0.2, high=0.2)
        sd[f"{prefix}.running_mean"] = rand(n, low=-0.3, high=0.3)
        sd[f"{prefix}.running_var"] = rand(n, low=0.5, high=1.5)
        sd[f"{prefix}.num_batches_tracked"] = torch.tensor(100)

    sd["conv.seq_module.0.weight"] = rand(32, 1, 41, 11, low=-0.03, high=0.03)
    sd["conv.seq_module.0.bias"] = rand(32, low=-0.1, high=0.1)
    batch_norm("conv.seq_module.1", 32)
    sd["conv.seq_module.3.weight"] = rand(32, 32, 21, 11, low=-0.01, high=0.01)
    sd["conv.seq_module.3.bias"] = rand(32, low=-0.1, high=0.1)
    batch_norm("conv.seq_module.4", 32)
    h, gates = cfg.hidden_size, GATES[cfg.rnn_type]
    for layer in range(cfg.hidden_layers):
        if layer:
            batch_norm(f"rnns.{layer}.batch_norm.module", h)
        width = cfg.rnn_input_size if layer == 0 else h
        scale = 1 / math.sqrt(h)
        for suffix in ("", "_reverse") if cfg.bidirectional else ("",):
            sd[f"rnns.{layer}.rnn.weight_ih_l0{suffix}"] = rand(gates * h, width, low=-scale, high=scale)
            sd[f"rnns.{layer}.rnn.weight_hh_l0{suffix}"] = rand(gates * h, h, low=-scale, high=scale)
            sd[f"rnns.{layer}.rnn.bias_ih_l0{suffix}"] = rand(gates * h, low=-scale, high=scale)
            sd[f"rnns.{layer}.rnn.bias_hh_l0{suffix}"] = rand(gates * h, low=-scale, high=scale)
    if not cfg.bidirectional:
        sd["lookahead.0.conv.weight"] = rand(h, 1, cfg.lookahead_context, low=-0.5, high=0.5)
    batch_norm("fc.0.module.0", h)
    sd["fc.0.module.1.weight"] = rand(cfg.num_classes, h, low=-1.0, high=1.0)
    return sd


def _clone(obj: Recorded, **state) -> Recorded:
    twin = object.__new__(type(obj))
    twin.__dict__.update(args=obj.args, newobj=obj.newobj,
                         state={**obj.state, **state} if isinstance(obj.state, dict) else obj.state)
    return twin


def write_v3_checkpoint(path: Path, cfg: V3Config, state_dict: collections.OrderedDict) -> Path:
    """A checkpoint laid out as the fixture, with ``cfg``'s model config, ``state_dict`` and AdamW state."""
    tree, classes = read_fixture_tree()
    config_class = "BiDirectionalConfig" if cfg.bidirectional else "UniDirectionalConfig"
    config_type = _recorded_class("deepspeech_pytorch.configs.train_config", config_class, classes)
    model_cfg = tree["hyper_parameters"]["model_cfg"]
    model_cfg.state["_metadata"].state.update(ref_type=config_type, object_type=config_type)
    content = model_cfg.state["_content"]
    enum_node = content["rnn_type"]
    member = _clone(enum_node.state["_val"])
    member.__dict__["args"] = (RNN_CLASSES[cfg.rnn_type],)  # RNNType's values are the torch classes
    enum_node.state["_val"] = member
    content["hidden_size"].state["_val"] = cfg.hidden_size
    content["hidden_layers"].state["_val"] = cfg.hidden_layers
    if not cfg.bidirectional:
        template = content["hidden_layers"]
        metadata = _clone(template.state["_metadata"], key="lookahead_context")
        content["lookahead_context"] = _clone(template, _val=cfg.lookahead_context, _metadata=metadata)
    tree["state_dict"] = state_dict
    params = [nn.Parameter(t.clone()) for k, t in state_dict.items() if not k.endswith("num_batches_tracked")
              and "running_" not in k]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    sum(p.sum() for p in params).backward()
    optimizer.step()
    tree["optimizer_states"] = [optimizer.state_dict()]
    _save_with_stand_ins(tree, path, classes)
    return path


# ---------------------------------------------------------------------------------------------------------
# V3.0's forward pass from torch built-ins
# ---------------------------------------------------------------------------------------------------------


def v3_forward(sd, cfg: V3Config, spect: torch.Tensor, lengths: torch.Tensor):
    """V3.0's eval-mode DeepSpeech.forward, as deepspeech-v3.md describes it: probs [B, T', C], lengths [B].
    The batch must be sorted longest first (V3's pack_padded_sequence insists)."""
    def bn(x, prefix):
        return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"], sd[f"{prefix}.weight"],
                            sd[f"{prefix}.bias"], training=False, eps=1e-5)

    out_lengths = lengths.int()
    for kernel, stride, pad in ((11, 2, 5), (11, 1, 5)):  # the time axis of the two Conv2d
        out_lengths = (out_lengths + 2 * pad - (kernel - 1) - 1) // stride + 1

    def mask(x):  # after every module, as MaskConv does, one utterance at a time
        x = x.clone()
        for i, length in enumerate(out_lengths.tolist()):
            x[i, :, :, length:] = 0
        return x

    x = spect
    x = mask(F.conv2d(x, sd["conv.seq_module.0.weight"], sd["conv.seq_module.0.bias"], stride=(2, 2),
                      padding=(20, 5)))
    x = mask(bn(x, "conv.seq_module.1"))
    x = mask(F.hardtanh(x, 0, 20))
    x = mask(F.conv2d(x, sd["conv.seq_module.3.weight"], sd["conv.seq_module.3.bias"], stride=(2, 1),
                      padding=(10, 5)))
    x = mask(bn(x, "conv.seq_module.4"))
    x = mask(F.hardtanh(x, 0, 20))
    b, c, f, t = x.shape
    x = x.reshape(b, c * f, t).permute(2, 0, 1)  # [T', B, 1312]
    h = cfg.hidden_size
    for layer in range(cfg.hidden_layers):
        if layer:
            x = bn(x.reshape(-1, h), f"rnns.{layer}.batch_norm.module").reshape(x.shape)
        rnn = RNN_CLASSES[cfg.rnn_type](x.shape[-1], h, bidirectional=cfg.bidirectional, bias=True)
        rnn.load_state_dict({k.split(".rnn.")[1]: v for k, v in sd.items() if k.startswith(f"rnns.{layer}.rnn.")})
        packed = nn.utils.rnn.pack_padded_sequence(x, out_lengths)
        y, _ = rnn(packed)
        x, _ = nn.utils.rnn.pad_packed_sequence(y)
        if cfg.bidirectional:
            x = x[..., :h] + x[..., h:]
    if not cfg.bidirectional:
        y = F.pad(x.permute(1, 2, 0), (0, cfg.lookahead_context - 1))  # [B, H, T' + context - 1]
        y = F.conv1d(y, sd["lookahead.0.conv.weight"], groups=h)
        x = F.hardtanh(y, 0, 20).permute(2, 0, 1)
    t2, b = x.shape[:2]
    x = bn(x.reshape(t2 * b, h), "fc.0.module.0")
    x = F.linear(x, sd["fc.0.module.1.weight"]).reshape(t2, b, -1).transpose(0, 1)
    return F.softmax(x, dim=-1), out_lengths
