"""The Dask executor against real scheduler and worker processes on 127.0.0.1.

Select with ``-m distributed``. The recipe: a framework reference plus four ONNX Runtime variants of the MLP test
model; the resource test plugin makes compile stages need ``builder`` and run stages need ``runner``.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from porter.pipeline import run_recipe

pytestmark = pytest.mark.distributed

# how long a stage may wait with no worker offering its resource in the test that removes the last one
RESOURCE_TIMEOUT_S = 4
# distinct stage nodes in the recipe: preprocess, export, 4 × (compile, run, score), run_reference, score
STAGES = 16


def _run_outputs(workspace: Path, report) -> dict[str, str]:
    """variant → sha256 over its run stage's output files (everything but artifact.json, which holds timings)."""
    out = {}
    for v in report.variants:
        rec = next(s for s in v.stages if s.stage in ("run", "run_reference"))
        folder = workspace / "artifacts" / rec.stage / rec.key
        h = hashlib.sha256()
        for p in sorted(folder.rglob("*")):
            if p.is_file() and p.name != "artifact.json":
                h.update(p.relative_to(folder).as_posix().encode() + b"\0" + p.read_bytes())
        out[v.name] = h.hexdigest()
    return out


def assert_same_report(dist, dist_ws: Path, local, local_ws: Path) -> None:
    assert [v.name for v in dist.variants] == [v.name for v in local.variants]
    for d, loc in zip(dist.variants, local.variants):
        assert d.status == loc.status == "ok", (d.name, d.message)
        assert d.metrics == loc.metrics, d.name
        assert d.artifacts == loc.artifacts and d.artifacts, d.name  # export and compile file digests
        assert [(s.id, s.hypothesis) for s in d.samples] == [(s.id, s.hypothesis) for s in loc.samples]
        assert [s.key for s in d.stages] == [s.key for s in loc.stages]
    assert _run_outputs(dist_ws, dist) == _run_outputs(local_ws, local)


def _records(report, stage: str):
    seen = {}
    for v in report.variants:
        for s in v.stages:
            if s.stage == stage:
                seen[s.key] = s
    return list(seen.values())


def _kill_when_stalled(cluster, names: tuple[str, ...], killed: dict) -> threading.Thread:
    """Kill (SIGKILL) whichever of ``names`` claims the stall marker, as soon as it does."""
    stall_dir = Path(cluster.env["PORTER_TEST_STALL_DIR"])
    (stall_dir / "stall-run").write_text("120")  # seconds: longer than the test waits, so only a kill ends it
    pids = {cluster.pid(n): n for n in names}

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for claimed in stall_dir.glob("stalled-*"):
                pid = int(claimed.name.split("-", 1)[1])
                if pid in pids:
                    cluster.kill(pids[pid])
                    killed.update(name=pids[pid], at=time.monotonic())
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_variants_spread_by_resource_and_report_equals_local(project, local_reference, spread_cluster):
    ws = project.workspace("spread")
    report = run_recipe(project.recipe, workspace=ws, executor="dask", address=spread_cluster.scheduler_address)
    assert report.executor == "dask"
    assert_same_report(report, ws, local_reference, project.workspace("local"))

    build, run = spread_cluster.addresses["w-build"], spread_cluster.addresses["w-run"]
    compiles, runs = _records(report, "compile"), _records(report, "run")
    assert len(compiles) == len(runs) == 4
    assert {r.worker for r in compiles} == {build}  # only w-build offers "builder"
    assert {r.worker for r in runs} == {run}  # only w-run offers "runner"
    for rec in (r for v in report.variants for r in v.stages):
        assert not rec.cache_hit and rec.worker in (build, run)
        assert 0 <= rec.waited_seconds < 60 and rec.seconds > 0
        assert rec.extra["task_seconds"] >= rec.seconds
    assert report.stage_counts == {"computed": STAGES, "cached": 0, "skipped": 0, "failed": 0}

    # one cache: the in-process executor finds every stage the cluster computed, and vice versa
    again = run_recipe(project.recipe, workspace=ws, executor="local")
    assert again.stage_counts["computed"] == 0 and again.stage_counts["cached"] == STAGES
    local_ws = project.workspace("local")
    resumed = run_recipe(project.recipe, workspace=local_ws, executor="dask", address=spread_cluster.scheduler_address)
    assert resumed.stage_counts["computed"] == 0
    assert_same_report(resumed, local_ws, local_reference, local_ws)


