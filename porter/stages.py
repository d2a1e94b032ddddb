"""Running one stage node: call its hook, check graph passes numerically, store the artifact."""
from __future__ import annotations

import hashlib
import socket
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx

from porter.agreement import compare_samples, first_problem, summary, worst_difference
from porter.artifacts import CompiledModel, InputSet, Metrics, OnnxModel, OutputSet, ParityCheck, PassRecord
from porter.errors import InputError, StageError, ToolMissingError
from porter.hashing import digest, file_digest
from porter.measure import measure
from porter.onnx_io import feeds_for, model_io, op_counts, opset_of, session
from porter.parity import ESTIMATE_TOLERANCE, EXACT_TOLERANCE, check_compiled, failure_message, variant_tolerance
from porter.plan import StageNode
from porter.precision.provenance import carry_provenance, read_provenance
from porter.report.model import StageRecord
from porter.scoring import evaluator_for
from porter.specs import StageContext
from porter.workspace import Workspace


def cached_node(node: StageNode, workspace: Workspace, *, worker: str, waited: float):
    """(artifact, record) when the node's key is stored, with the timings measured when it was computed."""
    cached = workspace.lookup(node.stage, node.key)
    if cached is None:
        return None
    rec = workspace.record(node.stage, node.key) or {}
    return cached, StageRecord(node.key, node.stage, node.plugin, node.label, True,
                               seconds=rec.get("seconds", 0.0), peak_rss_mb=rec.get("peak_rss_mb", 0.0),
                               added_mb=rec.get("added_mb", 0.0), worker=worker, waited_seconds=waited,
                               artifact_digest=rec.get("artifact_digest", ""))


def run_node(node: StageNode, upstream: dict, plugins, workspace: Workspace, *, force: bool = False,
             variant: str | None = None, submitted_at: float | None = None):
    """Return (artifact, StageRecord) for ``node``, from the cache when its key is stored and not forced."""
    started = time.time()
    waited = (started - submitted_at) if submitted_at else 0.0
    worker = socket.gethostname()
    if not force:
        hit = cached_node(node, workspace, worker=worker, waited=waited)
        if hit is not None:
            return hit
    with workspace.lock(node.stage, node.key):
        if not force:  # another process may have produced it while we waited for the lock
            hit = cached_node(node, workspace, worker=worker, waited=waited)
            if hit is not None:
                return hit
        workdir = workspace.new_workdir(node.stage, node.key)
        try:
            with measure() as m:
                context = StageContext(stage=node.stage, workspace=workspace.root, recipe_path=node.recipe_path,
                                       variant=variant)
                plugins.hook.porter_stage_started(stage=node.stage, plugin=node.plugin, variant=variant,
                                                  workdir=workdir)
                value = _call_stage(node, upstream, plugins, workdir, context)
            art_digest = _artifact_digest(value)
            record = {"seconds": m.seconds, "peak_rss_mb": m.peak_rss_mb, "added_mb": m.added_mb,
                      "artifact_digest": art_digest,
                      "plugin": node.plugin, "label": node.label}
            value = workspace.commit(node.stage, node.key, workdir, value, record)
        except BaseException as exc:
            workspace.discard(workdir)
            if isinstance(exc, InputError):
                if exc.stage is None:
                    exc.stage, exc.variant = node.stage, variant
                raise
            # the executors handle these three; any other PorterError (a vendor tool that exited non-zero,
            # unreadable device output) fails this variant like any other exception, not the whole run
            if isinstance(exc, (ToolMissingError, StageError, KeyboardInterrupt, SystemExit)):
                raise
            plugins.hook.porter_stage_error(stage=node.stage, plugin=node.plugin, variant=variant, error=exc)
            raise StageError(stage=node.stage, plugin=node.plugin, variant=variant, cause=exc) from exc
    return value, StageRecord(node.key, node.stage, node.plugin, node.label, False, seconds=m.seconds,
                              peak_rss_mb=m.peak_rss_mb, added_mb=m.added_mb, worker=worker, waited_seconds=waited,
                              artifact_digest=art_digest)


