"""The openvino target's hooks: registration, compile, runner, run, tool versions."""
from __future__ import annotations

from pathlib import Path

from porter.api import (
    OutputSet,
    TargetSpec,
    Timing,
    ToolMissingError,
    hookimpl,
    run_details,
    run_samples,
)
from porter_openvino import PLUGIN_VERSION, capabilities
from porter_openvino.flags import FLAGS, RUN_FLAGS

TARGET = "openvino"


def _require_openvino() -> None:
    try:
        import openvino  # noqa: F401
    except ImportError as exc:
        raise ToolMissingError(f"the openvino target needs OpenVINO ({exc}); install it with "
                               "pip install -e '.[openvino]'") from None


@hookimpl
def porter_register_targets():
    return [TargetSpec(TARGET, "OpenVINO on the CPU: f32, bf16, f16 and NNCF int8, batch 1 or bucketed", FLAGS,
                       version=PLUGIN_VERSION, run_flags=RUN_FLAGS)]


@hookimpl
def porter_tool_versions():
    return capabilities.tool_versions()


@hookimpl
def porter_stage_resources(stage, target):
    if target is not None and target.name == TARGET:
        return {}
    return None


@hookimpl
def porter_compile(target, model, inputs, evaluate, workdir: Path):
    if target.name != TARGET:
        return None
    _require_openvino()
    from porter_openvino.compile import compile_model

    return compile_model(model, dict(target.flags), Path(workdir), caps=capabilities.detect(), inputs=inputs,
                         evaluate=evaluate)


@hookimpl
def porter_runner(target, compiled):
    if target.name != TARGET:
        return None
    _require_openvino()
    from porter_openvino.runner import OpenVinoRunner

    return OpenVinoRunner(compiled, target.flags)


@hookimpl
def porter_run(target, compiled, inputs, workdir: Path):
    if target.name != TARGET:
        return None
    _require_openvino()
    from porter_openvino.runner import OpenVinoRunner

    flags = target.flags
    with OpenVinoRunner(compiled, flags) as runner:
        run = run_samples(runner, inputs, Path(workdir), batching=flags["batching"], batch_size=flags["batch_size"],
                          max_batch_frames=flags["max_batch_frames"], warmup=flags["warmup"], label=TARGET)
        extra = runner.details()
        notes = runner.precision_notes()
    batch = flags["batch_size"] if flags["batching"] == "bucketed" else 1
    details = {**run_details(run, batching=flags["batching"], batch_size=flags["batch_size"],
                             max_batch_frames=flags["max_batch_frames"]),
               **extra, "precision": compiled.details.get("precision")}
    return OutputSet(path=Path(workdir), sample_ids=inputs.sample_ids,
                     output_names=tuple(s.name for s in compiled.outputs),
                     timing=Timing(run.latencies_ms, run.wall_seconds, warmup=flags["warmup"], batch_size=batch),
                     estimate=compiled.estimate, details=details, notes=notes)
