"""Small recurrent models for the graph-pass tests, exported the way users export them.

``DeepSpeechLike`` copies the shape of deepspeech.pytorch's RNN part (SequenceWise BatchNorm1d, packed
bidirectional LSTM, ``view(T, B, 2, H).sum(2)``, BatchNorm1d + Linear without bias, softmax); ``BatchFirstRNN``
is a different kind of model (batch-first, stacked layers, BatchNorm over [B, C, T], GRU or LSTM, unsorted
lengths, Linear with bias). ``layout1_lstm_model`` builds an ONNX LSTM with ``layout=1`` directly, since
torch never emits that attribute. Every BatchNorm gets random statistics so folding it is visible.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn


def randomize_batchnorms(module: nn.Module, seed: int = 0) -> None:
    generator = torch.Generator().manual_seed(seed)
    for child in module.modules():
        if isinstance(child, nn.BatchNorm1d):
            size = child.num_features
            with torch.no_grad():
                child.weight.copy_(torch.rand(size, generator=generator) + 0.5)
                child.bias.copy_(torch.randn(size, generator=generator) * 0.3)
                child.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
                child.running_var.copy_(torch.rand(size, generator=generator) + 0.5)


class SequenceWise(nn.Module):
    """[T, B, C] → [T*B, C] → module → [T, B, C], as deepspeech.pytorch does."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x):
        t, n = x.size(0), x.size(1)
        x = x.view(t * n, -1)
        x = self.module(x)
        return x.view(t, n, -1)


class BatchRNN(nn.Module):
    def __init__(self, input_size, hidden_size, batch_norm, use_lengths, rnn_type=nn.LSTM, direction_sum="view"):
        super().__init__()
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = rnn_type(input_size, hidden_size, bidirectional=True, bias=True)
        self.use_lengths = use_lengths
        self.direction_sum = direction_sum

    def forward(self, x, lengths):
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        if self.use_lengths:
            x = nn.utils.rnn.pack_padded_sequence(x, lengths)
            x, _ = self.rnn(x)
            x, _ = nn.utils.rnn.pad_packed_sequence(x)
        else:
            x, _ = self.rnn(x)
        t, n = x.size(0), x.size(1)
        if self.direction_sum == "view":
            return x.view(t, n, 2, -1).sum(2)
        half = x.size(2) // 2
        return x[:, :, :half] + x[:, :, half:]  # the Slice + Add form


class DeepSpeechLike(nn.Module):
    """Input [T, B, C] time-major features and int32 lengths; output [B, T, classes] probabilities."""

    def __init__(self, input_size=12, hidden_size=20, layers=3, classes=7, use_lengths=True,
                 rnn_type=nn.LSTM, direction_sum="view"):
        super().__init__()
        self.rnns = nn.ModuleList(
            BatchRNN(input_size if i == 0 else hidden_size, hidden_size, batch_norm=i > 0,
                     use_lengths=use_lengths, rnn_type=rnn_type, direction_sum=direction_sum)
            for i in range(layers))
        self.fc = SequenceWise(nn.Sequential(nn.BatchNorm1d(hidden_size), nn.Linear(hidden_size, classes, bias=False)))

    def forward(self, x, lengths):
        for layer in self.rnns:
            x = layer(x, lengths)
        x = self.fc(x)
        return torch.softmax(x.transpose(0, 1), dim=-1)


class BatchFirstRNN(nn.Module):
    """Input [B, T, C] and int64 lengths (any order); BatchNorm over [B, C, T]; stacked bidirectional layers."""

    def __init__(self, input_size=10, hidden_size=24, layers=2, classes=5, rnn_type=nn.GRU, use_lengths=True):
        super().__init__()
        self.bn = nn.BatchNorm1d(input_size)
        self.rnn = rnn_type(input_size, hidden_size, num_layers=layers, bidirectional=True, batch_first=True)
        self.fc = nn.Linear(2 * hidden_size, classes)
        self.use_lengths = use_lengths

    def forward(self, x, lengths):
        x = self.bn(x.transpose(1, 2)).transpose(1, 2)
        if self.use_lengths:
            x = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            x, _ = self.rnn(x)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True)
        else:
            x, _ = self.rnn(x)
        return self.fc(x)


def export(module: nn.Module, args, input_names, output_names, dynamic_axes, opset: int = 11) -> onnx.ModelProto:
    module.eval()
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, dynamo=False, input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=opset)
    return onnx.load_from_string(buffer.getvalue())


def export_deepspeech_like(use_lengths=True, seed=0, opset=11, **kwargs) -> onnx.ModelProto:
    torch.manual_seed(seed)
    model = DeepSpeechLike(use_lengths=use_lengths, **kwargs)
    randomize_batchnorms(model, seed)
    x = torch.randn(9, 3, model.rnns[0].rnn.input_size)
    lengths = torch.tensor([9, 7, 4], dtype=torch.int32)
    return export(model, (x, lengths), ["features", "lengths"], ["probs"],
                  {"features": {0: "T", 1: "B"}, "lengths": {0: "B"}, "probs": {0: "B", 1: "T"}}, opset=opset)


