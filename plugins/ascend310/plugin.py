"""The ascend310 plugin: the Ascend 310 target (atc compile, msame / ais_bench run, device bundles) and the
LSTM graph passes of porter_ascend310.passes.

Where the toolchain is installed, compile and run call it. Where it is not, a variant with ``bundle_dir`` set
writes its share of a bundle (bundle.py) and stops with ToolMissingError saying the bundle is ready; once the
bundle has been run on an Ascend host and copied back, the same variant reads the returned outputs exactly as
a local run would.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from porter.api import (
    CompiledModel,
    InputError,
    OnnxModel,
    Option,
    OutputSet,
    StageContext,
    TargetSpec,
    TensorSpec,
    ToolMissingError,
    hookimpl,
    write_sample,
)
from porter_ascend310 import atc, bundle, bundle_score, runners
from porter_ascend310.toolkit import ToolFailedError, Toolkit, find_toolkit, run_tool, tail

TARGET = "ascend310"
PLUGIN_VERSION = "1"
BUNDLE_FLAG = Option("path", must_exist=False, help="where atc or the runner is missing, write a bundle for an "
                     "Ascend host here (set by `porter run --bundle DIR`)")


def target_flags() -> dict[str, Option]:
    return {**atc.flag_options(), **runners.RUN_FLAGS, "bundle_dir": BUNDLE_FLAG}


def bundle_folder(target) -> Path | None:
    """Where this variant writes its bundle: its own bundle_dir flag, else the folder of `porter run --bundle`."""
    chosen = (target.flags or {}).get("bundle_dir") or getattr(target, "bundle", None)
    return Path(chosen) if chosen else None


# ---------------------------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------------------------


def _passes() -> Mapping[str, Any]:
    from porter_ascend310.passes import PASSES

    return PASSES


@hookimpl
def porter_register_passes():
    return [spec for spec, _ in _passes().values()]


@hookimpl
def porter_register_targets():
    return [TargetSpec(
        TARGET,
        description="Huawei Ascend 310 via CANN: atc compiles ONNX to .om, msame or ais_bench runs it; "
                    "without the toolchain, a bundle of exact commands for an Ascend host",
        flags=target_flags(),
        version=PLUGIN_VERSION,
        run_flags=frozenset(runners.RUN_FLAGS),
        writes_bundle=True,
    )]


@hookimpl
def porter_add_commands(subparsers):
    bundle_score.add_score_command(subparsers)


@hookimpl
def porter_stage_resources(stage, target):
    if target is None or getattr(target, "name", None) != TARGET:
        return None
    if bundle_folder(target) is not None:
        # a bundling variant compiles and runs wherever it lands: without the tools it writes the bundle
        return None
    return {"compile": {"atc": 1}, "run": {"ascend310": 1}}.get(stage)


@hookimpl
def porter_tool_versions():
    return find_toolkit().versions()


# ---------------------------------------------------------------------------------------------------------
# Graph passes
# ---------------------------------------------------------------------------------------------------------


@hookimpl
def porter_graph_fix(graph_pass, model):
    registered = _passes().get(graph_pass.name)
    if registered is None:
        return None
    _, rewrite = registered
    options = {k: v for k, v in dict(graph_pass.options).items() if v is not None}
    return rewrite(model, **options)


# ---------------------------------------------------------------------------------------------------------
# Compile
# ---------------------------------------------------------------------------------------------------------


def _node_outputs(model: OnnxModel, entries: list[str], field: str) -> list[str]:
    """The ONNX graph outputs named by atc's 'node:index' entries (out_nodes, per-output output_type)."""
    import onnx

    graph = onnx.load(str(model.path), load_external_data=False).graph
    nodes = {node.name: node for node in graph.node}
    graph_outputs = [o.name for o in model.outputs]
    names = []
    for entry in entries:
        node_name, _, index = entry.rpartition(":")
        node = nodes.get(node_name)
        if node is None or not index.isdigit() or int(index) >= len(node.output):
            raise InputError(f"names {entry!r}, which is no output of a node of {model.path}; expected "
                             "'node_name:index'", field=f"target.flags.{field}")
        tensor = node.output[int(index)]
        if tensor not in graph_outputs:
            raise InputError(f"names {entry!r} (tensor {tensor!r}), which is not one of the model's outputs "
                             f"({', '.join(graph_outputs)}); porter reads back only graph outputs",
                             field=f"target.flags.{field}")
        names.append(tensor)
    return names


