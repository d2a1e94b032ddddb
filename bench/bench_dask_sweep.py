#!/usr/bin/env python
"""A sweep of 8 ONNX Runtime variants of the MLP demo model: in-process vs Dask on a local two-worker cluster.

    python bench/bench_dask_sweep.py                  # 3 timed repetitions per mode after one warm-up
    python bench/bench_dask_sweep.py --repeats 1 --samples 50    # a quick check that it works

Three modes, each from an empty workspace, each through the ``porter run`` command in a fresh process:
- in-process: the default executor;
- dask, started per run: ``--executor dask`` with no address, so porter starts and stops a LocalCluster (two
  single-threaded worker processes on 127.0.0.1) inside the run: what a one-off user pays;
- dask, warm cluster: a ``dask scheduler`` and two ``dask worker --nthreads 1`` processes started once, reused by
  every run (``--address``): what a standing cluster pays per sweep. Its first run (cold workers: imports and
  plugin loading) is the warm-up and is not timed.

It prints the wall-time ratios and the per-stage scheduling overhead read back from the Dask runs' reports
(``waited_seconds``: from the moment a stage could start to the moment it started, queueing for a free worker
included; task overhead: the task's time in the worker outside ``run_node``; commit+digest: ``run_node``'s own
cost beyond the stage, paid in-process too), Dask's bare dispatch latency (a chain of trivial dependent tasks),
and writes bench/results/dask_sweep.json. The variants are
graph_optimization_level × quantize (4 × 2), each run single-threaded (intra_op_threads=1) so two workers can
use two cores without oversubscribing them. The MLP's stages take milliseconds, so these figures are the
executor's fixed costs; real stages (atc compiles, device runs) take minutes, next to which they vanish.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from porter.fsutil import atomic_write_text

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
MLP_PLUGIN = REPO / "tests" / "core" / "mlp_porter.py"
LEVELS = ("disable", "basic", "extended", "all")
QUANTIZE = ("none", "int8_dynamic")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode (after one untimed warm-up run)")
    p.add_argument("--samples", type=int, default=200, help="samples in the blobs test set (run-stage work)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "dask_sweep.json")
    p.add_argument("--atc-minutes", type=float, default=5.0,
                   help="assumed atc compile time per variant for the 100-variant estimate (not measurable here)")
    p.add_argument("--device-seconds", type=float, default=130 * 1.41,
                   help="assumed device run time per variant: AN4 test (130 utterances) × 1.41 s per utterance, "
                        "the tuned Ascend 310 figure in the porting notes")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ project

def make_project(root: Path, samples: int) -> Path:
    sys.path.insert(0, str(MLP_PLUGIN.parent))
    try:
        import mlp_porter
    finally:
        sys.path.remove(str(MLP_PLUGIN.parent))
    checkpoint = root / "mlp.pt"
    mlp_porter.train_checkpoint(checkpoint)
    shutil.copy(MLP_PLUGIN, root / "mlp_porter.py")
    variants = {"torch": {"reference": True}}
    for level in LEVELS:
        for quant in QUANTIZE:
            variants[f"ort_{level}_{quant}"] = {"target": {"flags": {"graph_optimization_level": level,
                                                                     "quantize": quant}}}
    recipe = {
        "name": "dask_sweep",
        "plugins": ["mlp_porter"],
        "model": {"name": "mlp", "options": {"checkpoint": str(checkpoint), "hidden": 16}},
        "dataset": {"name": "blobs", "options": {"n": samples}},
        "target": {"name": "onnxruntime", "flags": {"warmup": 2, "intra_op_threads": 1}},
        "metrics": ["error_rate"],
        "variants": variants,
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def porter_run(recipe: Path, workspace: Path, *extra: str) -> dict:
    shutil.rmtree(workspace, ignore_errors=True)
    command = [sys.executable, "-m", "porter.cli.main", "run", str(recipe), "--workspace", str(workspace), "--quiet",
               *extra]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    seconds = time.perf_counter() - started
    report_path = workspace / "report.json"
    if out.returncode != 0 or not report_path.is_file():
        raise RuntimeError(f"porter run {' '.join(extra)} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    report = json.loads(report_path.read_text())
    if report["stage_counts"].get("cached"):
        raise RuntimeError(f"a cold run found cached stages: {report['stage_counts']}")
    return {"process_seconds": seconds, "pipeline_seconds": report["wall_seconds"], "report": report}


# ------------------------------------------------------------------------------------------------ cluster

class TwoWorkerCluster:
    """``dask scheduler`` and two single-threaded ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.procs: list[subprocess.Popen] = []
        self.scheduler_file = folder / "scheduler.json"

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.folder / f"{name}.log", "wb") as log:
            self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                                               env={**os.environ, "TMPDIR": str(self.folder)},
                                               start_new_session=True))

    def __enter__(self) -> "TwoWorkerCluster":
        dask = shutil.which("dask") or "dask"
        started = time.perf_counter()
        # --dashboard-address pins the HTTP server (health, metrics) that --no-dashboard leaves on 0.0.0.0
        loopback_http = ["--no-dashboard", "--dashboard-address", "127.0.0.1:0"]
        self._spawn("scheduler", [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *loopback_http,
                                  "--scheduler-file", str(self.scheduler_file), "--idle-timeout", "600"])
        for i in range(2):
            self._spawn(f"worker{i}", [dask, "worker", "--scheduler-file", str(self.scheduler_file), "--host",
                                       "127.0.0.1", "--nthreads", "1", *loopback_http, "--no-nanny",
                                       "--death-timeout", "60", "--name", f"bench-{i}",
                                       "--local-directory", str(self.folder / f"scratch{i}")])
        from distributed import Client

        deadline = time.monotonic() + 120
        self.address = None
        while not self.address:
            if time.monotonic() > deadline:
                raise RuntimeError("the Dask scheduler did not start")
            time.sleep(0.1)
            try:  # Dask writes the file in place: it may exist and still be empty
                self.address = json.loads(self.scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                pass
        with Client(self.address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        self.start_seconds = time.perf_counter() - started
        return self

    def dispatch_latency(self, hops: int = 40) -> dict:
        """The scheduler's own cost, without porter: one trivial task's round trip, and per hop of a chain of
        dependent trivial tasks (what a stage waits for once its inputs are done)."""
        from distributed import Client

        with Client(self.address, timeout=60) as client:
            round_trips = []
            for _ in range(hops // 2):
                t0 = time.perf_counter()
                client.submit(int, 0, pure=False).result()
                round_trips.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            future = client.submit(int, 0, pure=False)
            for _ in range(hops - 1):
                future = client.submit(int, future, pure=False)
            future.result()
            per_hop = (time.perf_counter() - t0) / hops
        return {"round_trip_median": statistics.median(round_trips), "chain_per_hop": per_hop, "hops": hops}

    def __exit__(self, *exc) -> None:
        # workers first (they unregister from the scheduler on the way out), then the scheduler
        for group in (self.procs[1:], self.procs[:1]):
            for proc in group:
                if proc.poll() is None:
                    proc.terminate()
            for proc in group:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()


# ------------------------------------------------------------------------------------------------ figures

def _quantiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    values = sorted(values)
    return {"n": len(values), "median": statistics.median(values),
            "p90": values[min(len(values) - 1, int(0.9 * len(values)))], "max": values[-1],
            "mean": statistics.fmean(values)}


def stage_overheads(reports: list[dict]) -> dict:
    """Per stage kind, over every computed stage of the Dask runs: waited, task overhead, stage seconds."""
    by_stage: dict[str, dict[str, list[float]]] = {}
    for report in reports:
        seen = set()
        for variant in report["variants"]:
            for s in variant["stages"]:
                if s["cache_hit"] or s["key"] in seen:
                    continue
                seen.add(s["key"])
                d = by_stage.setdefault(s["stage"], {"waited": [], "task_overhead": [], "stage": [],
                                                     "plugin_load": [], "bookkeeping": []})
                d["waited"].append(s["waited_seconds"])
                d["task_overhead"].append(s["extra"].get("task_overhead_seconds", 0.0))
                d["bookkeeping"].append(s["extra"].get("bookkeeping_seconds", 0.0))
                d["plugin_load"].append(s["extra"].get("plugin_load_seconds", 0.0))
                d["stage"].append(s["seconds"])
    return {stage: {k: _quantiles(v) for k, v in d.items()} for stage, d in by_stage.items()}


def stage_seconds(reports: list[dict]) -> dict:
    out: dict[str, list[float]] = {}
    for report in reports:
        seen = set()
        for variant in report["variants"]:
            for s in variant["stages"]:
                if not s["cache_hit"] and s["key"] not in seen:
                    seen.add(s["key"])
                    out.setdefault(s["stage"], []).append(s["seconds"])
    return {k: _quantiles(v) for k, v in out.items()}


def sweep_estimate(variants: int, build_hosts: int, device_hosts: int, compile_s: float, run_s: float,
                   overhead_s: float, shared_s: float = 0.0) -> float:
    """Makespan of a compile → run sweep: a two-stage flow of identical jobs on N build and M device hosts.

    The first variant pays compile + run; after that the slower stage sets the pace, one variant per
    max(compile/N, run/M). Each stage also pays the executor's per-stage overhead.
    """
    c, r = compile_s + overhead_s, run_s + overhead_s
    return shared_s + c + r + (variants - 1) * max(c / build_hosts, r / device_hosts)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "porter-numba"))
    results: dict = {
        "bench": "dask_sweep",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"cores": os.cpu_count(), "load_average_at_start": list(os.getloadavg())},
        "config": {"ort_variants": len(LEVELS) * len(QUANTIZE), "reference_variant": True,
                   "samples": args.samples, "repeats": args.repeats, "workers": 2, "threads_per_worker": 1},
    }
    root = Path(tempfile.mkdtemp(prefix="porter-bench-dask-"))
    try:
        recipe = make_project(root, args.samples)
        modes = {"in_process": lambda ws: porter_run(recipe, ws),
                 "dask_started_per_run": lambda ws: porter_run(recipe, ws, "--executor", "dask")}
        runs: dict[str, list[dict]] = {}
        for mode, fn in modes.items():
            fn(root / f"ws-{mode}")  # warm-up: page cache, imports
            runs[mode] = [fn(root / f"ws-{mode}") for _ in range(args.repeats)]
            print(f"{mode}: {[round(r['pipeline_seconds'], 2) for r in runs[mode]]} s", flush=True)
        cluster_folder = root / "cluster"
        cluster_folder.mkdir()
        with TwoWorkerCluster(cluster_folder) as cluster:
            results["warm_cluster_start_seconds"] = cluster.start_seconds
            results["dask_dispatch_latency"] = cluster.dispatch_latency()
            first = porter_run(recipe, root / "ws-warm", "--executor", "dask", "--address", cluster.address)
            results["warm_cluster_first_run_seconds"] = first["pipeline_seconds"]
            results["cold_worker_plugin_load_seconds"] = sorted(
                {s["worker"]: s["extra"].get("plugin_load_seconds", 0.0)
                 for v in first["report"]["variants"] for s in v["stages"]
                 if s["extra"].get("plugin_load_seconds")}.values())
            runs["dask_warm_cluster"] = [porter_run(recipe, root / "ws-warm", "--executor", "dask", "--address",
                                                    cluster.address) for _ in range(args.repeats)]
            print(f"dask_warm_cluster: {[round(r['pipeline_seconds'], 2) for r in runs['dask_warm_cluster']]} s",
                  flush=True)

        # every mode must produce the same metrics: the executor changes where stages run, not what they compute
        metrics = {mode: [{v["name"]: v["metrics"] for v in r["report"]["variants"]} for r in rs]
                   for mode, rs in runs.items()}
        reference = metrics["in_process"][0]
        results["same_metrics_in_every_run"] = all(m == reference for ms in metrics.values() for m in ms)

        medians = {}
        for mode, rs in runs.items():
            walls = [r["pipeline_seconds"] for r in rs]
            procs = [r["process_seconds"] for r in rs]
            medians[mode] = statistics.median(walls)
            results[mode] = {"pipeline_seconds": walls, "pipeline_median": medians[mode],
                             "process_seconds": procs, "process_median": statistics.median(procs),
                             "stage_counts": rs[-1]["report"]["stage_counts"]}
        results["ratio_dask_started_per_run_vs_in_process"] = medians["dask_started_per_run"] / medians["in_process"]
        results["ratio_dask_warm_cluster_vs_in_process"] = medians["dask_warm_cluster"] / medians["in_process"]
        results["stage_seconds_in_process"] = stage_seconds([r["report"] for r in runs["in_process"]])
        overheads = stage_overheads([r["report"] for r in runs["dask_warm_cluster"]])
        results["dask_warm_cluster_per_stage"] = overheads
        all_waited = [w for r in runs["dask_warm_cluster"] for v in r["report"]["variants"] for s in v["stages"]
                      if not s["cache_hit"] for w in [s["waited_seconds"]]]
        all_task = [s["extra"].get("task_overhead_seconds", 0.0) for r in runs["dask_warm_cluster"]
                    for v in r["report"]["variants"] for s in v["stages"] if not s["cache_hit"]]
        # a stage's fixed cost on a cluster: the scheduler's hop to a dependent task, plus porter's own work in the
        # task beyond the stage (unpickling, the cache lookup, the record). "waited" also holds queueing for a
        # free worker (eight compiles on two workers), so it is reported but not taken as overhead.
        per_stage_overhead = results["dask_dispatch_latency"]["chain_per_hop"] + statistics.median(all_task)
        computed = runs["dask_warm_cluster"][-1]["report"]["stage_counts"]["computed"]
        results["per_stage_overhead_seconds"] = {
            "waited_median": statistics.median(all_waited), "task_overhead_median": statistics.median(all_task),
            "dispatch_per_hop": results["dask_dispatch_latency"]["chain_per_hop"],
            "overhead_per_stage": per_stage_overhead,
            # the whole sweep's extra wall time spread over its stages (driver, client, cluster connection)
            "wall_difference_per_computed_stage": (medians["dask_warm_cluster"] - medians["in_process"]) / computed,
        }

        # the 100-variant atc sweep: assumed stage times (no CANN here), measured executor overhead
        # the larger of the two overhead figures: the per-stage parts, or the whole sweep's extra wall time per stage
        overhead = max(per_stage_overhead, results["per_stage_overhead_seconds"]["wall_difference_per_computed_stage"])
        compile_s, run_s = args.atc_minutes * 60, args.device_seconds
        table = []
        for n, m in ((1, 1), (2, 1), (4, 2), (4, 4), (8, 4), (10, 10)):
            table.append({"build_hosts": n, "device_hosts": m,
                          "hours": sweep_estimate(100, n, m, compile_s, run_s, overhead) / 3600,
                          "hours_without_overhead": sweep_estimate(100, n, m, compile_s, run_s, 0.0) / 3600})
        results["estimate_100_variant_atc_sweep"] = {
            "assumed_compile_seconds": compile_s, "assumed_device_run_seconds": run_s,
            "measured_overhead_seconds_per_stage": overhead,
            "formula": "compile + run + 99 * max(compile/N, run/M), each stage plus the per-stage overhead",
            "table": table,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)

    atomic_write_text(args.out, json.dumps(results, indent=1, sort_keys=True))

    print(f"\nratio, Dask (LocalCluster started per run) / in-process: "
          f"{results['ratio_dask_started_per_run_vs_in_process']:.2f}")
    print(f"ratio, Dask (warm two-worker cluster) / in-process:     "
          f"{results['ratio_dask_warm_cluster_vs_in_process']:.2f}")
    o = results["per_stage_overhead_seconds"]
    lat = results["dask_dispatch_latency"]
    print(f"Dask alone: {lat['round_trip_median'] * 1000:.1f} ms per trivial task round trip, "
          f"{lat['chain_per_hop'] * 1000:.1f} ms per hop of a dependent chain")
    print(f"per-stage overhead (warm cluster): {o['overhead_per_stage'] * 1000:.1f} ms = hop "
          f"{o['dispatch_per_hop'] * 1000:.1f} ms + task overhead {o['task_overhead_median'] * 1000:.1f} ms "
          "(median); "
          f"waited median {o['waited_median'] * 1000:.1f} ms (queueing included); wall difference per computed "
          f"stage {o['wall_difference_per_computed_stage'] * 1000:.1f} ms")
    for stage, d in sorted(results["dask_warm_cluster_per_stage"].items()):
        ms = {k: d[k]["median"] * 1000 for k in ("stage", "waited", "task_overhead", "bookkeeping")}
        print(f"  {stage:14s} stage {ms['stage']:7.1f} ms  waited {ms['waited']:6.1f} ms "
              f"(p90 {d['waited']['p90'] * 1000:6.1f})  task overhead {ms['task_overhead']:4.1f} ms  "
              f"commit+digest {ms['bookkeeping']:5.1f} ms")
    print(f"same metrics in every run: {results['same_metrics_in_every_run']}")
    est = results["estimate_100_variant_atc_sweep"]
    print(f"\n100-variant atc sweep, assuming {est['assumed_compile_seconds'] / 60:.0f} min per compile and "
          f"{est['assumed_device_run_seconds']:.0f} s per device run:")
    for row in est["table"]:
        print(f"  N={row['build_hosts']:2d} build hosts, M={row['device_hosts']:2d} device hosts: "
              f"{row['hours']:.2f} h")
    print(f"wrote {args.out}")
    return 0 if results["same_metrics_in_every_run"] else 1


if __name__ == "__main__":
    sys.exit(main())
