"""The compile stage: ONNX → (int8) → OpenVINO IR + the property set, compiled once here to time it, to read back
what will run, and to leave the compiled blob in the artifact's cache for the run stage."""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from porter.api import CompiledModel, Evaluator, InputSet, OnnxModel
from porter_openvino.capabilities import DEVICE, Capabilities
from porter_openvino.flags import compile_properties

IR_FILE = "model.xml"
BLOB_CACHE = "blob_cache"  # inside the compile artifact unless the cache_dir flag names another
# read back from the compiled model, whether or not a flag set them: what actually runs
READ_BACK = ("INFERENCE_PRECISION_HINT", "EXECUTION_MODE_HINT", "PERFORMANCE_HINT", "NUM_STREAMS",
             "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING", "ENABLE_HYPER_THREADING")
_OV_PRECISION = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "f32": "f32", "bf16": "bf16", "f16": "f16"}
# runtime-graph layers that only hold or move data: left out of the precision summary
_BOOKKEEPING = {"Const", "Input", "Output", "Parameter", "Result", "Reorder", "Reshape", "ShapeOf", "Broadcast",
                "Concatenation", "Gather", "Split", "Transpose", "Range", "Squeeze", "Unsqueeze"}
_INT8 = {"i8", "u8"}
# the layers whose precision decides speed: an int8 mask compare does not make a model int8
_MATRIX = {"Convolution", "Deconvolution", "FullyConnected", "MatMul", "RNNSeq", "RNNCell", "GroupConvolution"}


def cache_dir_for(compiled_dir: Path, flags: Mapping[str, Any]) -> Path:
    return Path(flags["cache_dir"]) if flags.get("cache_dir") else Path(compiled_dir) / BLOB_CACHE


def precision_of(value) -> str:
    """porter's spelling (f32, bf16, f16) of an OpenVINO element type read back from a compiled model."""
    text = str(getattr(value, "type_name", None) or value)
    text = text.replace("<Type: '", "").replace("'>", "")
    return _OV_PRECISION.get(text, text)


def runtime_precisions(compiled) -> dict[str, dict[str, int]]:
    """Compute layers of the runtime graph by the precision they ran in: {"bf16": {"RNNSeq": 4, ...}}."""
    by: dict[str, Counter] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        kind = info["layerType"].astype(str)
        if kind in _BOOKKEEPING:
            continue
        by.setdefault(info["runtimePrecision"].astype(str), Counter())[kind] += 1
    return {p: dict(sorted(c.items())) for p, c in sorted(by.items())}


def summary_line(by_precision: Mapping[str, Mapping[str, int]]) -> str:
    return "; ".join(f"{p}: " + ", ".join(f"{k} {n}" for k, n in kinds.items())
                     for p, kinds in by_precision.items())


def read_back(compiled) -> dict[str, str]:
    out = {}
    for name in READ_BACK:
        try:
            value = compiled.get_property(name)
        except RuntimeError:
            continue
        out[name] = precision_of(value) if name == "INFERENCE_PRECISION_HINT" else str(value).split(".")[-1]
    return out


def compile_model(model: OnnxModel, flags: Mapping[str, Any], workdir: Path, *, caps: Capabilities,
                  inputs: InputSet, evaluate: Evaluator | None = None) -> CompiledModel:
    import openvino as ov

    t0 = time.perf_counter()
    core = ov.Core()
    graph = core.read_model(str(model.path))
    details: dict[str, Any] = {"device": caps.describe(), "quantize": flags["quantize"]}
    quantized = flags["quantize"] != "none"
    if quantized:
        from porter_openvino.quantize import quantize

        result = quantize(graph, flags, inputs, model.inputs, evaluate)
        graph = result.model
        details.update(quantize_seconds=round(result.seconds, 3), calibration_samples=result.calibration_samples)
        if result.metric:
            details["accuracy_control"] = {"metric": result.metric, "max_drop": flags["max_drop"],
                                           "float": result.float_metric, "int8": result.int8_metric}
    ir = Path(workdir) / IR_FILE
    # compress_to_fp16 would store f32 weights as f16: the IR must hold what was compiled
    ov.save_model(graph, str(ir), compress_to_fp16=False)
    plan = compile_properties(flags, caps)
    cache = cache_dir_for(workdir, flags)
    t1 = time.perf_counter()
    compiled = core.compile_model(core.read_model(str(ir)), DEVICE, {**plan.properties, "CACHE_DIR": str(cache)})
    ov_seconds = time.perf_counter() - t1
    ran = read_back(compiled)
    by_precision = runtime_precisions(compiled)
    int8_layers = sum(n for p, kinds in by_precision.items() if p in _INT8
                      for kind, n in kinds.items() if kind in _MATRIX)
    precision = ran.get("INFERENCE_PRECISION_HINT", plan.precision)
    details.update(
        properties=dict(plan.properties), read_back=ran, requested_precision=plan.requested_precision,
        precision=f"int8+{precision}" if int8_layers else precision, ov_compile_seconds=round(ov_seconds, 3),
        runtime_precisions=by_precision, runtime_summary=summary_line(by_precision),
        cache_dir=str(flags["cache_dir"]) if flags.get("cache_dir") else None)
    if plan.fallback:
        details["precision_fallback"] = plan.fallback
    seconds = time.perf_counter() - t0
    size = ir.stat().st_size + ir.with_suffix(".bin").stat().st_size
    return CompiledModel(target="openvino", path=ir, source=model.path, inputs=model.inputs,
                         outputs=model.outputs, compile_seconds=seconds, size_bytes=size, details=details,
                         estimate=quantized or precision != "f32", notes=(plan.fallback,) if plan.fallback else ())