def export_batch_first(rnn_type=nn.GRU, use_lengths=True, seed=1, opset=14, **kwargs) -> onnx.ModelProto:
    torch.manual_seed(seed)
    model = BatchFirstRNN(rnn_type=rnn_type, use_lengths=use_lengths, **kwargs)
    randomize_batchnorms(model, seed)
    x = torch.randn(3, 8, model.bn.num_features)
    lengths = torch.tensor([8, 3, 6], dtype=torch.int64)
    return export(model, (x, lengths), ["x", "lengths"], ["y"],
                  {"x": {0: "B", 1: "T"}, "lengths": {0: "B"}, "y": {0: "B", 1: "T"}}, opset=opset)


def time_major_feeds(time_steps=11, lengths=(11, 8, 5, 2), features=12, seed=0, length_dtype=np.int32):
    """A padded batch: the padding holds random values, so any pass that reads past a length shows up."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((time_steps, len(lengths), features)).astype(np.float32)
    return {"features": x, "lengths": np.asarray(lengths, dtype=length_dtype)}


def batch_first_feeds(time_steps=10, lengths=(4, 10, 7), features=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((len(lengths), time_steps, features)).astype(np.float32)
    return {"x": x, "lengths": np.asarray(lengths, dtype=np.int64)}


def layout1_lstm_model(input_size=6, hidden_size=10, with_lengths=True, with_states=True, seed=0) -> onnx.ModelProto:
    """x [B, T, I] → bidirectional LSTM with layout=1 → Y [B, T, 2, H], Y_h and Y_c [B, 2, H] as outputs."""
    rng = np.random.default_rng(seed)
    directions = 2
    weights = {
        "W": rng.standard_normal((directions, 4 * hidden_size, input_size)).astype(np.float32) * 0.4,
        "R": rng.standard_normal((directions, 4 * hidden_size, hidden_size)).astype(np.float32) * 0.4,
        "Bias": rng.standard_normal((directions, 8 * hidden_size)).astype(np.float32) * 0.2,
    }
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", input_size])]
    lstm_inputs = ["x", "W", "R", "Bias", "", "", ""]
    if with_lengths:
        inputs.append(helper.make_tensor_value_info("lengths", TensorProto.INT32, ["B"]))
        lstm_inputs[4] = "lengths"
    if with_states:
        inputs.append(helper.make_tensor_value_info("h0", TensorProto.FLOAT, ["B", directions, hidden_size]))
        inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, ["B", directions, hidden_size]))
        lstm_inputs[5:7] = ["h0", "c0"]
    while not lstm_inputs[-1]:
        lstm_inputs.pop()
    node = helper.make_node("LSTM", lstm_inputs, ["y", "y_h", "y_c"], name="lstm", direction="bidirectional",
                            hidden_size=hidden_size, layout=1)
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", directions, hidden_size]),
               helper.make_tensor_value_info("y_h", TensorProto.FLOAT, ["B", directions, hidden_size]),
               helper.make_tensor_value_info("y_c", TensorProto.FLOAT, ["B", directions, hidden_size])]
    graph = helper.make_graph([node], "layout1", inputs, outputs,
                              [numpy_helper.from_array(v, k) for k, v in weights.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    sess = session(model)
    names = {i.name for i in sess.get_inputs()}
    return sess.run(None, {k: v for k, v in feeds.items() if k in names})


def max_abs_diff(before: onnx.ModelProto, after: onnx.ModelProto, feeds: dict) -> float:
    """The largest difference over every graph output; outputs must keep their names, shapes and order."""
    expected = run(before, feeds)
    actual = run(after, feeds)
    assert [o.name for o in before.graph.output] == [o.name for o in after.graph.output]
    worst = 0.0
    for e, a in zip(expected, actual):
        assert e.shape == a.shape, (e.shape, a.shape)
        worst = max(worst, float(np.max(np.abs(e.astype(np.float64) - a.astype(np.float64)))) if e.size else 0.0)
    return worst


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def directions(model: onnx.ModelProto, op_type: str = "LSTM") -> list[str]:
    found = []
    for node in model.graph.node:
        if node.op_type == op_type:
            value = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "direction"), b"forward")
            found.append(value.decode() if isinstance(value, bytes) else value)
    return found


USER_CHAIN = ("cleanup", "fold_batchnorm_into_lstm", "split_bidirectional_lstm", "direction_sum_to_add",
              "cancel_transposes", "fold_batchnorm_into_matmul", "pad_rnn_to_multiple", "cleanup")


def apply_passes(model: onnx.ModelProto, names=USER_CHAIN, options: dict | None = None) -> onnx.ModelProto:
    """Run passes by name as the core would (ascend310 PASSES, the core's builtin ones), checking each result."""
    from porter.builtin import onnx_passes
    from porter_ascend310.passes import PASSES

    options = options or {}
    for name in names:
        fn = PASSES[name][1] if name in PASSES else onnx_passes.IMPLEMENTATIONS[name]
        model = fn(onnx.ModelProto.FromString(model.SerializeToString()), **options.get(name, {}))
        onnx.checker.check_model(model)
    return model


def hidden_sizes(model: onnx.ModelProto) -> list[int]:
    return [next(helper.get_attribute_value(a) for a in n.attribute if a.name == "hidden_size")
            for n in model.graph.node if n.op_type in ("LSTM", "GRU", "RNN")]
