"""A test model plugin whose answer to "what must stay fp32" is known: one layer made fragile on purpose.

``fragile``: x[B, 8] → MatMul → Add → Relu → MatMul → Add(+2048) → Sub(-2048) → Relu → MatMul → Softmax.
The ``/big/Add`` node lifts the hidden values (about ±3) to about 2048, where fp16 steps by 2 and bf16 by 16,
and ``/big/Sub`` brings them back: stored in reduced precision, the Add's output has lost the hidden values, so
the classifier's decisions collapse. Keeping ``/big/Add`` in fp32 restores them; nothing else does on its own.

Labels are the fp32 model's own decisions, so the fp32 error rate is 0 and any error is precision loss.
The ``split_and_rename`` pass splits the first MatMul into two column halves and renames the first Relu's
output, recording both in the model's provenance, so tensor matching across passes has something to follow.
"""
from __future__ import annotations

import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from porter.api import (
    DatasetSpec,
    InputSet,
    Metrics,
    MetricSpec,
    ModelSpec,
    OnnxModel,
    Option,
    OutputSet,
    ParityCheck,
    PassSpec,
    Provenance,
    SampleScore,
    Timing,
    hookimpl,
    model_io,
    note_provenance,
    opset_of,
    session,
    write_sample,
)

FEATURES, HIDDEN, CLASSES = 8, 16, 3
OFFSET = 2048.0


def weights():
    rng = np.random.default_rng(3)
    return {
        "W1": rng.normal(0, 0.6, (FEATURES, HIDDEN)).astype(np.float32),
        "b1": rng.normal(0, 0.1, (HIDDEN,)).astype(np.float32),
        "W2": rng.normal(0, 0.4, (HIDDEN, HIDDEN)).astype(np.float32),
        "offset": np.array(OFFSET, np.float32),
        "W3": rng.normal(0, 0.8, (HIDDEN, CLASSES)).astype(np.float32),
    }


def build_model() -> onnx.ModelProto:
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h1"], name="/fc1/MatMul"),
        helper.make_node("Add", ["h1", "b1"], ["h1b"], name="/fc1/Add"),
        helper.make_node("Relu", ["h1b"], ["a1"], name="/act1/Relu"),
        helper.make_node("MatMul", ["a1", "W2"], ["h2"], name="/fc2/MatMul"),
        helper.make_node("Add", ["h2", "offset"], ["lifted"], name="/big/Add"),
        helper.make_node("Sub", ["lifted", "offset"], ["h2back"], name="/big/Sub"),
        helper.make_node("Relu", ["h2back"], ["a2"], name="/act2/Relu"),
        helper.make_node("MatMul", ["a2", "W3"], ["logits"], name="/fc3/MatMul"),
        helper.make_node("Softmax", ["logits"], ["probs"], name="/Softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "fragile", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", CLASSES])],
        [numpy_helper.from_array(v, k) for k, v in weights().items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


def forward(x: np.ndarray) -> np.ndarray:
    w = weights()
    a1 = np.maximum(x @ w["W1"] + w["b1"], 0)
    a2 = np.maximum(a1 @ w["W2"], 0)  # +offset -offset is exact in fp32 at these magnitudes
    logits = a2 @ w["W3"]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@hookimpl
def porter_register_models():
    return [ModelSpec("fragile", "an MLP with one layer fragile in fp16 (test plugin)")]


@hookimpl
def porter_register_datasets():
    return [DatasetSpec("fragile_points", "random points labelled by the fp32 model",
                        options={"n": Option("int", 40)})]


@hookimpl
def porter_register_metrics():
    return [MetricSpec("error_rate", "percent misclassified", unit="%")]


@hookimpl
def porter_register_passes():
    return [PassSpec("split_and_rename", "splits /fc1/MatMul into two column halves and renames a1, recording "
                     "provenance (test plugin)", tolerance=1e-5)]


@hookimpl
def porter_graph_fix(graph_pass, model):
    if graph_pass.name != "split_and_rename":
        return None
    graph = model.graph
    w1 = next(numpy_helper.to_array(i) for i in graph.initializer if i.name == "W1")
    graph.initializer.extend([numpy_helper.from_array(w1[:, :HIDDEN // 2].copy(), "W1_left"),
                              numpy_helper.from_array(w1[:, HIDDEN // 2:].copy(), "W1_right")])
    nodes = []
    for node in graph.node:
        if node.name == "/fc1/MatMul":
            nodes += [helper.make_node("MatMul", ["x", "W1_left"], ["h1_left"], name="/fc1/MatMul_left"),
                      helper.make_node("MatMul", ["x", "W1_right"], ["h1_right"], name="/fc1/MatMul_right"),
                      helper.make_node("Concat", ["h1_left", "h1_right"], ["h1_joined"], name="/fc1/Concat", axis=1)]
            continue
        node = onnx.NodeProto.FromString(node.SerializeToString())
        node.input[:] = ["h1_joined" if n == "h1" else ("a1_renamed" if n == "a1" else n) for n in node.input]
        node.output[:] = ["a1_renamed" if n == "a1" else n for n in node.output]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    note_provenance(model, [Provenance("h1_left", "h1", source_slices=((1, 0, HIDDEN // 2),)),
                            Provenance("h1_right", "h1", source_slices=((1, HIDDEN // 2, HIDDEN),)),
                            Provenance("h1_joined", "h1"),
                            Provenance("a1_renamed", "a1")])
    return model


@hookimpl
def porter_preprocess(dataset, model, workdir):
    if dataset.name != "fragile_points":
        return None
    rng = np.random.default_rng(11)
    x = rng.normal(0, 1.5, (dataset.options["n"], FEATURES)).astype(np.float32)
    labels = forward(x).argmax(-1)
    for i in range(len(x)):
        write_sample(workdir, i, {"x": x[i:i + 1]})
    return InputSet(workdir, tuple(f"p{i}" for i in range(len(x))), ("x",), tuple(str(int(v)) for v in labels))


@hookimpl
def porter_export(model, inputs, workdir):
    if model.name != "fragile":
        return None
    proto = build_model()
    path = workdir / "fragile.onnx"
    onnx.save(proto, str(path))
    sess = session(path)
    worst = 0.0
    for i in range(min(4, len(inputs))):
        x = inputs.load(i)["x"]
        worst = max(worst, float(np.abs(sess.run(None, {"x": x})[0] - forward(x)).max()))
    ins, outs = model_io(proto)
    return OnnxModel(path, ins, outs, opset_of(proto),
                     checks=(ParityCheck("export vs numpy", worst, 1e-4, min(4, len(inputs))),))


@hookimpl
def porter_run_reference(model, inputs, workdir):
    if model.name != "fragile":
        return None
    latencies = []
    for i in range(len(inputs)):
        t0 = time.perf_counter()
        y = forward(inputs.load(i)["x"])
        latencies.append((time.perf_counter() - t0) * 1000)
        write_sample(workdir, i, {"probs": y})
    return OutputSet(workdir, inputs.sample_ids, ("probs",), Timing(tuple(latencies), sum(latencies) / 1000))


@hookimpl
def porter_score(model, metrics, inputs, outputs):
    if model.name != "fragile":
        return None
    samples, wrong = [], 0
    for i in range(len(outputs)):
        pred = str(int(np.argmax(outputs.load(i)["probs"][0])))
        err = float(pred != inputs.references[i])
        wrong += err
        samples.append(SampleScore(inputs.sample_ids[i], inputs.references[i], pred, {"error_rate": 100 * err}))
    return Metrics({"error_rate": 100.0 * wrong / len(outputs)}, tuple(samples))
