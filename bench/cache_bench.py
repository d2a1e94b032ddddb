"""Bench 6: a cached re-run of a recipe against a cold run, both through the ``porter run`` command.

Each repetition starts from an empty workspace (cold: every stage computed), then runs the same command again
(cached: every stage taken from the workspace). Two times are kept per run: the whole process (Python start-up
and imports included, what a user waits for) and the pipeline's own wall time from report.json (what the
cache can save). The synthetic corpus lives outside the workspace (a per-user cache), so cold runs reuse the
generated audio but recompute everything porter does with it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from timing import of_values, ratio


def _porter_run(recipe: Path, workspace: Path) -> dict:
    command = [sys.executable, "-m", "porter.cli.main", "run", str(recipe), "--workspace", str(workspace), "--quiet"]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    report_path = workspace / "report.json"
    if not report_path.is_file():
        raise RuntimeError(f"porter run {recipe} wrote no report (exit {out.returncode}):\n{out.stderr[-3000:]}")
    report = json.loads(report_path.read_text())
    return {"process_seconds": seconds, "pipeline_seconds": report["wall_seconds"], "exit_code": out.returncode,
            "stage_counts": report.get("stage_counts", {})}


def run(*, recipe: Path, workdir: Path, repeats: int) -> dict:
    cold, cached = [], []
    for i in range(repeats + 1):  # the first pair is the warm-up (page cache, numba cache, corpus on disk)
        workspace = workdir / "bench6_workspace"
        shutil.rmtree(workspace, ignore_errors=True)
        first = _porter_run(recipe, workspace)
        again = _porter_run(recipe, workspace)
        if again["stage_counts"].get("computed", 0):
            raise RuntimeError(f"the re-run computed stages again: {again['stage_counts']}")
        if i:
            cold.append(first)
            cached.append(again)
    shutil.rmtree(workdir / "bench6_workspace", ignore_errors=True)
    result = {"recipe": str(recipe)}
    for key in ("process_seconds", "pipeline_seconds"):
        c = of_values([r[key] for r in cold], "s")
        w = of_values([r[key] for r in cached], "s")
        result[key] = {"cold": c.as_dict(), "cached": w.as_dict(), "cached_fraction": ratio(w.median, c.median)}
    result["exit_codes"] = sorted({r["exit_code"] for r in cold + cached})
    result["stage_counts_cold"] = cold[-1]["stage_counts"]
    result["goal"] = "cached <= 5 % of cold"
    return result


def summary(r: dict) -> list[str]:
    p, q = r["pipeline_seconds"], r["process_seconds"]
    return [
        f"bench 6: {Path(r['recipe']).name}: cold {p['cold']['median']:.1f} s, cached {p['cached']['median']:.2f} s "
        f"in the pipeline = {100 * p['cached_fraction']:.1f} % (goal <= 5 %); whole `porter run` process: "
        f"cold {q['cold']['median']:.1f} s, cached {q['cached']['median']:.1f} s = {100 * q['cached_fraction']:.1f} %",
    ]


__all__ = ["run", "summary"]
