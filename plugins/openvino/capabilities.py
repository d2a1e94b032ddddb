"""What this machine's OpenVINO CPU device offers, read from OpenVINO, never assumed.

``PORTER_OPENVINO_CAPABILITIES`` (comma-separated, e.g. ``FP32,INT8``) replaces the detected
OPTIMIZATION_CAPABILITIES: the seam that lets a test, or a user planning for another machine, see what porter
does on a CPU without BF16 without owning one.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

DEVICE = "CPU"
OVERRIDE_ENV = "PORTER_OPENVINO_CAPABILITIES"


@dataclass(frozen=True)
class Capabilities:
    device_name: str
    optimization: frozenset[str]  # OPTIMIZATION_CAPABILITIES, e.g. BF16, FP16, INT8
    overridden: bool = False  # True when OVERRIDE_ENV gave them

    def supports(self, precision: str) -> bool:
        """Whether the device computes ``precision`` (porter's spelling: f32, bf16, f16) natively."""
        return {"f32": "FP32", "bf16": "BF16", "f16": "FP16"}[precision] in self.optimization

    def describe(self) -> str:
        caps = ", ".join(sorted(self.optimization))
        return f"{self.device_name}: {caps}" + (f" (from {OVERRIDE_ENV})" if self.overridden else "")


def detect(core=None) -> Capabilities:
    import openvino as ov

    core = core or ov.Core()
    name = str(core.get_property(DEVICE, "FULL_DEVICE_NAME"))
    override = os.environ.get(OVERRIDE_ENV)
    if override is not None:
        caps = frozenset(c.strip().upper() for c in override.split(",") if c.strip())
        return Capabilities(name, caps, overridden=True)
    return Capabilities(name, frozenset(map(str, core.get_property(DEVICE, "OPTIMIZATION_CAPABILITIES"))))


def tool_versions() -> dict[str, str]:
    """OpenVINO's and NNCF's versions, the device and its capabilities, for ``porter doctor``/``plugins``."""
    try:
        import openvino as ov
    except ImportError as exc:
        return {"openvino": f"not installed ({exc}); pip install -e '.[openvino]'"}
    out = {"openvino": ov.get_version()}
    try:
        caps = detect()
        out["openvino device"] = f"{DEVICE}: {caps.device_name}"
        out["openvino OPTIMIZATION_CAPABILITIES"] = ", ".join(sorted(caps.optimization)) + (
            f" (from {OVERRIDE_ENV})" if caps.overridden else "")
    except Exception as exc:  # noqa: BLE001 - a broken device must not break doctor
        out["openvino device"] = f"unavailable: {exc}"
    try:  # from its metadata: importing nncf imports torch, seconds on every report for a version string
        out["nncf"] = version("nncf")
    except PackageNotFoundError:
        out["nncf"] = "not installed (needed for quantize: int8); pip install -e '.[openvino]'"
    return out
