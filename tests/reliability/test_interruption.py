"""Interrupted and concurrent runs: a SIGKILL mid-stage, then a re-run, gives the uninterrupted report;
two runs on one workspace both finish correctly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _porter(*args, cwd):
    return [sys.executable, "-m", "porter.cli.main", *map(str, args)]


def _recipe(project, **delays):
    stage_delays = {k: v for k, v in delays.items() if k not in ("preprocess", "graph_fix")}
    recipe = project.base_recipe()
    if "graph_fix" in delays:
        recipe["graph_fix"] = [{"name": "slow_identity", "options": {"seconds": delays["graph_fix"]}}]
    recipe["model"]["options"]["delays"] = stage_delays
    recipe["dataset"]["options"]["delay"] = delays.get("preprocess", 0.0)
    return project.write_recipe(recipe)


def _summary(report_path: Path) -> dict:
    report = json.loads(report_path.read_text())
    return {v["name"]: (v["metrics"], {k: d for k, d in v["artifacts"].items()}) for v in report["variants"]}


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("stage", ["preprocess", "export", "graph_fix", "run_reference"])
def test_sigkill_mid_stage_then_rerun_gives_the_same_report(porter_project, tmp_path, stage):
    recipe = _recipe(porter_project, **{stage: 3.0})
    ws = porter_project.root / ".porter" / "mlp_demo"
    env = {**os.environ, "PYTHONPATH": str(porter_project.root), "PORTER_DISABLE_PLUGINS": "deepspeech,ascend310"}
    proc = subprocess.Popen(_porter("run", recipe, cwd=porter_project.root), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        stage_dir = ws / "artifacts" / stage
        assert _wait_for(lambda: stage_dir.is_dir() and any(p.name.startswith(".tmp-") for p in stage_dir.iterdir()))
        time.sleep(0.5)  # inside the stage, with files half-written
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not any((p / "artifact.json").exists() for p in stage_dir.iterdir() if not p.name.startswith("."))
    done = subprocess.run(_porter("run", recipe, cwd=porter_project.root), env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert not any(p.name.startswith(".tmp-") for p in stage_dir.iterdir())
    # an uninterrupted run in a fresh workspace gives the same metrics and artifact digests
    fresh = subprocess.run(_porter("run", recipe, "--workspace", tmp_path / "fresh", cwd=porter_project.root),
                           env=env, capture_output=True, text=True, timeout=240)
    assert fresh.returncode == 0, fresh.stderr
    assert _summary(ws / "report.json") == _summary(tmp_path / "fresh" / "report.json")


def test_two_runs_on_one_workspace_both_finish_correctly(porter_project):
    recipe = _recipe(porter_project, export=1.5, run_reference=1.0)
    env = {**os.environ, "PYTHONPATH": str(porter_project.root), "PORTER_DISABLE_PLUGINS": "deepspeech,ascend310"}
    procs = [subprocess.Popen(_porter("run", recipe, "--out", porter_project.root / f"out{i}",
                                      cwd=porter_project.root), env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    a = _summary(porter_project.root / "out0" / "report.json")
    b = _summary(porter_project.root / "out1" / "report.json")
    assert a == b
    # each stage was computed once: the second process waited on the lock and then read the cache
    counts = [json.loads((porter_project.root / f"out{i}" / "report.json").read_text())["stage_counts"]
              for i in range(2)]
    assert sum(c["computed"] for c in counts) == 7