def _artifact_digest(value) -> str:
    """A content digest of what a stage produced: the model file, or every sample's arrays."""
    if isinstance(value, (InputSet, OutputSet)):
        h = hashlib.sha256()
        for i in range(len(value)):
            for name, arr in sorted(value.load(i).items()):
                h.update(name.encode())
                h.update(str(arr.dtype).encode() + str(arr.shape).encode())
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()
    if isinstance(value, Metrics):
        return digest(value)
    path = getattr(value, "path", None)
    if isinstance(path, Path) and path.is_file():
        return file_digest(path)
    return ""


def _no_answer(node: StageNode, what: str):
    return InputError(f"no plugin answered the {node.stage} stage for {what} (registered by {node.plugin!r}); "
                      "is that plugin installed and does it implement the hook?")


def _call_stage(node: StageNode, upstream: dict, plugins, workdir: Path, context: StageContext):
    owned = plugins.owned_hook
    if node.stage == "preprocess":
        dataset, model = node.config
        out = owned("porter_preprocess", "datasets", dataset.name)(dataset=dataset, model=model, workdir=workdir)
        if out is None:
            raise _no_answer(node, f"dataset {dataset.name!r}")
        if len(out) == 0:
            raise InputError(f"dataset {dataset.name!r} produced no samples; expected at least one (check its "
                             "options)", field="dataset.options")
        return out
    if node.stage == "export":
        out = owned("porter_export", "models", node.config.name)(model=node.config, inputs=upstream["inputs"],
                                                                 workdir=workdir)
        if out is None:
            raise _no_answer(node, f"model {node.config.name!r}")
        failed = [c for c in out.checks if not c.passed]
        if failed:
            raise StageError(stage="export", plugin=node.plugin, variant=None, cause=ValueError(
                f"export parity {failed[0].failure()}"))
        return out
    if node.stage == "graph_fix":
        return _graph_fix(node, upstream["model"], upstream["inputs"], plugins, workdir)
    if node.stage == "compile":
        model_config, metrics = node.scoring or (None, ())
        evaluate = evaluator_for(plugins, model_config, metrics, upstream["inputs"]) if model_config else None
        out = owned("porter_compile", "targets", node.config.name)(
            target=node.config, model=upstream["model"], inputs=upstream["inputs"], evaluate=evaluate,
            workdir=workdir, context=context)
        if out is None:
            raise _no_answer(node, f"target {node.config.name!r}")
        return _check_compiled(node, out, upstream, plugins)
    if node.stage == "run":
        out = owned("porter_run", "targets", node.config.name)(
            target=node.config, compiled=upstream["compiled"], inputs=upstream["inputs"], workdir=workdir,
            context=context)
        if out is None:
            raise _no_answer(node, f"target {node.config.name!r}")
        return out
    if node.stage == "run_reference":
        out = owned("porter_run_reference", "models", node.config.name)(model=node.config, inputs=upstream["inputs"],
                                                                        workdir=workdir)
        if out is None:
            raise _no_answer(node, f"model {node.config.name!r}")
        return out
    if node.stage == "score":
        model, metrics = node.config
        out = owned("porter_score", "models", model.name)(model=model, metrics=tuple(metrics),
                                                          inputs=upstream["inputs"], outputs=upstream["outputs"],
                                                          reference=upstream.get("reference"))
        if out is None:
            raise _no_answer(node, f"model {model.name!r}")
        return out
    raise ValueError(f"unknown stage {node.stage!r}")


