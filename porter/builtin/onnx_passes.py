"""The core's own graph passes: generic ONNX cleanups any recipe can list in ``graph_fix``.

- ``cleanup``: constant folding with onnx-graphsurgeon (onnxoptimizer 0.4.2 has none), dead-node and
  unused-initializer removal, topological sort, ONNX shape inference.
- ``onnxoptimizer``: a list of onnxoptimizer passes by name.
- ``ort_offline_optimize``: ONNX Runtime's own graph optimizer, saved back as a model.

They register through the same hooks as any plugin (``porter_register_passes`` / ``porter_graph_fix``).
"""
from __future__ import annotations

import os
import tempfile

import onnx

from porter.api import InputError, Option, PassSpec, __version__, hookimpl

PLUGIN_VERSION = __version__

# Rewrites that keep standard ops, need no follow-up folding and do not rename graph inputs or outputs.
SAFE_ONNXOPTIMIZER_PASSES = (
    "eliminate_deadend",
    "eliminate_identity",
    "eliminate_nop_dropout",
    "eliminate_nop_pad",
    "eliminate_nop_transpose",
    "eliminate_nop_concat",
    "eliminate_nop_split",
    "eliminate_nop_expand",
    "eliminate_unused_initializer",
    "eliminate_duplicate_initializer",
    "fuse_consecutive_transposes",
    "fuse_consecutive_squeezes",
    "fuse_consecutive_unsqueezes",
    "extract_constant_to_initializer",
)

# Passes that leave a weight-computing subgraph behind; constant folding must follow them.
NEED_FOLDING_AFTER = {"fuse_bn_into_conv", "fuse_add_bias_into_conv", "fuse_pad_into_conv"}

ORT_LEVELS = ("basic", "extended")

SPECS = (
    PassSpec(
        name="cleanup",
        description="Fold constant subgraphs (onnx-graphsurgeon fold_constants, evaluated with ONNX Runtime), "
                    "simplify redundant Casts, remove dead nodes and unused initializers, sort topologically "
                    "and run ONNX shape inference. Values are unchanged up to float rounding of folded "
                    "arithmetic.",
        options={
            "fold_constants": Option("bool", True, help="evaluate subgraphs whose inputs are all constant"),
            "fold_shapes": Option("bool", True, help="also fold Shape ops of tensors whose shape is static"),
            "infer_shapes": Option("bool", True, help="annotate tensors with ONNX shape inference afterwards"),
            "simplify_casts": Option("bool", True,
                                     help="drop Casts to the type a tensor already has, and make Cast→Cast "
                                          "one Cast where the first loses nothing (int32→int64→int32...)"),
        },
        tolerance=1e-5,
        version="2",  # 2: simplifies Casts, so graphs cached by version 1 differ
    ),
    PassSpec(
        name="onnxoptimizer",
        description="Run onnxoptimizer passes by name. The default is a set that keeps standard ops and needs "
                    "no folding; fuse_bn_into_conv (and the other conv fusions) leave a weight-computing "
                    "subgraph, so constant folding runs after them automatically.",
        options={
            "passes": Option("list", list(SAFE_ONNXOPTIMIZER_PASSES),
                             help="onnxoptimizer pass names, run in one call in this order"),
        },
        tolerance=1e-5,
    ),
    PassSpec(
        name="ort_offline_optimize",
        description="Let ONNX Runtime optimize the graph and save the result. 'basic' keeps standard ONNX ops "
                    "(constant folding, redundant-node removal); 'extended' may introduce com.microsoft "
                    "fused ops that only ONNX Runtime runs, so it is no input for other compilers.",
        options={"level": Option("str", "basic", choices=ORT_LEVELS, help="graph optimization level")},
        tolerance=1e-5,
    ),
)


@hookimpl
def porter_register_passes():
    return list(SPECS)


@hookimpl
def porter_graph_fix(graph_pass, model):
    implementation = IMPLEMENTATIONS.get(graph_pass.name)
    if implementation is None:
        return None
    # an option left unset reaches us as None: the function's own default applies then
    return implementation(model, **{k: v for k, v in dict(graph_pass.options).items() if v is not None})


def cleanup(model: onnx.ModelProto, fold_constants: bool = True, fold_shapes: bool = True,
            infer_shapes: bool = True, simplify_casts: bool = True) -> onnx.ModelProto:
    import onnx_graphsurgeon as gs

    graph = gs.import_onnx(_with_inferred_shapes(model) if fold_shapes or simplify_casts else model)
    if fold_constants:
        graph.fold_constants(fold_shapes=fold_shapes)
    if simplify_casts:
        simplify_cast_chains(graph)
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    exported = gs.export_onnx(graph)
    result = _with_graph(model, exported.graph)
    if infer_shapes:
        del result.graph.value_info[:]  # stale records from before folding would conflict with the new ones
        result = onnx.shape_inference.infer_shapes(result)
    return result


