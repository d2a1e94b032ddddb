"""The built-in target: ONNX Runtime on the CPU, so every recipe runs end to end on any machine."""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import onnx

from porter.api import (
    BATCHING_FLAGS,
    BaseRunner,
    CompiledModel,
    Option,
    OutputSet,
    TargetSpec,
    Timing,
    __version__,
    hookimpl,
    model_io,
    run_details,
    run_samples,
    session,
)

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
    **BATCHING_FLAGS,
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
    from porter.api import read_keep_dtype

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
        size_bytes=final.stat().st_size, estimate=flags["quantize"] != "none",
        details={"graph_optimization_level": flags["graph_optimization_level"], "quantize": flags["quantize"]},
    )


class OnnxRuntimeRunner(BaseRunner):
    """One InferenceSession over the compiled ONNX file."""

    def __init__(self, compiled: CompiledModel, flags):
        super().__init__(TARGET, compiled.inputs)
        self.compiled = compiled
        self.flags = flags
        self.sess: Any = None
        self.output_names: list[str] = []

    def _activate_impl(self) -> None:
        flags = self.flags
        # the saved optimised graph is already optimised for this machine: do not optimise twice
        level = ("disable" if self.compiled.path.name.endswith(".optimized.onnx")
                 else flags.get("graph_optimization_level", "all"))
        self.sess = session(self.compiled.path, threads=flags.get("intra_op_threads") or None, opt_level=level,
                            sequential=flags.get("execution_mode", "sequential") == "sequential",
                            inter_threads=flags.get("inter_op_threads") or None)
        self.output_names = [o.name for o in self.sess.get_outputs()]

    def _infer_impl(self, feeds):
        return dict(zip(self.output_names, self.sess.run(None, feeds)))

    def _deactivate_impl(self) -> None:
        self.sess = None


@hookimpl
def porter_runner(target, compiled):
    if target.name != TARGET:
        return None
    return OnnxRuntimeRunner(compiled, target.flags)


@hookimpl
def porter_run(target, compiled, inputs, workdir: Path):
    if target.name != TARGET:
        return None
    flags = target.flags
    with OnnxRuntimeRunner(compiled, flags) as runner:
        run = run_samples(runner, inputs, workdir, batching=flags["batching"], batch_size=flags["batch_size"],
                          max_batch_frames=flags["max_batch_frames"], warmup=flags["warmup"], label=TARGET)
        names = runner.output_names
    batch = flags["batch_size"] if flags["batching"] == "bucketed" else 1
    return OutputSet(path=workdir, sample_ids=inputs.sample_ids, output_names=tuple(names),
                     timing=Timing(run.latencies_ms, run.wall_seconds, warmup=flags["warmup"], batch_size=batch),
                     details=run_details(run, batching=flags["batching"], batch_size=flags["batch_size"],
                                         max_batch_frames=flags["max_batch_frames"]))
