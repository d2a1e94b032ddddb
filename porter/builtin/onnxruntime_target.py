"""The built-in target: ONNX Runtime on the CPU, so every recipe runs end to end on any machine."""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx

from porter import __version__, hookimpl
from porter.artifacts import CompiledModel, OutputSet, Timing, write_sample
from porter.errors import InputError
from porter.onnx_io import feeds_for, model_io, session, stack_batch
from porter.specs import Option, TargetSpec

PLUGIN_VERSION = __version__
TARGET = "onnxruntime"

# ONNX Runtime takes any thread count; more than this is a typo, not a machine
MAX_THREADS = 1024

FLAGS = {
    "graph_optimization_level": Option("str", "all", ("disable", "basic", "extended", "all"),
                                       "ONNX Runtime graph optimisation level"),
    "save_optimized": Option("bool", True, help="save the optimised graph as the compiled artifact"),
    "quantize": Option("str", "none", ("none", "int8_dynamic", "int8_dynamic_conv"),
                       "int8 dynamic quantisation of MatMul/LSTM/Gemm weights (onnxruntime.quantization); "
                       "int8_dynamic_conv quantises the convolutions too"),
    "keep_dtype": Option("path", help="keep-list in atc's --keep_dtype format (node names, or OpType::Type lines): "
                                      "those nodes stay fp32 when quantize is set (quantize_dynamic's "
                                      "nodes_to_exclude)"),
    "intra_op_threads": Option("int", 0, min=0, max=MAX_THREADS,
                               help="threads inside one op; 0 lets ONNX Runtime choose"),
    "inter_op_threads": Option("int", 0, min=0, max=MAX_THREADS,
                               help="threads across ops (parallel execution mode only)"),
    "execution_mode": Option("str", "sequential", ("sequential", "parallel")),
    "warmup": Option("int", 2, min=0, max=10_000, help="untimed runs before measuring"),
    "batching": Option("str", "none", ("none", "bucketed"),
                       "none: one sample at a time (padded to static shapes); bucketed: sort by length and batch "
                       "(needs dynamic batch and time axes)"),
    "batch_size": Option("int", 8, min=1, max=65_536, help="samples per batch when batching is bucketed"),
    "max_batch_frames": Option("int", 0, min=0, max=10**12, help="bucketed batching: cap on samples x padded length, the length being "
                                              "a sample's extent along its inputs' dynamic non-batch axes (frames "
                                              "of a spectrogram), so batches of long samples hold fewer of them; "
                                              "0: no cap"),
}
# how the run stage runs, not what the compiled model is: changing them reuses the compile
RUN_FLAGS = frozenset({"intra_op_threads", "inter_op_threads", "execution_mode", "warmup", "batching",
                       "batch_size", "max_batch_frames"})


QUANTIZED_OPS = {"int8_dynamic": ["MatMul", "Gemm", "LSTM", "GRU", "Attention"],
                 "int8_dynamic_conv": ["MatMul", "Gemm", "LSTM", "GRU", "Attention", "Conv"]}


def _kept_nodes(path: Path, keep_dtype) -> list[str]:
    """The names of the nodes a keep-list keeps (by name or op type) in the model at ``path``."""
    if not keep_dtype:
        return []
    from porter.precision.keeplist import read_keep_dtype

    keep = read_keep_dtype(keep_dtype)
    graph = onnx.load(str(path), load_external_data=False).graph
    return [n.name for n in graph.node if n.name and keep.keeps(n.name, n.op_type)]


@hookimpl
def porter_register_targets():
    return [TargetSpec(TARGET, "ONNX Runtime, CPU execution provider", FLAGS, version="1", run_flags=RUN_FLAGS)]


@hookimpl
def porter_stage_resources(stage, target):
    if target is not None and target.name == TARGET:
        return {}
    return None


@hookimpl
def porter_tool_versions():
    import onnxruntime

    return {"onnxruntime": onnxruntime.__version__}


@hookimpl
def porter_compile(target, model, workdir: Path):
    if target.name != TARGET:
        return None
    flags = target.flags
    t0 = time.perf_counter()
    src = workdir / "model.onnx"
    if flags["quantize"] in QUANTIZED_OPS:
        import logging

        from onnxruntime.quantization import QuantType, quantize_dynamic

        op_types = QUANTIZED_OPS[flags["quantize"]]
        # the quantiser logs a generic pre-processing hint on the root logger at every call
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(str(model.path), str(src), weight_type=QuantType.QInt8, op_types_to_quantize=op_types,
                             nodes_to_exclude=_kept_nodes(model.path, flags.get("keep_dtype")))
        finally:
            logging.disable(logging.NOTSET)
    else:
        shutil.copyfile(model.path, src)
    final = src
    if flags["save_optimized"] and flags["graph_optimization_level"] != "disable":
        final = workdir / "model.optimized.onnx"
        session(src, opt_level=flags["graph_optimization_level"], optimized_path=final)
    else:
        session(src, opt_level=flags["graph_optimization_level"])
    seconds = time.perf_counter() - t0
    ins, outs = model_io(onnx.load(str(final), load_external_data=False))
    return CompiledModel(
        target=TARGET, path=final, source=model.path, inputs=ins, outputs=outs, compile_seconds=seconds,
        size_bytes=final.stat().st_size,
        details={"graph_optimization_level": flags["graph_optimization_level"], "quantize": flags["quantize"]},
    )


