"""A chosen keep-list in each target's own language, and a recipe fragment that applies it.

- ``keep_dtype.cfg``: atc ``--keep_dtype`` (CANN ATC parameter reference): one operator name a line. For an
  ONNX model atc's operator names are the ONNX node names; atc's own fusions may rename an operator, in which case
  its log says the entry did not take effect. Used with ``--precision_mode`` force_fp16 / allow_fp32_to_fp16 /
  allow_mix_precision (atc ignores it under must_keep_origin_dtype).
- ``modify_mixlist.json``: atc ``--modify_mixlist``: ``{"black-list": {"to-add": [OpType, ...]}}`` moves the
  kept nodes' *Ascend IR op types* (Conv → Conv2D, MatMul → MatMulV2, LSTM → DynamicRNN, ...) to the black list,
  so every operator of those types stays fp32. Coarser than keep_dtype (types, not nodes), and atc reads it only
  with ``--precision_mode=allow_mix_precision``.
- ``nncf_ignored_scope.json``: ``nncf.IgnoredScope(names=[...])`` for ``nncf.quantize`` — the names are the ONNX
  node names, which are also the friendly names OpenVINO's ONNX frontend gives the operations.
- ``openvino_rt_info.json``: the per-node runtime-info marker ``disable_fp16_compression_0``. Measured with
  OpenVINO 2026.4.1 on the CPU plugin: it is NOT honoured at inference (INFERENCE_PRECISION_HINT f16 or bf16
  still runs the marked node in f16/bf16, same error), nor by ``save_model(compress_to_fp16=True)`` when set from
  Python; tests/precision/test_emit.py checks this so a release that starts honouring it is noticed.
- ``recipe_fragment.yaml``: the variant with the keep-list applied: the precision pass or target option that the
  search proved, the ascend310 flags, and (where the openvino target is installed) NNCF int8 with the same
  nodes in its ``ignored_scope`` flag.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import yaml

from porter.fsutil import atomic_write_text
from porter.precision.keeplist import KeepList, ascend_ir_type

OPENVINO_MARKER = "disable_fp16_compression_0"


@dataclass(frozen=True)
class Emitted:
    keep_dtype: Path
    modify_mixlist: Path
    nncf_ignored_scope: Path
    openvino_rt_info: Path
    recipe_fragment: Path


def modify_mixlist(op_types) -> dict:
    return {"black-list": {"to-add": sorted({ascend_ir_type(t) for t in op_types})}}


def nncf_ignored_scope(names) -> dict:
    return {"names": list(names)}


def openvino_rt_info(names) -> dict:
    return {"marker": OPENVINO_MARKER, "nodes": {name: {OPENVINO_MARKER: ""} for name in names},
            "honoured_at_inference": False,
            "note": "OpenVINO 2026.4.1 CPU plugin: not honoured at inference (f16/bf16 hints) nor by "
                    "compress_to_fp16 when set from Python; use the int8 ignored scope or an f32 hint"}


def recipe_fragment(variant, knob_pass: str | None, keep_file: Path, base_passes,
                    openvino_names: list | None = None) -> dict:
    """The variant with the keep-list applied through the knob the search used, and an ascend310 variant whose
    atc command line takes the same file."""
    name = f"{variant}_kept"
    applied: dict[str, Any]
    if knob_pass is None:
        applied = {"target": {"flags": {"keep_dtype": str(keep_file)}}}
    else:
        passes = []
        for p in base_passes:
            entry: dict[str, Any] = {"name": p.name, "options": {k: (str(v) if isinstance(v, Path) else v)
                                                 for k, v in p.options.items() if v is not None},
                     "tolerance": p.tolerance}
            if p.name == knob_pass:
                entry["options"]["keep_dtype"] = str(keep_file)
            passes.append(entry)
        applied = {"graph_fix": passes}
    kept_passes = [p["name"] for p in applied.get("graph_fix", []) if p["name"] != knob_pass]
    ascend: dict[str, Any] = {"graph_fix": kept_passes or None,
                              "target": {"name": "ascend310", "flags": {"precision_mode": "force_fp16",
                                                                        "keep_dtype": str(keep_file)}}}
    if ascend["graph_fix"] is None:
        del ascend["graph_fix"]
    variants: dict[str, Any] = {name: applied, f"{variant}_ascend310_kept": ascend}
    if openvino_names is not None:  # NNCF int8 on OpenVINO, the same nodes left in floating point
        variants[f"{variant}_openvino_int8_kept"] = {
            **({"graph_fix": ascend["graph_fix"]} if "graph_fix" in ascend else {}),
            "target": {"name": "openvino", "flags": {"quantize": "int8", "ignored_scope": {"names": openvino_names}}}}
    return {"variants": variants}


def emit(kept_names, graph_path: Path, folder: Path, *, variant, knob_pass: str | None, base_passes,
         openvino: bool = False) -> Emitted:
    graph = onnx.load(str(graph_path), load_external_data=False).graph
    types = {n.name: n.op_type for n in graph.node}
    names = list(kept_names)
    keep = KeepList(tuple(names))
    paths = Emitted(folder / "keep_dtype.cfg", folder / "modify_mixlist.json", folder / "nncf_ignored_scope.json",
                    folder / "openvino_rt_info.json", folder / "recipe_fragment.yaml")
    atomic_write_text(paths.keep_dtype, keep.text())
    atomic_write_text(paths.modify_mixlist,
                      json.dumps(modify_mixlist(types[n] for n in names if n in types), indent=2) + "\n")
    atomic_write_text(paths.nncf_ignored_scope, json.dumps(nncf_ignored_scope(names), indent=2) + "\n")
    atomic_write_text(paths.openvino_rt_info, json.dumps(openvino_rt_info(names), indent=2) + "\n")
    fragment = recipe_fragment(variant, knob_pass, paths.keep_dtype, base_passes, names if openvino else None)
    atomic_write_text(paths.recipe_fragment, "# porter precision-search: the chosen keep-list applied\n"
                      + yaml.safe_dump(fragment, sort_keys=False))
    return paths
