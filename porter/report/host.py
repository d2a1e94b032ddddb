"""Provenance of a run: library versions and the host CPU with the instruction-set features that decide speed."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# The core's own libraries; a plugin's libraries come through its porter_tool_versions answer.
LIBRARIES = ("torch", "onnx", "onnxruntime", "onnxoptimizer", "onnx-graphsurgeon", "numpy", "pluggy", "jinja2",
             "dask", "distributed", "openvino")

CPUINFO = Path("/proc/cpuinfo")


@dataclass(frozen=True)
class CpuFeature:
    name: str  # how porter names it
    flags: tuple[str, ...]  # /proc/cpuinfo flags, any of which means the feature is there
    why: str


# What ONNX Runtime's and OpenVINO's CPU kernels pick between: int8 dot products (VNNI), bf16 and AMX tiles.
CPU_FEATURES = (
    CpuFeature("AVX2", ("avx2",), "fp32 kernels of every CPU runtime"),
    CpuFeature("AVX-512", ("avx512f",), "wider fp32 kernels"),
    CpuFeature("VNNI", ("avx512_vnni", "avx_vnni"), "fast int8 dot products (int8 variants)"),
    CpuFeature("AVX512-BF16", ("avx512_bf16",), "bf16 arithmetic"),
    CpuFeature("AVX512-FP16", ("avx512_fp16",), "fp16 arithmetic"),
    CpuFeature("AMX", ("amx_tile",), "matrix tiles for int8 (AMX-INT8) and bf16 (AMX-BF16)"),
)


def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for lib in LIBRARIES:
        try:
            out[lib] = version(lib)
        except PackageNotFoundError:
            pass
    return out


def _cpuinfo(path: Path = CPUINFO) -> tuple[str | None, set[str]]:
    """The first processor's model name and flags; (None, empty) where /proc/cpuinfo cannot be read."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, set()
    model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:  # x86 says flags, Arm says Features
            flags = set(value.split())
        if model is not None and flags:
            break
    return model, flags


def cpu_features(flags: set[str]) -> dict[str, bool]:
    """Each feature of :data:`CPU_FEATURES`: True when the CPU reports one of its flags."""
    return {f.name: any(flag in flags for flag in f.flags) for f in CPU_FEATURES}


def host_info(cpuinfo: Path = CPUINFO) -> dict[str, Any]:
    model, flags = _cpuinfo(cpuinfo)
    features = cpu_features(flags)
    amx = sorted(flag for flag in flags if flag.startswith("amx_"))
    return {"cpu": model or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "cpu_features": (", ".join(name for name, present in features.items() if present) or "none of "
                             + ", ".join(features)) if flags else f"unknown ({cpuinfo} not readable)",
            **({"amx": ", ".join(amx)} if amx else {}),
            "platform": platform.platform(), "node": platform.node()}


__all__ = ["CPU_FEATURES", "LIBRARIES", "cpu_features", "host_info", "library_versions"]