def _check_compiled(node: StageNode, compiled: CompiledModel, upstream: dict, plugins) -> CompiledModel:
    """The compiled model against the exported ONNX on real padded batches and alone (porter.parity); the
    variant fails beyond the compiled model's tolerance. A target without a runner here is not checked."""
    target = node.config
    runner = plugins.owned_hook("porter_runner", "targets", target.name)(target=target, compiled=compiled)
    if runner is None:
        return compiled
    estimate = compiled.estimate or any(
        getattr(plugins.registry.get("passes", p.name), "estimate", False) for p in upstream["model"].passes)
    own = compiled.tolerance if compiled.tolerance is not None else (
        ESTIMATE_TOLERANCE if estimate else EXACT_TOLERANCE)
    # passes and compiler are measured together against the export: each pass's own tolerance (a precision
    # emulation meant to lose accuracy) is accepted here too
    tolerance = variant_tolerance(own, [p.check.tolerance for p in upstream["model"].passes])
    with runner:
        checks = check_compiled(runner, upstream["export"].path, upstream["inputs"], count=node.check_samples,
                                tolerance=tolerance, target=target.name)
    if not all(c.passed for c in checks):
        raise StageError(stage="compile", plugin=node.plugin, variant=None,
                         cause=ValueError(failure_message(target.name, checks)))
    return replace(compiled, checks=compiled.checks + checks, estimate=estimate, tolerance=own)


def _outputs_on(path: Path, inputs, count: int) -> list[dict]:
    sess = session(path, threads=None)
    in_specs, _ = model_io(onnx.load(str(path), load_external_data=False))
    names = [o.name for o in sess.get_outputs()]
    results = []
    for i in range(min(count, len(inputs))):
        feeds = feeds_for(inputs.load(i), in_specs)
        results.append(dict(zip(names, sess.run(None, feeds))))
    return results


def _graph_fix(node: StageNode, model: OnnxModel, inputs, plugins, workdir: Path) -> OnnxModel:
    """Apply one pass, then prove it: the model before and after on real inputs, within the pass's tolerance."""
    graph_pass = node.config
    before = onnx.load(str(model.path))
    ops_before = op_counts(before)
    prior = read_provenance(before)  # before the pass: it may rewrite ``before`` in place
    t0 = time.perf_counter()
    after = plugins.owned_hook("porter_graph_fix", "passes", graph_pass.name)(graph_pass=graph_pass, model=before)
    seconds = time.perf_counter() - t0
    if after is None:
        raise _no_answer(node, f"graph pass {graph_pass.name!r}")
    carry_provenance(prior, after)
    out_path = workdir / "model.onnx"
    onnx.save(after, str(out_path))
    try:
        onnx.checker.check_model(str(out_path))
    except onnx.checker.ValidationError as exc:
        raise StageError(stage="graph_fix", plugin=node.plugin, variant=None,
                         cause=ValueError(f"pass {graph_pass.name!r} produced an invalid ONNX model: {exc}")) from exc
    ref = _outputs_on(model.path, inputs, node.check_samples)
    new = _outputs_on(out_path, inputs, node.check_samples)
    agreements = compare_samples(ref, new)
    diff = worst_difference(agreements)
    problem = first_problem(agreements)
    check = ParityCheck(label=f"pass {graph_pass.name}", max_abs_diff=diff, tolerance=graph_pass.tolerance,
                        samples=len(ref), problem=problem)
    if problem:
        raise StageError(stage="graph_fix", plugin=node.plugin, variant=None, cause=ValueError(
            f"pass {graph_pass.name!r} broke its parity check on {len(ref)} real inputs: {problem}"))
    if not check.passed:
        raise StageError(stage="graph_fix", plugin=node.plugin, variant=None, cause=ValueError(
            f"pass {graph_pass.name!r} changed the outputs by {diff:.3g} (max abs; worst {summary(agreements)}) "
            f"on {len(ref)} real inputs, beyond its tolerance {graph_pass.tolerance:.3g}; the smallest tolerance "
            f"that would pass is {np.nextafter(diff, np.inf):.3g}"))
    ins, outs = model_io(after)
    record = PassRecord(graph_pass.name, ops_before, op_counts(after), check, seconds)
    return replace(model, path=out_path, inputs=ins, outputs=outs, opset=opset_of(after),
                   passes=model.passes + (record,))


__all__ = ["StageRecord", "run_node"]