def _compiled_outputs(model: OnnxModel, flags: Mapping[str, Any]) -> tuple[TensorSpec, ...]:
    """The .om's outputs: the ONNX outputs (or those out_nodes chooses, in its order), retyped by --output_type
    (model-wide: every float output; per output: the named ones), since the runners write that dtype."""
    specs = {s.name: s for s in model.outputs}
    chosen = list(specs)
    if flags.get("out_nodes"):
        entries = flags["out_nodes"].split(";") if isinstance(flags["out_nodes"], str) else list(flags["out_nodes"])
        chosen = _node_outputs(model, [str(e).strip() for e in entries], "out_nodes")
    output_type = flags.get("output_type") or ""
    retype: dict[str, str] = {}
    if output_type in atc.OUTPUT_TYPE_DTYPES:
        retype = {n: atc.OUTPUT_TYPE_DTYPES[output_type] for n in chosen if np.dtype(specs[n].dtype).kind == "f"}
    elif output_type:
        parts = [part.rpartition(":") for part in output_type.split(";")]
        names = _node_outputs(model, [node for node, _, _ in parts], "output_type")
        retype = {name: atc.OUTPUT_TYPE_DTYPES[kind] for name, (_, _, kind) in zip(names, parts)}
    return tuple(TensorSpec(n, specs[n].shape, retype.get(n, specs[n].dtype)) for n in chosen)


def _compiled_inputs(model: OnnxModel, shapes: Mapping[str, list[int]],
                     flags: Mapping[str, Any]) -> tuple[TensorSpec, ...]:
    """The .om's inputs at atc's shapes; --input_fp16_nodes makes those inputs take fp16 data."""
    fp16 = flags.get("input_fp16_nodes") or ()
    fp16 = {n.strip() for n in (fp16.split(";") if isinstance(fp16, str) else fp16)}
    unknown = sorted(fp16 - {s.name for s in model.inputs})
    if unknown:
        raise InputError(f"names {', '.join(unknown)}, which is no input of the model (its inputs are "
                         f"{', '.join(s.name for s in model.inputs)})", field="target.flags.input_fp16_nodes")
    specs = []
    for spec in model.inputs:
        dims = tuple(d if d != -1 else (spec.shape[i] if isinstance(spec.shape[i], str) else f"dyn{i}")
                     for i, d in enumerate(shapes[spec.name]))
        specs.append(TensorSpec(spec.name, dims, "float16" if spec.name in fp16 else spec.dtype))
    return tuple(specs)


def _dynamic_json(plan: atc.CompilePlan) -> dict | None:
    if plan.dynamic is None:
        return None
    return {"option": plan.dynamic.option, "profiles": [list(p) for p in plan.dynamic.profiles]}


def _om_name(model: OnnxModel, flags: Mapping[str, Any]) -> str:
    name = flags.get("om_name") or "".join(c if c.isalnum() or c in "_-" else "_" for c in model.path.stem)
    return name or "model"


