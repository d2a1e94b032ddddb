"""The ONNX graphs of one variant that ``porter debug`` compares, produced through the normal plan and cache."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from porter.artifacts import InputSet
from porter.errors import InputError
from porter.exec import get_executor
from porter.options import unknown_name_error
from porter.plan import Plan, build_plan
from porter.recipe import Recipe, Variant
from porter.workspace import Workspace

UP_TO_COMPILE = ("preprocess", "export", "graph_fix", "compile")


@dataclass(frozen=True)
class VariantGraphs:
    variant: Variant
    inputs: InputSet
    reference: Path  # the variant's export: the graph before any pass
    graph: Path  # the ONNX graph that stands for what the variant runs
    graph_from: str  # which stage's artifact ``graph`` is, said in the report
    compile_message: str = ""  # why the compiled artifact is not the graph (a missing vendor tool ...)
    stage_models: tuple[Path, ...] = ()  # the export, then the model after each graph pass, in order

    def model_before_pass(self, index: int) -> Path:
        """The graph pass number ``index`` (0-based) of the variant was given."""
        return self.stage_models[index]

    @property
    def compile_input(self) -> Path:
        return self.stage_models[-1]


def find_variant(recipe: Recipe, name: str) -> Variant:
    for v in recipe.variants:
        if v.name == name:
            return v
    raise unknown_name_error(file=recipe.path, field="--variant", kind="variant", name=name,
                             known=[v.name for v in recipe.variants])


def upstream_plan(plan: Plan) -> Plan:
    """The nodes of ``plan`` that make the models (no run, no score)."""
    return Plan({k: n for k, n in plan.nodes.items() if n.stage in UP_TO_COMPILE}, [])


def variant_graphs(recipe: Recipe, plugins, name: str, *, executor: str = "local", address: str | None = None,
                   progress=None) -> VariantGraphs:
    """Export, fix and compile ``name`` (from the cache where they are stored) and say which ONNX graphs to
    compare: the compiled artifact where it is an ONNX graph ONNX Runtime can run (an ONNX Runtime target,
    int8 included), else the last graph_fix model (a vendor compiler's output is not ONNX: its CPU stand-in is
    the graph it was given, where precision passes such as emulate_fp16 act)."""
    variant = find_variant(recipe, name)
    if variant.reference:
        raise InputError(f"variant {name!r} is the framework reference; porter debug compares a ported variant's "
                         "graph with its export: name a variant with a target", field="--variant")
    plan = build_plan(dataclasses.replace(recipe, variants=(variant,)), plugins)
    path = plan.paths[0]
    export_key, compile_key = path.export, path.compile
    if export_key is None or compile_key is None:  # only the reference's path skips them, and it was refused
        raise ValueError(f"variant {name!r} has no export or compile stage in its plan")
    ws = Workspace(recipe.workspace)
    ws.sweep_temporaries()
    results = get_executor(executor, address).execute(upstream_plan(plan), plugins, ws, progress=progress)
    for key in (path.preprocess, export_key, *path.graph_fix):
        res = results[key]
        if res.value is None:
            raise InputError(f"variant {name!r}: the {res.record.stage} stage ({res.record.label}) did not produce "
                             f"its artifact: {res.record.message}", field="--variant")
    export = results[export_key].value
    last = results[path.graph_fix[-1]].value if path.graph_fix else export
    compiled = results[compile_key]
    graph, graph_from, message = last.path, ("graph_fix " + path.variant.passes[-1].name if path.graph_fix
                                             else "export"), ""
    if compiled.value is not None and Path(compiled.value.path).suffix == ".onnx":
        graph, graph_from = compiled.value.path, f"compile ({variant.ported_target.name})"
    elif compiled.value is None:
        message = compiled.record.message
    else:
        message = f"{variant.ported_target.name} compiles to {Path(compiled.value.path).name}"
    models = (export.path, *(results[k].value.path for k in path.graph_fix))
    return VariantGraphs(variant, results[path.preprocess].value, export.path, Path(graph), graph_from, message,
                         tuple(Path(m) for m in models))
