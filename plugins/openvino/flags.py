"""The openvino target's flags, and how they become OpenVINO CPU properties.

Each property flag maps to one OpenVINO property (PROPERTY_NAMES); None / 0 leave OpenVINO's own choice.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from porter.api import BATCHING_FLAGS, InputError, Option
from porter_openvino.capabilities import Capabilities

PRECISIONS = ("f32", "bf16", "f16")
QUANTIZE = ("none", "int8", "int8_accuracy_control")

FLAGS: dict[str, Option] = {
    "inference_precision": Option("str", "f32", PRECISIONS,
                                  "INFERENCE_PRECISION_HINT: the precision matrix work runs in; bf16 and f16 fall "
                                  "back to f32 on a CPU whose OPTIMIZATION_CAPABILITIES lack them (reported). "
                                  "f32 is explicit because OpenVINO's own default on AMX CPUs is bf16"),
    "execution_mode": Option("str", "performance", ("performance", "accuracy"), "EXECUTION_MODE_HINT"),
    "performance_hint": Option("str", "latency", ("latency", "throughput"),
                               "PERFORMANCE_HINT (on 2 cores throughput measured slower than latency)"),
    "num_streams": Option("int", 0, help="NUM_STREAMS; 0: what performance_hint chooses", min=0, max=256),
    "inference_num_threads": Option("int", 0, help="INFERENCE_NUM_THREADS; 0: OpenVINO chooses", min=0,
                                    max=1024),
    "enable_cpu_pinning": Option("bool", None, help="ENABLE_CPU_PINNING; unset: OpenVINO chooses"),
    "enable_hyper_threading": Option("bool", None, help="ENABLE_HYPER_THREADING; unset: OpenVINO chooses"),
    "static_shapes": Option("bool", False, help="reshape a dynamic export to each batch's exact shape and compile "
                                                "it (one compile per distinct shape, paid in the run) instead of "
                                                "running the dynamic model"),
    "cache_dir": Option("path", None, must_exist=False,
                        help="CACHE_DIR for compiled blobs; unset: a folder inside the compile artifact"),
    "quantize": Option("str", "none", QUANTIZE,
                       "int8: nncf.quantize with a calibration subset of the variant's inputs; "
                       "int8_accuracy_control: nncf.quantize_with_accuracy_control, keeping layers in floating "
                       "point until the recipe's first metric is within max_drop"),
    "subset_size": Option("int", 32, help="samples (of the variant's inputs, spread over the set) to calibrate on; "
                                          "accuracy control also validates on them", min=1, max=100000),
    "preset": Option("str", None, ("performance", "mixed"),
                     "NNCF preset: performance (symmetric) or mixed (asymmetric activations); unset: NNCF's"),
    "fast_bias_correction": Option("bool", True, help="NNCF's fast bias correction (false: the slower full one)"),
    "ignored_scope": Option("dict", None, help="NNCF ignored scope, kept in floating point: {names: [...], "
                                               "patterns: [...], types: [...]} (types are OpenVINO op types, e.g. "
                                               "LSTMSequence, MatMul)"),
    "max_drop": Option("float", 0.5, help="int8_accuracy_control: the largest worsening of the recipe's first "
                                          "metric accepted, in its units (WER points)", min=0.0),
    **BATCHING_FLAGS,
}
# how the run stage runs, not what is compiled: changing them reuses the compile (and its blob)
RUN_FLAGS = frozenset(BATCHING_FLAGS)
IGNORED_SCOPE_KEYS = ("names", "patterns", "types")


@dataclass(frozen=True)
class PropertyPlan:
    """The OpenVINO properties a variant's flags ask for, after checking them against the CPU."""

    properties: Mapping[str, Any]
    requested_precision: str
    precision: str  # what is asked of OpenVINO after the fallback
    fallback: str = ""  # why precision differs from requested_precision, or ""


def compile_properties(flags: Mapping[str, Any], caps: Capabilities) -> PropertyPlan:
    """The property set for ``flags`` on a device with ``caps``; bf16/f16 fall back to f32 where missing."""
    requested = flags.get("inference_precision") or "f32"
    precision, fallback = requested, ""
    if not caps.supports(requested):
        precision = "f32"
        fallback = (f"inference_precision {requested} was asked, but this CPU's OPTIMIZATION_CAPABILITIES "
                    f"({', '.join(sorted(caps.optimization)) or 'none'}) lack {requested.upper()}: ran f32")
    props: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": precision,
        "EXECUTION_MODE_HINT": flags.get("execution_mode", "performance").upper(),
        "PERFORMANCE_HINT": flags.get("performance_hint", "latency").upper(),
    }
    if flags.get("num_streams"):
        props["NUM_STREAMS"] = int(flags["num_streams"])
    if flags.get("inference_num_threads"):
        props["INFERENCE_NUM_THREADS"] = int(flags["inference_num_threads"])
    for flag, name in (("enable_cpu_pinning", "ENABLE_CPU_PINNING"),
                       ("enable_hyper_threading", "ENABLE_HYPER_THREADING")):
        if flags.get(flag) is not None:
            props[name] = bool(flags[flag])
    return PropertyPlan(props, requested, precision, fallback)


def ignored_scope_lists(flags: Mapping[str, Any]) -> dict[str, list[str]]:
    """The ignored_scope flag checked: only names/patterns/types, each a list of strings."""
    scope = flags.get("ignored_scope") or {}
    unknown = sorted(set(scope) - set(IGNORED_SCOPE_KEYS))
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(IGNORED_SCOPE_KEYS)})",
                         field="target.flags.ignored_scope")
    out = {}
    for key, value in scope.items():
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{key} is {value!r}; expected a list of strings",
                             field=f"target.flags.ignored_scope.{key}")
        out[key] = list(value)
    return out
