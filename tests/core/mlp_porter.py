"""A small model plugin used by the core tests: an MLP classifier on synthetic Gaussian blobs.

It implements every stage hook through the public interface, as a third-party model plugin would.
"""
from __future__ import annotations

import time

import numpy as np
import onnx
import torch
from torch import nn

from porter import hookimpl
from porter.agreement import compare_samples, first_problem, worst_difference
from porter.artifacts import InputSet, Metrics, OnnxModel, OutputSet, ParityCheck, SampleScore, Timing, write_sample
from porter.onnx_io import model_io, opset_of
from porter.specs import DatasetSpec, MetricSpec, ModelSpec, Option, PassSpec

PLUGIN_VERSION = "1.0"
FEATURES = 8
CLASSES = 3


class MLP(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(FEATURES, hidden), nn.ReLU(), nn.Linear(hidden, CLASSES))

    def forward(self, x):
        return torch.softmax(self.net(x), dim=-1)


def blobs(n: int, seed: int):
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(0).normal(0, 3, size=(CLASSES, FEATURES))
    labels = rng.integers(0, CLASSES, size=n)
    x = centers[labels] + rng.normal(0, 1.0, size=(n, FEATURES))
    return x.astype(np.float32), labels


def train_checkpoint(path, hidden: int = 16, steps: int = 200):
    torch.manual_seed(0)
    model = MLP(hidden)
    x, y = blobs(512, seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.nll_loss(torch.log(model(torch.from_numpy(x)) + 1e-9), torch.from_numpy(y))
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), path)


def _half_sleep(model_cfg, stage: str, workdir) -> None:
    """Write a partial file, then sleep: a kill now leaves a half-done work directory behind."""
    seconds = model_cfg.options.get("delays", {}).get(stage, 0)
    if seconds:
        (workdir / "partial.bin").write_bytes(b"\0" * 1024)
        time.sleep(seconds)


def _load(model_cfg) -> MLP:
    m = MLP(model_cfg.options["hidden"])
    m.load_state_dict(torch.load(model_cfg.options["checkpoint"], weights_only=True))
    return m.eval()


@hookimpl
def porter_register_models():
    return [ModelSpec("mlp", "MLP classifier (test plugin)",
                      options={"checkpoint": Option("path", required=True),
                               "hidden": Option("int", 16, min=1, max=4096),
                               # seconds to sleep in a stage, so tests can interrupt it mid-way
                               "delays": Option("dict", {})},
                      export_options={"opset": Option("int", 13, min=7, max=20)})]


@hookimpl
def porter_register_datasets():
    return [DatasetSpec("blobs", "Gaussian blobs", options={"n": Option("int", 40, min=0, max=100_000),
                                                          "seed": Option("int", 7, min=0),
                                                          "delay": Option("float", 0.0, min=0.0)})]


@hookimpl
def porter_register_metrics():
    return [MetricSpec("error_rate", "percent misclassified", unit="%"),
            MetricSpec("accuracy", "percent classified correctly", unit="%")]


@hookimpl
def porter_register_passes():
    return [PassSpec("scale_logits", "multiplies the outputs by a factor (breaks parity on purpose)",
                     options={"factor": Option("float", 2.0)}, tolerance=1e-4),
            PassSpec("slow_identity", "changes nothing, slowly (so tests can interrupt a graph pass)",
                     options={"seconds": Option("float", 0.0, min=0.0)})]


@hookimpl
def porter_graph_fix(graph_pass, model):
    if graph_pass.name == "slow_identity":
        time.sleep(graph_pass.options["seconds"])
        return model
    if graph_pass.name != "scale_logits":
        return None
    out = model.graph.output[0]
    scale = onnx.helper.make_tensor("scale_factor", onnx.TensorProto.FLOAT, [], [graph_pass.options["factor"]])
    model.graph.initializer.append(scale)
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == out.name:
                node.output[i] = out.name + "_unscaled"
    model.graph.node.append(onnx.helper.make_node("Mul", [out.name + "_unscaled", "scale_factor"], [out.name]))
    return model


@hookimpl
def porter_preprocess(dataset, model, workdir):
    if dataset.name != "blobs":
        return None
    x, y = blobs(dataset.options["n"], dataset.options["seed"])
    for i in range(len(x)):
        write_sample(workdir, i, {"x": x[i:i + 1]})
        time.sleep(dataset.options["delay"] / len(x))
    return InputSet(workdir, tuple(f"s{i}" for i in range(len(x))), ("x",), tuple(str(int(v)) for v in y),
                    groups=tuple("even" if i % 2 == 0 else "odd" for i in range(len(x))))


@hookimpl
def porter_export(model, inputs, workdir):
    if model.name != "mlp":
        return None
    net = _load(model)
    path = workdir / "mlp.onnx"
    _half_sleep(model, "export", workdir)
    torch.onnx.export(net, (torch.zeros(1, FEATURES),), str(path), input_names=["x"], output_names=["probs"],
                      dynamic_axes={"x": {0: "batch"}, "probs": {0: "batch"}}, opset_version=model.export["opset"],
                      dynamo=False)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    count = min(4, len(inputs))
    refs, news = [], []
    for i in range(count):
        x = inputs.load(i)["x"]
        refs.append({"probs": net(torch.from_numpy(x)).detach().numpy()})
        news.append({"probs": sess.run(None, {"x": x})[0]})
    agreements = compare_samples(refs, news)
    proto = onnx.load(str(path))
    ins, outs = model_io(proto)
    return OnnxModel(path, ins, outs, opset_of(proto),
                     checks=(ParityCheck("export vs torch", worst_difference(agreements), 1e-5, count,
                                         problem=first_problem(agreements)),))


@hookimpl
def porter_run_reference(model, inputs, workdir):
    if model.name != "mlp":
        return None
    net = _load(model)
    _half_sleep(model, "run_reference", workdir)
    lat = []
    t_all = 0.0
    with torch.no_grad():
        for i in range(len(inputs)):
            x = torch.from_numpy(inputs.load(i)["x"])
            t0 = time.perf_counter()
            y = net(x).numpy()
            dt = time.perf_counter() - t0
            t_all += dt
            lat.append(dt * 1000)
            write_sample(workdir, i, {"probs": y})
    return OutputSet(workdir, inputs.sample_ids, ("probs",), Timing(tuple(lat), t_all))


@hookimpl
def porter_score(model, metrics, inputs, outputs):
    if model.name != "mlp":
        return None
    samples = []
    wrong = 0
    groups: dict[str, list[int]] = {}
    for i in range(len(outputs)):
        pred = str(int(np.argmax(outputs.load(i)["probs"][0])))
        err = float(pred != inputs.references[i])
        wrong += err
        samples.append(SampleScore(inputs.sample_ids[i], inputs.references[i], pred, {"error_rate": 100 * err}))
        groups.setdefault(inputs.groups[i], []).append(int(err))
    values = {"error_rate": 100.0 * wrong / len(outputs)}
    for g, errs in groups.items():
        values[f"error_rate/{g}"] = 100.0 * sum(errs) / len(errs)
    if "accuracy" in metrics:
        values.update({name.replace("error_rate", "accuracy"): 100.0 - value for name, value in list(values.items())})
    return Metrics(values, tuple(samples))
