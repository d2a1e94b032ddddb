"""A variant's graph against the reference ONNX graph, tensor by tensor, on a few real inputs.

The reference is the variant's own export (the graph before any pass), so every difference is what the passes,
the precision emulation or the compiler's rewrites did. Both graphs run with every tensor exposed
(:mod:`porter.precision.probe`); tensors are matched by name or recorded provenance
(:mod:`porter.precision.matching`) and compared with porter's one comparison (:mod:`porter.agreement`), the
worst over all feeds per tensor.
"""
from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from porter.agreement import TensorAgreement, combine, compare_tensors
from porter.artifacts import InputSet
from porter.fsutil import atomic_write_bytes, atomic_write_text
from porter.precision.matching import (
    TensorMatch,
    aligned,
    match_tensors,
    producers,
    take,
)
from porter.precision.probe import Feed, TensorProbe, choose_feeds, feed_arrays

# ops that move or reshape values without computing new ones: their rows repeat the layer before them
DATA_MOVEMENT = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Identity", "Concat",
                           "Split", "Slice", "Gather", "Expand", "Cast", "Pad", "ReverseSequence", "Shape",
                           "ConstantOfShape", "Constant", "input"})


@dataclass(frozen=True)
class LayerDivergence:
    depth: int  # 1 + the position of the reference tensor's producer in the reference graph (0: a graph input)
    tensor: str  # the reference graph's tensor
    variant_tensor: str
    op_type: str  # of the reference's producer
    node: str  # the variant's node that computed it (float Casts looked through): what a keep-list names
    matched_by: str
    agreement: TensorAgreement
    beyond: bool  # max_rel above the tolerance, or values the reference has finite and the variant not

    @property
    def computes(self) -> bool:
        return self.op_type not in DATA_MOVEMENT


@dataclass(frozen=True)
class DivergenceReport:
    variant: str
    reference_graph: str
    variant_graph: str
    tolerance: float  # on max_rel
    feeds: tuple[str, ...]
    layers: tuple[LayerDivergence, ...]
    unmatched: int  # reference tensors with no counterpart in the variant (fused or removed by a pass)

    @property
    def first_beyond(self) -> LayerDivergence | None:
        return next((layer for layer in self.layers if layer.beyond), None)

    def to_json(self) -> dict:
        first = self.first_beyond
        return {
            "variant": self.variant, "reference_graph": self.reference_graph, "variant_graph": self.variant_graph,
            "tolerance_max_rel": self.tolerance, "feeds": list(self.feeds), "unmatched": self.unmatched,
            "first_beyond": first.tensor if first else None,
            "layers": [{"depth": x.depth, "tensor": x.tensor, "variant_tensor": x.variant_tensor, "op": x.op_type,
                        "node": x.node, "matched_by": x.matched_by, "max_abs": _num(x.agreement.max_abs),
                        "max_rel": _num(x.agreement.max_rel), "cosine": _num(x.agreement.cosine),
                        "problem": x.agreement.problem, "beyond": x.beyond} for x in self.layers],
        }


def _num(value: float):
    return value if math.isfinite(value) else str(value)


def _is_beyond(agreement: TensorAgreement, tolerance: float) -> bool:
    if agreement.problem:
        # a shape or dtype change is a pass's rewrite, not a precision loss; non-finite values are the loss
        return "NaN" in agreement.problem or "Inf" in agreement.problem
    return agreement.max_rel > tolerance


def _compare(match: TensorMatch, ref: dict, new: dict) -> TensorAgreement | None:
    if match.reference not in ref or match.variant not in new:
        return None  # not a float tensor on one side
    a = take(ref[match.reference], match.source_slices)
    b = take(new[match.variant], match.slices)
    return compare_tensors(match.reference, a, aligned(a, b))


