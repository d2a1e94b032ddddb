"""ais_bench (`python3 -m ais_bench`, Ascend/msit ait/components/benchmark/ais_bench/infer): its command line,
where it writes, and its summary.

Read from its sources: outputs go to ``<output>/<output_dirname>/<input stem>_<k>.<fmt>`` trimmed to the shape
that ran, the summary to ``<output>/<output_dirname>_summary.json`` (summary.py: ``NPU_compute_time`` with
min/max/mean/median/``percentile(99%)``, ``H2D_latency``, ``D2H_latency``, ``npu_compute_time_list``,
``throughput``); TXT writes floats with ``%f`` (utils.py), six decimals, so values under 5e-7 read back as 0;
since late 2023 it refuses om/input/output paths with characters outside ``[_A-Za-z0-9/.-]``, symbolic links,
and group- or other-writable files and folders (path_security_check.py, args_check.py).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from porter.api import Timing
from porter_ascend310.runner_base import OutputFormatError, Runner, ais_bench_path_problem

DIRNAME = "result"


class AisBench(Runner):
    name = "ais_bench"
    outfmts = ("BIN", "NPY", "TXT")
    own_flags = frozenset({"warmup_count", "loop"})
    script_variable = "AIS_BENCH"
    script_default = "python3 -m ais_bench"
    how_to_install = ("install ais_bench (Ascend's msit / ais-bench_workload) into python3, or give its command "
                      "to the bundle's run.sh as AIS_BENCH=...")

    def check_layout_impl(self, layout) -> list[str]:
        floats = [s.name for s in layout.outputs if np.dtype(s.dtype).kind == "f"]
        if layout.outfmt == "TXT" and floats:
            return [f"ais_bench --outfmt TXT writes float outputs ({', '.join(floats)}) with six decimals: values "
                    "under 5e-7 read back as 0 and small probabilities lose digits; outfmt NPY or BIN is exact"]
        return []

    def argv_impl(self, om: str, input_dirs: Sequence[str], output: str, layout) -> list[str]:
        argv = ["--model", om, "--input", ",".join(input_dirs), "--output", output, "--output_dirname", DIRNAME,
                "--outfmt", layout.outfmt, "--batchsize", "1"]
        for name in ("device", "warmup_count", "loop"):
            value = getattr(layout, name)
            if value is not None:
                argv += [f"--{name}", str(value)]
        return argv + list(layout.dynamic_args)

    def path_problem_impl(self, om, input_dirs, output, cwd) -> str | None:
        if not om.endswith(".om"):
            return f"ais_bench takes only a model file ending in .om, not {om!r}"
        for path, what in [(om, "model"), *[(d, "input folder") for d in input_dirs], (output, "output folder"),
                           (f"{output}/{DIRNAME}", "output folder")]:
            problem = ais_bench_path_problem(path, what, cwd)
            if problem:
                return problem
        return None

    def output_file_name_impl(self, stem: str, index: int, ext: str) -> str:
        return f"{stem}_{index}.{ext}"

    def find_result_dir_impl(self, layout, output_dir: Path) -> Path:
        found = output_dir / DIRNAME
        if not found.is_dir():
            raise OutputFormatError(f"{output_dir}: no {DIRNAME}/ folder; ais_bench has not run here")
        return found

    def read_timing_impl(self, layout, output_dir: Path) -> tuple[Timing, dict]:
        return parse_ais_bench_summary(summary_path(output_dir), layout.warmup_count)


def summary_path(output_dir: Path) -> Path:
    return output_dir / f"{DIRNAME}_summary.json"


def parse_ais_bench_summary(path: Path, warmup: int | None) -> tuple[Timing, dict]:
    """NPU compute times and throughput from ais_bench's summary JSON."""
    try:
        summary = json.loads(path.read_text())
    except FileNotFoundError:
        raise OutputFormatError(f"{path}: missing; ais_bench writes its summary here") from None
    except json.JSONDecodeError as error:
        raise OutputFormatError(f"{path}: not JSON ({error})") from None
    compute = summary.get("NPU_compute_time")
    if not isinstance(compute, Mapping) or "mean" not in compute:
        raise OutputFormatError(f"{path}: no NPU_compute_time.mean; not an ais_bench summary")
    # summary.py writes "percentile(99%)"; "P99" is what summaries read by earlier porter versions held
    percentile = next((compute[k] for k in ("percentile(99%)", "P99", "P99.0") if k in compute), None)
    stats = {"mean_ms": compute.get("mean"), "median_ms": compute.get("median"), "min_ms": compute.get("min"),
             "max_ms": compute.get("max"), "p99_ms": percentile,
             "throughput": summary.get("throughput"),
             "h2d_mean_ms": (summary.get("H2D_latency") or {}).get("mean"),
             "d2h_mean_ms": (summary.get("D2H_latency") or {}).get("mean")}
    raw = summary.get("npu_compute_time_list") or []
    # multi-threaded runs record (start, end) intervals instead of durations (summary.py)
    latencies = [float(v[1]) - float(v[0]) if isinstance(v, (list, tuple)) else float(v) for v in raw]
    details: dict[str, Any] = {"timing_source": "ais_bench npu_compute_time_list", "ais_bench_summary": stats}
    if not latencies:
        latencies = [float(compute["mean"])]
        details["timing_source"] = "ais_bench NPU_compute_time.mean only"
    timing = Timing(latencies_ms=tuple(latencies), wall_seconds=sum(latencies) / 1000.0,
                    warmup=1 if warmup is None else warmup, batch_size=1)
    return timing, details


__all__ = ["AisBench", "parse_ais_bench_summary", "summary_path", "DIRNAME"]