def _session_for(compiled, flags):
    # the saved optimised graph is already optimised for this machine: do not optimise twice
    level = "disable" if compiled.path.name.endswith(".optimized.onnx") else flags.get("graph_optimization_level",
                                                                                        "all")
    return session(compiled.path, threads=flags["intra_op_threads"] or None, opt_level=level,
                   sequential=flags["execution_mode"] == "sequential",
                   inter_threads=flags["inter_op_threads"] or None)


@hookimpl
def porter_run(target, compiled, inputs, workdir: Path):
    if target.name != TARGET:
        return None
    flags = target.flags
    sess = _session_for(compiled, flags)
    names = [o.name for o in sess.get_outputs()]
    details = {"batching": flags["batching"]}
    if flags["batching"] == "bucketed":
        latencies, wall, batches = _run_bucketed(sess, compiled, inputs, names, workdir, flags)
        batch = flags["batch_size"]
        details.update(batch_size=batch, max_batch_frames=flags["max_batch_frames"], batches=len(batches),
                       largest_batch=max(map(len, batches), default=0))
    else:
        latencies, wall = _run_one_at_a_time(sess, compiled, inputs, names, workdir, flags["warmup"])
        batch = 1
        details.update(batch_size=batch, batches=len(inputs))
    return OutputSet(path=workdir, sample_ids=inputs.sample_ids, output_names=tuple(names),
                     timing=Timing(tuple(latencies), wall, warmup=flags["warmup"], batch_size=batch),
                     details=details)


def _progress(total: int, what: str):
    """A per-sample bar on a terminal; nothing when output is piped, so logs stay clean."""
    from tqdm import tqdm

    return tqdm(total=total, desc=what, unit="utt", leave=False, disable=not sys.stderr.isatty())


def _run_one_at_a_time(sess, compiled, inputs, names, workdir, warmup):
    if len(inputs):
        first = feeds_for(inputs.load(0), compiled.inputs)
        for _ in range(warmup):
            sess.run(None, first)
    latencies = []
    wall = 0.0
    with _progress(len(inputs), "onnxruntime") as bar:
        for i in range(len(inputs)):
            feeds = feeds_for(inputs.load(i), compiled.inputs)
            t0 = time.perf_counter()
            outs = sess.run(None, feeds)
            dt = time.perf_counter() - t0
            wall += dt
            latencies.append(dt * 1000)
            write_sample(workdir, i, dict(zip(names, outs)))
            bar.update(1)
    return latencies, wall


def _padded_length(sample: dict, specs) -> int:
    """What padding a sample to a batch's longest stretches: the product of its extents along the dynamic
    non-batch axes, the largest over its inputs (a spectrogram's frames; 1 for a per-sample scalar)."""
    length = 1
    for spec in specs:
        shape = np.shape(sample[spec.name])
        dims = [shape[d] for d, size in enumerate(spec.shape)
                if 0 < d < len(shape) and not isinstance(size, int)]
        length = max(length, int(np.prod(dims)) if dims else 1)
    return length


def bucket_batches(lengths: list[int], batch_size: int, max_batch_frames: int = 0) -> list[list[int]]:
    """Sample indices in batches, longest first (like the reference's SortaGrad order) so neighbours have
    similar lengths and little padding is computed. A batch holds at most ``batch_size`` samples and, when
    ``max_batch_frames`` is set, at most that many padded frames (samples x its longest length); a sample
    longer than the cap still runs, alone."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        batch = batches[-1] if batches else None
        # sorted longest first, so a batch's padded length is its first sample's
        if batch is None or len(batch) >= batch_size or (
                max_batch_frames and (len(batch) + 1) * lengths[batch[0]] > max_batch_frames):
            batches.append([i])
        else:
            batch.append(i)
    return batches


def _run_bucketed(sess, compiled, inputs, names, workdir, flags):
    for spec in compiled.inputs:
        if isinstance(spec.shape[0], int):
            raise InputError(
                f"bucketed batching needs a model with a dynamic batch axis, but input {spec.name!r} has static "
                f"shape {spec.shape}; export with dynamic axes (model.export.dynamic: true)",
                field="target.flags.batching")
    # lengths first, then one batch in memory at a time: a large test set never sits in memory whole
    lengths = [_padded_length(inputs.load(i), compiled.inputs) for i in range(len(inputs))]
    batches = bucket_batches(lengths, max(1, flags["batch_size"]), flags["max_batch_frames"])
    in_names = [s.name for s in compiled.inputs]
    if batches:
        warm = stack_batch([inputs.load(i) for i in batches[0]], in_names)
        for _ in range(flags["warmup"]):
            sess.run(None, warm)
    latencies = [0.0] * len(lengths)
    wall = 0.0
    with _progress(len(lengths), "onnxruntime, bucketed") as bar:
        for batch in batches:
            feeds = stack_batch([inputs.load(i) for i in batch], in_names)
            feeds = {s.name: feeds[s.name].astype(s.dtype, copy=False) for s in compiled.inputs}
            t0 = time.perf_counter()
            outs = sess.run(None, feeds)
            dt = time.perf_counter() - t0
            wall += dt
            for j, i in enumerate(batch):
                # a sample's latency is the time until its result exists: its whole batch's time
                latencies[i] = dt * 1000
                write_sample(workdir, i, {n: o[j:j + 1] for n, o in zip(names, outs)})
            bar.update(len(batch))
    return latencies, wall, batches