def diverge(reference_path: Path, variant_path: Path, inputs: InputSet, *, variant: str, workdir: Path,
            samples: int = 3, tolerance: float = 1e-2, names_from: Path | None = None) -> DivergenceReport:
    """Compare every matched tensor of ``variant_path`` with ``reference_path`` on real inputs. ``names_from``:
    the graph whose node names the table gives (the one a compiler was given, whose names a keep-list holds,
    rather than the names the compiler's own rewrites invent), where it has the tensor."""
    ref_probe = TensorProbe(reference_path, workdir)
    var_probe = TensorProbe(variant_path, workdir)
    matches = match_tensors(ref_probe.model, var_probe.model)
    feeds: Sequence[Feed] = choose_feeds(inputs, ref_probe.inputs, samples)
    worst: dict[int, TensorAgreement] = {}
    float_refs: set[str] = set()
    for feed in feeds:
        ref = ref_probe.run(feed_arrays(feed, inputs, ref_probe.inputs))
        float_refs.update(ref)
        new = var_probe.run(feed_arrays(feed, inputs, var_probe.inputs))
        for index, match in enumerate(matches):
            agreement = _compare(match, ref, new)
            if agreement is not None:
                worst[index] = agreement if index not in worst else combine(worst[index], agreement)
        del ref, new
    ref_prod = producers(ref_probe.model)
    var_prod = producers(var_probe.model)
    if names_from is not None and Path(names_from) != Path(variant_path):
        var_prod.update(producers(onnx.load(str(names_from), load_external_data=False)))
    layers = []
    for index, match in enumerate(matches):
        if index not in worst:
            continue
        rp = ref_prod.get(match.reference)
        vp = var_prod.get(match.variant)
        agreement = worst[index]
        if match.variant != match.reference:
            agreement = replace(agreement, name=match.variant)
        layers.append(LayerDivergence(rp.depth if rp else 0, match.reference, match.variant,
                                      rp.op_type if rp else "?", vp.node if vp else "", match.matched_by,
                                      agreement, _is_beyond(agreement, tolerance)))
    layers.sort(key=lambda x: x.depth)
    matched = {m.reference for m in matches}
    return DivergenceReport(variant, str(reference_path), str(variant_path), tolerance,
                            tuple(f.label for f in feeds), tuple(layers), len(float_refs - matched))


# ------------------------------------------------------------------------------------------------- rendering

def _fmt(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else str(value)


def render_table(report: DivergenceReport, *, all_rows: bool = False) -> str:
    """A Markdown table (readable on a terminal): one row per computing layer, or per tensor with all_rows."""
    rows = [x for x in report.layers if all_rows or x.computes or x.beyond]
    first = report.first_beyond
    lines = [(f"{report.variant}: {len(report.layers)} tensors matched against the reference graph "
              f"({report.unmatched} reference tensors have no counterpart), on {len(report.feeds)} feeds: "
              f"{'; '.join(report.feeds)}"),
             (f"first tensor beyond max_rel {_fmt(report.tolerance)}: {first.tensor} ({first.op_type}, "
              f"depth {first.depth})"
              if first else f"no tensor beyond max_rel {_fmt(report.tolerance)}"),
             "",
             "| depth | tensor | op | variant node | max abs | max rel | cosine | |",
             "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        a = x.agreement
        mark = "FIRST" if x is first else ("beyond" if x.beyond else "")
        if a.problem:
            numbers = f"{a.problem} | | "
            mark = mark or "not comparable"
        else:
            numbers = f"{_fmt(a.max_abs)} | {_fmt(a.max_rel)} | {a.cosine:.6f}"
        lines.append(f"| {x.depth} | {x.tensor} | {x.op_type} | {x.node or '-'} | {numbers} | {mark} |")
    return "\n".join(lines)


def plot(report: DivergenceReport, path) -> None:
    """Error against depth: max_rel (log scale) of every comparable tensor, the tolerance, the first beyond."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [x for x in report.layers if not x.agreement.problem]
    fig = Figure(figsize=(9, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    floor = 1e-12  # an exact match would vanish from a log axis
    for group, color, size, label in ((True, "tab:blue", 18, "computing layer"),
                                      (False, "tab:gray", 8, "data movement")):
        chosen = [x for x in points if x.computes == group]
        ax.scatter([x.depth for x in chosen], [max(x.agreement.max_rel, floor) for x in chosen], s=size,
                   color=color, label=label)
    ax.axhline(report.tolerance, color="tab:red", linestyle="--", linewidth=1, label="tolerance")
    first = report.first_beyond
    if first is not None:
        ax.axvline(first.depth, color="tab:orange", linewidth=1, label=f"first beyond: {first.tensor}")
    ax.set_yscale("log")
    ax.set_xlabel("depth (position of the tensor's producer in the reference graph)")
    ax.set_ylabel("max relative error")
    ax.set_title(f"{report.variant} against the reference graph")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)


def write(report: DivergenceReport, folder: Path) -> dict[str, Path]:
    """divergence.json, divergence.md and divergence.png in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "divergence.json", "table": folder / "divergence.md", "plot": folder / "divergence.png"}
    atomic_write_text(paths["json"], json.dumps(report.to_json(), indent=1) + "\n")
    atomic_write_text(paths["table"], render_table(report, all_rows=True) + "\n")
    png = io.BytesIO()
    plot(report, png)
    atomic_write_bytes(paths["plot"], png.getvalue())
    return paths


__all__ = ["DivergenceReport", "LayerDivergence", "diverge", "plot", "render_table", "write"]