@hookimpl
def porter_compile(target, model, workdir, context):
    if target.name != TARGET:
        return None
    bundle_dir = bundle_folder(target)
    toolkit = find_toolkit()
    checked = atc.check_flags(model.inputs, dict(target.flags), toolkit.cann_version)  # the one validation
    flags = checked.flags
    workdir = Path(workdir)
    om_name = _om_name(model, flags)
    if toolkit.atc is None:
        if bundle_dir is None:
            raise ToolMissingError(toolkit.missing_message("atc"))
        return _compile_into_bundle(bundle_dir, model, checked, om_name, toolkit, workdir, context)
    # atc runs inside the work directory, so --output is relative and the recorded argv names no temp path
    plan = atc.plan_compile(Path(model.path).resolve(), om_name, model.inputs, checked, atc=str(toolkit.atc),
                            aoe=str(toolkit.aoe or "aoe"), detected_cann=toolkit.cann_version)
    # the interface of the .om, checked before any tool runs
    inputs, outputs = _compiled_inputs(model, plan.input_shapes, flags), _compiled_outputs(model, flags)
    started = time.perf_counter()
    logs = []
    if plan.aoe_argvs:
        toolkit.command("aoe")  # raises ToolMissingError naming aoe
        for argv in plan.aoe_argvs:
            done = run_tool(argv, tool="aoe", cwd=workdir)
            logs.append(done.stdout + done.stderr)
    done = run_tool(plan.atc_argv, tool="atc", cwd=workdir)
    seconds = time.perf_counter() - started
    logs.append(done.stdout + done.stderr)
    (workdir / "atc.log").write_text("\n".join(logs))
    om = workdir / f"{om_name}.om"
    if not om.is_file():
        raise ToolFailedError(f"atc exited 0 but wrote no {om}; its output ended with:\n{tail(logs[-1])}")
    return CompiledModel(
        target=TARGET, path=om, source=Path(model.path), inputs=inputs, outputs=outputs, compile_seconds=seconds,
        size_bytes=om.stat().st_size,
        details={"pending": False, "argv": plan.atc_argv, "aoe_argvs": plan.aoe_argvs, "tool": str(toolkit.atc),
                 "cann_version": plan.cann_version, "log_tail": tail(logs[-1]),
                 "input_shapes": plan.input_shapes, "dynamic": _dynamic_json(plan),
                 "aipp": "insert_op_conf" in flags})


def _compile_into_bundle(bundle_dir: Path, model: OnnxModel, checked: atc.CheckedFlags, om_name: str,
                         toolkit: Toolkit, workdir: Path, context: StageContext | None) -> CompiledModel:
    """No atc here: put the ONNX and its exact atc command into the bundle; the .om is pending."""
    flags = checked.flags
    local = atc.plan_compile(model.path, om_name, model.inputs, checked, detected_cann=toolkit.cann_version)
    inputs, outputs = _compiled_inputs(model, local.input_shapes, flags), _compiled_outputs(model, flags)
    compile_flags = {k: v for k, v in flags.items() if k not in runners.RUN_FLAGS and k != "bundle_dir"}
    key = bundle.model_key(om_name, bundle.file_digest(Path(model.path)),
                           json.dumps(compile_flags, sort_keys=True, default=str), toolkit.cann_version or "")

    def plan(onnx_rel, stem_rel, path_text):
        carried = atc.plan_compile(onnx_rel, stem_rel, model.inputs, checked, detected_cann=toolkit.cann_version,
                                   path_text=path_text)
        return carried.atc_argv, carried.aoe_argvs

    details = {"input_shapes": local.input_shapes, "dynamic": _dynamic_json(local),
               "inputs": bundle.specs_json(model.inputs), "outputs": bundle.specs_json(model.outputs),
               "cann_version": local.cann_version, "source_onnx": str(model.path)}
    entry = bundle.add_model(bundle_dir, key, Path(model.path), om_name=om_name, plan=plan, details=details,
                             context=context)
    return CompiledModel(
        target=TARGET, path=bundle.inside(bundle_dir, entry.om), source=Path(model.path),
        inputs=inputs, outputs=outputs,
        details={"pending": True, "bundle_dir": str(bundle_dir.resolve()), "bundle_model": key,
                 "argv": entry.atc_argv, "aoe_argvs": entry.aoe_argvs, "cann_version": local.cann_version,
                 "input_shapes": local.input_shapes, "dynamic": _dynamic_json(local),
                 "aipp": "insert_op_conf" in flags,
                 "note": "atc not found here: the compile command is in the bundle's run.sh"})


# ---------------------------------------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------------------------------------