def test_a_stage_no_worker_can_host_fails_fast_naming_the_resource(project, spread_cluster, monkeypatch, capsys):
    from porter.cli.main import main

    monkeypatch.setenv("PORTER_TEST_STAGE_RESOURCES", "compile:builder=1;run:ascend310=1")
    ws = project.workspace("no-ascend")
    t0 = time.monotonic()
    code = main(["run", str(project.recipe), "--executor", "dask", "--address", spread_cluster.scheduler_address,
                 "--workspace", str(ws)])
    elapsed = time.monotonic() - t0
    err = capsys.readouterr().err
    assert code == 4, err  # ResourceUnavailableError: like a missing vendor tool
    assert "needs resource 'ascend310'" in err and "stage 'run'" in err
    assert "builder=1" in err and "runner=1" in err  # what the workers do offer
    assert elapsed < 20
    assert not (ws / "artifacts").exists()  # nothing was submitted


def _default_sigint() -> None:
    """A shell without job control starts background jobs with SIGINT ignored, and Python then never turns SIGINT
    into KeyboardInterrupt: the driver must get the default disposition whatever this test run inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_interrupted_driver_leaves_no_partial_artifact_and_a_rerun_resumes(project, local_reference,
                                                                         spread_cluster):
    stall_dir = Path(spread_cluster.env["PORTER_TEST_STALL_DIR"])
    (stall_dir / "stall-run").write_text("3")  # the stalled run stage finishes 3 s later, driver or not
    ws = project.workspace("interrupted")
    driver = subprocess.Popen(
        [sys.executable, "-m", "porter.cli.main", "run", str(project.recipe), "--executor", "dask", "--address",
         spread_cluster.scheduler_address, "--workspace", str(ws), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
        preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 60
        while not any(stall_dir.glob("stalled-*")) and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any(stall_dir.glob("stalled-*")), "no run stage stalled"
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
    assert driver.returncode == 130, err
    assert "interrupted" in err
    # everything renamed into place is whole; the stage that was running has only a temporary work directory
    finals = [d for d in (ws / "artifacts").glob("*/*") if not d.name.startswith(".")]
    assert finals and all((d / "artifact.json").is_file() for d in finals)
    assert not any((d / "partial-output.bin").exists() for d in finals)

    resumed = run_recipe(project.recipe, workspace=ws, executor="dask", address=spread_cluster.scheduler_address)
    assert resumed.stage_counts["cached"] >= len(finals) + 1  # and the stage that was running when interrupted
    assert any(s.cache_hit for s in _records(resumed, "run"))
    assert_same_report(resumed, ws, local_reference, project.workspace("local"))


@pytest.mark.slow
def test_worker_killed_mid_stage_is_retried_on_another_and_report_is_unchanged(project, local_reference,
                                                                               dask_cluster):
    cluster = dask_cluster({"w-a": "builder=1 runner=1", "w-b": "builder=1 runner=1"})
    killed: dict = {}
    watcher = _kill_when_stalled(cluster, ("w-a", "w-b"), killed)
    ws = project.workspace("killed")
    report = run_recipe(project.recipe, workspace=ws, executor="dask", address=cluster.scheduler_address)
    watcher.join(timeout=5)
    assert killed, "no run stage stalled, so no worker was killed"
    survivor = cluster.addresses[({"w-a", "w-b"} - {killed["name"]}).pop()]
    assert {r.worker for r in _records(report, "run")} == {survivor}
    assert_same_report(report, ws, local_reference, project.workspace("local"))
    # the killed stage's work directory was never renamed into place; its retry committed a clean one
    run_dir = ws / "artifacts" / "run"
    leftovers = [p for p in run_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers and all((p / "partial-output.bin").exists() and not (p / "artifact.json").exists()
                             for p in leftovers)
    assert not any(run_dir.glob("[!.]*/partial-output.bin"))


@pytest.mark.slow
def test_retries_on_worker_loss_are_bounded(project, dask_cluster):
    from porter.exec.dask import ClusterError

    # the scheduler's allowed-failures bounds how many worker deaths one task may cause; 0: the first one fails it
    cluster = dask_cluster({"w-a": "builder=1 runner=1", "w-b": "builder=1 runner=1"},
                           env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"})
    killed: dict = {}
    watcher = _kill_when_stalled(cluster, ("w-a", "w-b"), killed)
    with pytest.raises(ClusterError) as err:
        run_recipe(project.recipe, workspace=project.workspace("bounded"), executor="dask",
                   address=cluster.scheduler_address)
    watcher.join(timeout=5)
    assert killed
    message = str(err.value)
    # the stalled run stage, or a stage queued behind it on the same worker: each counts the death against it
    assert "stage '" in message and "died while it ran or waited there, 1 time " in message
    assert cluster.addresses[killed["name"]] in message and "allowed-failures" in message


@pytest.mark.slow
def test_last_worker_with_a_resource_lost_fails_within_timeout_and_rerun_resumes(project, local_reference,
                                                                                 dask_cluster, monkeypatch):
    from porter.exec.dask import ResourceUnavailableError

    monkeypatch.setenv("PORTER_DASK_RESOURCE_TIMEOUT", str(RESOURCE_TIMEOUT_S))
    cluster = dask_cluster({"w-a": "builder=1 runner=1", "w-b": "builder=1"})
    killed: dict = {}
    watcher = _kill_when_stalled(cluster, ("w-a",), killed)
    ws = project.workspace("no-runner-left")
    with pytest.raises(ResourceUnavailableError) as err:
        run_recipe(project.recipe, workspace=ws, executor="dask", address=cluster.scheduler_address)
    failed_at = time.monotonic()
    watcher.join(timeout=5)
    assert killed.get("name") == "w-a"
    assert "needs resource 'runner'" in str(err.value) and "stage 'run'" in str(err.value)
    assert failed_at - killed["at"] < RESOURCE_TIMEOUT_S + 10
    # nothing half-written is trusted; the next run (here in-process) computes only what is missing
    resumed = run_recipe(project.recipe, workspace=ws, executor="local")
    hits = {(s.stage, s.key): s.cache_hit for v in resumed.variants for s in v.stages}
    assert hits[next((st, k) for st, k in hits if st == "export")]  # finished before the kill: reused
    assert not any(hit for (st, _), hit in hits.items() if st == "run")  # the only runner died in the first
    assert resumed.stage_counts["computed"] + resumed.stage_counts["cached"] == STAGES
    assert not any((ws / "artifacts" / "run").glob(".tmp-*"))  # the sweep removed the killed stage's leftovers
    assert_same_report(resumed, ws, local_reference, project.workspace("local"))


@pytest.mark.slow
def test_local_cluster_binds_loopback_only_and_matches_in_process(project, local_reference, monkeypatch,
                                                                  listening_hosts):
    import psutil

    monkeypatch.setenv("PORTER_TEST_STAGE_RESOURCES", "")  # a local cluster's workers offer no resources
    seen_hosts: set[str] = set()

    def look_at_the_cluster(node, variant):  # called on the driver while the cluster is up
        if not seen_hosts:
            me = psutil.Process()
            for proc in [me, *me.children(recursive=True)]:
                seen_hosts.update(listening_hosts(proc))

    ws = project.workspace("local-cluster")
    report = run_recipe(project.recipe, workspace=ws, executor="dask", variants=("torch", "ort_all"),
                        progress=look_at_the_cluster)
    assert seen_hosts == {"127.0.0.1"}
    assert report.executor == "dask"
    workers = {s.worker for v in report.variants for s in v.stages}
    assert len(workers) >= 1 and all(w.startswith("tcp://127.0.0.1:") for w in workers)
    local = {v.name: (v.metrics, v.artifacts) for v in local_reference.variants if v.name in ("torch", "ort_all")}
    assert {v.name: (v.metrics, v.artifacts) for v in report.variants} == local


# ------------------------------------------------------------------------------------------------ no cluster needed

def test_worker_refuses_a_plugin_set_that_differs_from_the_drivers(project, monkeypatch):
    from porter.errors import InputError
    from porter.exec.dask import WorkerPlugins, worker_plugin_set
    from porter.plugins import load_plugins

    monkeypatch.syspath_prepend(str(project.root))
    spec = WorkerPlugins.from_plugin_set(load_plugins(("mlp_porter",)), extra_roots=(project.root,))
    assert "mlp_porter" in spec.modules and str(project.root) in spec.import_roots
    drifted = WorkerPlugins(spec.entry_points, spec.modules, spec.import_roots,
                            tuple((n, "9.9" if n == "mlp_porter" else v) for n, v in spec.expected))
    with pytest.raises(InputError, match=r"mlp_porter.*9\.9|9\.9.*mlp_porter"):
        worker_plugin_set(drifted)
    plugins, _ = worker_plugin_set(spec)
    assert plugins.registry.get("models", "mlp") is not None


def test_in_process_plugin_objects_cannot_be_shipped_to_workers():
    from porter.errors import InputError
    from porter.exec.dask import WorkerPlugins
    from porter.plugins import load_plugins

    class Inline:
        pass

    with pytest.raises(InputError, match="in-process object"):
        WorkerPlugins.from_plugin_set(load_plugins(extra_objects=[("inline", Inline())]))


def test_resource_needs_merge_by_maximum_and_placement_names_what_is_lacking():
    from porter import hookimpl
    from porter.errors import InputError
    from porter.exec.dask import missing_resources, stage_resources
    from porter.plan import StageNode
    from porter.plugins import load_plugins
    from porter.specs import TargetConfig

    class Builds:
        @hookimpl
        def porter_stage_resources(self, stage, target):
            return {"atc": 1, "memory_gb": 8} if stage == "compile" and target.name == "t" else None

    class NeedsMore:
        @hookimpl
        def porter_stage_resources(self, stage, target):
            return {"memory_gb": 16} if stage == "compile" else None

    plugins = load_plugins(extra_objects=[("builds", Builds()), ("more", NeedsMore())], use_entry_points=False)
    compile_node = StageNode("k1", "compile", "builds", TargetConfig("t", {}))
    assert stage_resources(plugins, compile_node) == {"atc": 1.0, "memory_gb": 16.0}
    assert stage_resources(plugins, StageNode("k2", "score", "builds", None)) == {}

    class Bad:
        @hookimpl
        def porter_stage_resources(self, stage, target):
            return {"atc": -1}

    bad = load_plugins(extra_objects=[("bad", Bad())], use_entry_points=False)
    with pytest.raises(InputError, match="positive number"):
        stage_resources(bad, compile_node)

    offered = {"tcp://a": {"atc": 1.0}, "tcp://b": {"ascend310": 1.0, "cpu": 4.0}}
    assert missing_resources({}, offered) is None
    assert missing_resources({"atc": 1}, offered) is None
    assert missing_resources({"cpu": 2, "ascend310": 1}, offered) is None
    assert missing_resources({"atc": 1, "ascend310": 1}, offered) in (["ascend310"], ["atc"])  # no single host
    assert missing_resources({"cpu": 8}, offered) == ["cpu"]
    assert missing_resources({"atc": 1}, {}) == ["atc"]
    assert missing_resources({}, {}) == []