def simplify_cast_chains(graph) -> None:
    """Rewire an onnx-graphsurgeon graph around redundant Casts.

    Exporters cast lengths back and forth (int32 → int32, int32 → int64 → int32); each Cast is a kernel launch on
    an accelerator. A Cast to the type its input already has is bypassed. Cast(A → B) → Cast(B → C) becomes one
    Cast(A → C) when B holds every value of A (numpy's "safe" casting), since A → B is then exact. A Cast whose
    output is a graph output stays, so the graph's interface does not change; the bypassed ones are left dead
    for the cleanup that follows.
    """
    import numpy as np
    from onnx import helper

    def dtype_of(tensor):
        try:
            return np.dtype(tensor.dtype) if tensor.dtype is not None else None
        except TypeError:  # an ONNX type numpy has no dtype for (bfloat16, float8...)
            return None

    def target(node):
        try:
            return np.dtype(helper.tensor_dtype_to_np_dtype(node.attrs["to"]))
        except (KeyError, TypeError, ValueError):
            return None

    outputs = {id(t) for t in graph.outputs}
    for node in graph.toposort().nodes:  # producers first, so a chain of any length collapses
        if node.op != "Cast" or not node.inputs or not node.outputs:  # folding leaves nodes disconnected
            continue
        source, to = node.inputs[0], target(node)
        producer = source.inputs[0] if source.inputs else None
        if to is not None and producer is not None and producer.op == "Cast" and producer.inputs:
            first_in, between = dtype_of(producer.inputs[0]), target(producer)
            if first_in is not None and between is not None and np.can_cast(first_in, between, casting="safe"):
                node.inputs[0] = source = producer.inputs[0]
        out = node.outputs[0]
        if to is not None and dtype_of(source) == to and id(out) not in outputs:
            for consumer in list(out.outputs):
                for i, tensor in enumerate(consumer.inputs):
                    if tensor is out:
                        consumer.inputs[i] = source


def onnxoptimizer_pass(model: onnx.ModelProto, passes=SAFE_ONNXOPTIMIZER_PASSES) -> onnx.ModelProto:
    import onnxoptimizer

    passes = list(passes)
    known = set(onnxoptimizer.get_available_passes())
    unknown = [p for p in passes if p not in known]
    if unknown:
        raise InputError(f"unknown onnxoptimizer pass(es) {unknown}; onnxoptimizer "
                         f"{getattr(onnxoptimizer, '__version__', '?')} knows: {sorted(known)}",
                         field="graph_fix.onnxoptimizer.passes")
    optimized = onnxoptimizer.optimize(model, passes)
    if NEED_FOLDING_AFTER.intersection(passes):
        optimized = cleanup(optimized, infer_shapes=False)
    return optimized


def ort_offline_optimize(model: onnx.ModelProto, level: str = "basic") -> onnx.ModelProto:
    import onnxruntime as ort

    if level not in ORT_LEVELS:
        raise InputError(f"level {level!r} is not one of {ORT_LEVELS}", field="graph_fix.ort_offline_optimize.level")
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }[level]
    with tempfile.TemporaryDirectory(prefix="porter-ort-") as folder:
        options.optimized_model_filepath = os.path.join(folder, "optimized.onnx")
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath)
    return optimized


def _with_inferred_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Annotate tensor shapes so that Shape ops of statically sized axes can be folded.

    ONNX Runtime's symbolic inference follows the Shape→Gather→Concat arithmetic of dynamic Reshapes, which
    onnx's own inference does not; where it gives up, onnx's inference (or nothing) is used.
    """
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        return SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception:  # noqa: BLE001 - it raises on ops it does not know; fall back
        try:
            return onnx.shape_inference.infer_shapes(model)
        except Exception:  # noqa: BLE001
            return model


def _with_graph(model: onnx.ModelProto, graph: onnx.GraphProto) -> onnx.ModelProto:
    """A copy of ``model`` (opsets, IR version, metadata) carrying ``graph``."""
    result = onnx.ModelProto()
    result.CopyFrom(model)
    result.graph.CopyFrom(graph)
    return result


IMPLEMENTATIONS = {
    "cleanup": cleanup,
    "onnxoptimizer": onnxoptimizer_pass,
    "ort_offline_optimize": ort_offline_optimize,
}