def _layout(compiled: CompiledModel, inputs, settings: runners.RunSettings, onnx_path: Path) -> runners.RunLayout:
    shapes, dynamic_args = runners.choose_run_shapes(compiled, inputs)
    fed = tuple(TensorSpec(s.name, shapes[s.name], s.dtype) for s in compiled.inputs)
    first = inputs.load(0) if len(inputs) else {}
    feed = ({s.name: runners.pad_to(first[s.name], s.shape, s.dtype, f"tensor {s.name!r}") for s in fed}
            if first else None)
    outputs = runners.infer_output_specs(onnx_path, shapes, compiled.outputs, feed)
    return runners.RunLayout(
        runner=settings.runner, outfmt=settings.outfmt, stems=tuple(f"data{i + 1}" for i in range(len(inputs))),
        input_dirs=runners.input_dir_names([s.name for s in fed]), inputs=fed, outputs=outputs,
        dynamic_args=dynamic_args, device=settings.device, warmup_count=settings.warmup_count, loop=settings.loop)


def _output_set(workdir: Path, inputs, layout: runners.RunLayout, result: runners.RunResult,
                details: dict) -> OutputSet:
    if len(result.samples) != len(inputs):
        raise runners.OutputFormatError(f"{len(result.samples)} output samples for {len(inputs)} inputs")
    for index, arrays in enumerate(result.samples):
        write_sample(workdir, index, arrays)
    return OutputSet(path=workdir, sample_ids=tuple(inputs.sample_ids),
                     output_names=tuple(s.name for s in layout.outputs), timing=result.timing,
                     details={"runner": layout.runner, "outfmt": layout.outfmt,
                              "input_shapes": {s.name: list(s.shape) for s in layout.inputs},
                              **result.details, **details})


def _source_onnx(compiled: CompiledModel) -> Path:
    if Path(compiled.source).is_file():
        return Path(compiled.source)
    if compiled.details.get("pending"):
        carried = Path(compiled.details["bundle_dir"]) / "models" / compiled.details["bundle_model"] / "model.onnx"
        if carried.is_file():
            return carried
    raise ToolFailedError(f"the ONNX model {compiled.source} that {compiled.path} was compiled from is gone; "
                          "re-run the compile stage (porter run --force compile)")


@hookimpl
def porter_run(target, compiled, inputs, workdir, context):
    if target.name != TARGET:
        return None
    flags = dict(target.flags)
    settings = runners.RunSettings.from_flags(flags)
    workdir = Path(workdir)
    if compiled.details.get("aipp"):
        # AIPP turns the .om's input into the image format of its config (uint8 NHWC, YUV...): the ONNX
        # model's tensors, which are what porter has, no longer fit and both runners would reject the files
        raise runners.RunnerInputError(
            f"{compiled.path} was compiled with insert_op_conf (AIPP), so it takes image data in the format its "
            "config names, not the model's float tensors porter writes; run it on your own image files, or "
            "compile without insert_op_conf to compare it here")
    layout = _layout(compiled, inputs, settings, _source_onnx(compiled))
    toolkit = find_toolkit()
    pending = bool(compiled.details.get("pending"))
    if not pending and toolkit.has(settings.runner):
        return _run_here(toolkit, compiled, inputs, layout, workdir)
    bundle_dir = compiled.details.get("bundle_dir") or bundle_folder(target)
    if not bundle_dir:
        raise ToolMissingError(toolkit.missing_message(settings.runner))
    return _run_through_bundle(Path(bundle_dir), toolkit, compiled, inputs, layout, workdir, pending, context)


def _run_here(toolkit: Toolkit, compiled: CompiledModel, inputs, layout: runners.RunLayout,
              workdir: Path) -> OutputSet:
    runner = runners.runner_for(layout)
    warnings = runner.check_layout(layout)
    run_dir = workdir / "ascend_run"
    input_root = run_dir / "inputs"
    output_dir = run_dir / "outputs"
    runners.write_input_files(inputs, layout, input_root)
    output_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(output_dir, 0o755)
    # paths relative to the run folder: the workspace's own path may hold characters ais_bench refuses, or a
    # ".bin" that would make msame take its input folders for files
    om = os.path.relpath(Path(compiled.path).resolve(), run_dir.resolve())
    argv = runner.argv(toolkit.command(layout.runner), om, [f"inputs/{d}" for d in layout.input_dirs],
                       "outputs", layout, cwd=run_dir)
    started = time.perf_counter()
    done = run_tool(argv, tool=layout.runner, cwd=run_dir)
    wall = time.perf_counter() - started
    (output_dir / runner.log_name()).write_text(done.stdout + done.stderr)
    result = runner.collect(layout, output_dir)
    # the arrays now live in the OutputSet's samples; keep only the runner's log and summary
    shutil.rmtree(runner.find_result_dir(layout, output_dir), ignore_errors=True)
    shutil.rmtree(input_root, ignore_errors=True)
    return _output_set(workdir, inputs, layout, result, {"argv": argv, "tool_wall_seconds": wall,
                                                         "source": "run here", **_warned(warnings)})


def _warned(warnings: list[str]) -> dict:
    """Warnings go to stderr now and into the run's details, where the report keeps them."""
    for warning in warnings:
        print(f"porter: ascend310: warning: {warning}", file=sys.stderr)
    return {"warnings": warnings} if warnings else {}


def _run_through_bundle(bundle_dir: Path, toolkit: Toolkit, compiled: CompiledModel, inputs,
                        layout: runners.RunLayout, workdir: Path, pending: bool,
                        context: StageContext | None) -> OutputSet:
    if pending:
        entry_path = bundle.inside(bundle_dir, f"entries/models/{compiled.details['bundle_model']}.json")
        if not entry_path.is_file():
            raise ToolMissingError(f"bundle {bundle_dir} lacks model {compiled.details['bundle_model']} that the "
                                   "compile stage put there; re-run with --force compile")
        data = json.loads(entry_path.read_text())
        model = bundle.ModelEntry(key=data["key"], onnx=data["onnx"], om=data["om"], om_ready=data["om_ready"],
                                  atc_argv=data["atc_argv"], aoe_argvs=data["aoe_argvs"])
    else:
        om_name = "".join(c if c.isalnum() or c in "_-" else "_" for c in Path(compiled.path).stem) or "model"
        key = bundle.model_key(om_name, bundle.file_digest(Path(compiled.path)))
        model = bundle.add_model(bundle_dir, key, _source_onnx(compiled), om_name=om_name,
                                 plan=lambda *_: ([], []), om_file=Path(compiled.path),
                                 details={"input_shapes": compiled.details.get("input_shapes"),
                                          "compiled_here": True}, context=context)
    set_key = bundle.input_set_key(inputs, layout)
    key = bundle.run_key(model.key, set_key, layout)
    output_dir = bundle.run_output_dir(bundle_dir, key)
    if runners.has_outputs(layout, output_dir):
        result = runners.collect(layout, output_dir)
        return _output_set(workdir, inputs, layout, result, {"source": f"bundle {bundle_dir} run {key}"})
    warnings = runners.runner_for(layout).check_layout(layout)
    bundle.add_run(bundle_dir, model, inputs, layout,
                   details={"source_onnx": str(compiled.source), **_warned(warnings)}, context=context)
    missing = [tool for tool in (["atc"] if pending else []) + [layout.runner] if not toolkit.has(tool)]
    if not missing:
        # the toolchain appeared after the compile stage wrote its command into the bundle (and was cached)
        raise ToolMissingError(
            f"this variant's compile is pending in bundle {bundle_dir} (atc was missing when it ran) although "
            f"atc and {layout.runner} are installed now: re-run with `--force compile` to compile and run here, "
            f"or run the bundle on an Ascend host and `porter score {bundle_dir}`")
    raise ToolMissingError(
        f"{' and '.join(missing)} not found here; the bundle is ready at {bundle_dir} "
        f"(model {model.key}, run {key}). Copy the folder to an Ascend host, run `bash run.sh` inside it, copy "
        f"it back, then run `porter score {bundle_dir}`.")
