"""Fixtures for the Dask executor tests: a scheduler and workers as separate processes on 127.0.0.1, a project
folder with the MLP and resource test plugins, and a check that no process outlives its test.

Every folder these fixtures make is removed when they finish, and every process they start is terminated (then
killed) by its process id.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytest.importorskip("distributed")
psutil = pytest.importorskip("psutil")

HERE = Path(__file__).parent
CORE_DIR = HERE.parent / "core"
PLUGIN_MODULES = ("mlp_porter", "resource_plugin")
ORT_LEVELS = ("disable", "basic", "extended", "all")
START_TIMEOUT_S = 60


def _forget_plugin_modules():
    # recipe plugin modules are imported by name: drop them so this project's copies are the ones loaded (and the
    # workers are pointed at this project's folder)
    for name in PLUGIN_MODULES:
        sys.modules.pop(name, None)


@dataclass
class Project:
    root: Path
    recipe: Path

    def workspace(self, name: str) -> Path:
        return self.root / "workspaces" / name


@pytest.fixture(scope="module")
def project():
    root = Path(tempfile.mkdtemp(prefix="porter-dist-"))
    try:
        sys.path.insert(0, str(CORE_DIR))
        try:
            import mlp_porter as trainer
        finally:
            sys.path.remove(str(CORE_DIR))
        checkpoint = root / "mlp.pt"
        trainer.train_checkpoint(checkpoint)
        _forget_plugin_modules()
        shutil.copy(CORE_DIR / "mlp_porter.py", root / "mlp_porter.py")
        shutil.copy(HERE / "resource_plugin.py", root / "resource_plugin.py")
        variants = {"torch": {"reference": True}}
        for level in ORT_LEVELS:
            variants[f"ort_{level}"] = {"target": {"flags": {"graph_optimization_level": level}}}
        recipe = {
            "name": "dist_demo",
            "plugins": list(PLUGIN_MODULES),
            "model": {"name": "mlp", "options": {"checkpoint": str(checkpoint), "hidden": 16}},
            "dataset": {"name": "blobs", "options": {"n": 24}},
            "target": {"name": "onnxruntime", "flags": {"warmup": 1}},
            "metrics": ["error_rate"],
            "variants": variants,
        }
        path = root / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe, sort_keys=False))
        yield Project(root, path)
    finally:
        _forget_plugin_modules()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def local_reference(project):
    """The in-process executor's report for the project's recipe: what every distributed run must equal."""
    from porter.pipeline import run_recipe

    return run_recipe(project.recipe, workspace=project.workspace("local"), executor="local")


# ------------------------------------------------------------------------------------------------ processes

@dataclass
class DaskProcesses:
    """A scheduler and named workers, each its own process, bound to 127.0.0.1."""

    folder: Path
    env: dict
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)  # worker name → address
    scheduler_address: str = ""

    @property
    def scheduler_file(self) -> Path:
        return self.folder / "scheduler.json"

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        try:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.folder,
                                    start_new_session=True)
        finally:
            log.close()
        self.procs[name] = proc
        return proc

    def start(self, workers: dict[str, str]) -> "DaskProcesses":
        """Start the scheduler, then one worker per ``name → resources`` ("" for none); wait for all of them."""
        # this interpreter's dask, so the workers import the same porter as the test (a `dask` script on PATH
        # may belong to another environment with another porter installed)
        dask = [sys.executable, "-m", "dask"]
        # --no-dashboard alone still serves HTTP (health, metrics) on 0.0.0.0: pin that to loopback too
        self._spawn("scheduler", [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--scheduler-file", str(self.scheduler_file), "--no-dashboard",
                                  "--dashboard-address", "127.0.0.1:0",
                                  # a safety net should this test process die without cleaning up: an idle
                                  # scheduler exits, and its workers follow after their death timeout
                                  "--idle-timeout", "300"])
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (address := _scheduler_address(self.scheduler_file)):
            self._check_alive("scheduler")
            if time.monotonic() > deadline:
                raise AssertionError("the Dask scheduler did not start:\n" + self.log("scheduler"))
            time.sleep(0.1)
        self.scheduler_address = address
        assert self.scheduler_address.startswith("tcp://127.0.0.1:")
        for name, resources in workers.items():
            argv = [*dask, "worker", "--scheduler-file", str(self.scheduler_file), "--host", "127.0.0.1",
                    "--nthreads", "1", "--no-nanny", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                    "--name", name, "--death-timeout", "30",
                    "--local-directory", str(self.folder / f"{name}-scratch")]
            if resources:
                argv += ["--resources", resources]
            self._spawn(name, argv)
        self._wait_for_workers(set(workers), deadline)
        listening = self.listening_hosts()
        assert listening == {"127.0.0.1"}, f"a Dask process listens beyond loopback: {listening}"
        return self

    def listening_hosts(self) -> set[str]:
        hosts = set()
        for proc in self.procs.values():
            if proc.poll() is None:
                hosts |= listening_hosts(psutil.Process(proc.pid))
        return hosts

    def _wait_for_workers(self, names: set[str], deadline: float) -> None:
        from distributed import Client

        with Client(scheduler_file=str(self.scheduler_file), timeout=START_TIMEOUT_S) as client:
            while True:
                workers = client.scheduler_info(n_workers=-1)["workers"]
                seen = {str(info["name"]): addr for addr, info in workers.items()}
                if names <= set(seen):
                    self.addresses = {n: seen[n] for n in names}
                    return
                for name in names:
                    self._check_alive(name)
                if time.monotonic() > deadline:
                    raise AssertionError(f"workers {sorted(names - set(seen))} did not join:\n" +
                                         "\n".join(self.log(n) for n in names))
                time.sleep(0.1)

    def _check_alive(self, name: str) -> None:
        if self.procs[name].poll() is not None:
            raise AssertionError(f"{name} exited with {self.procs[name].returncode}:\n{self.log(name)}")

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return f"--- {name} log ---\n" + (path.read_text(errors="replace")[-4000:] if path.exists() else "(none)")

    def close(self) -> None:
        # workers first: a worker told to stop unregisters from the scheduler, and waits for it if it is gone
        workers = [p for name, p in self.procs.items() if name != "scheduler"]
        _stop(workers)
        _stop([p for name, p in self.procs.items() if name == "scheduler"])


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(name="listening_hosts")
def listening_hosts_fixture():
    """``listening_hosts(psutil.Process)`` → the addresses it listens on."""
    return listening_hosts


def listening_hosts(proc) -> set[str]:
    """The local addresses ``proc`` accepts connections on."""
    try:
        return {c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    except psutil.NoSuchProcess:
        return set()


def _scheduler_address(path: Path) -> str | None:
    # Dask writes the scheduler file in place: it can exist and still be empty or half-written
    try:
        return json.loads(path.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None


def _worker_env(folder: Path, stall_dir: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "PORTER_TEST_STALL_DIR": str(stall_dir),
        "TMPDIR": str(folder),  # anything Dask or a plugin writes to a temporary folder lands in ours
        "OMP_NUM_THREADS": "1",
        "NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(Path.home() / ".cache" / "porter-numba")),
    })
    return env


@pytest.fixture
def dask_cluster():
    """A factory: ``dask_cluster({"w-a": "runner=1", ...}, env=None)`` → running DaskProcesses (``env`` adds to the
    processes' environment); all stopped and their folders removed afterwards."""
    made: list[tuple[DaskProcesses, Path]] = []

    def start(workers: dict[str, str], env: dict | None = None) -> DaskProcesses:
        folder = Path(tempfile.mkdtemp(prefix="porter-dask-"))
        stall = folder / "stall"
        stall.mkdir()
        cluster = DaskProcesses(folder, {**_worker_env(folder, stall), **(env or {})})
        made.append((cluster, folder))
        return cluster.start(workers)

    try:
        yield start
    finally:
        for cluster, folder in made:
            try:
                cluster.close()
            finally:
                shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def spread_cluster():
    """A module-wide cluster: one worker that can build (compile) and one that can run."""
    folder = Path(tempfile.mkdtemp(prefix="porter-dask-"))
    stall = folder / "stall"
    stall.mkdir()
    cluster = DaskProcesses(folder, _worker_env(folder, stall))
    try:
        yield cluster.start({"w-build": "builder=1", "w-run": "runner=1"})
    finally:
        try:
            cluster.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ leak check

def _descendants() -> dict[int, str]:
    out = {}
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            cmd = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        # multiprocessing's resource tracker lives as long as this interpreter does, by design
        if "resource_tracker" in cmd:
            continue
        out[child.pid] = cmd
    return out


@pytest.fixture(scope="module", autouse=True)
def no_leaked_processes():
    before = set(_descendants())
    yield
    deadline = time.monotonic() + 15
    while True:
        leaked = {pid: cmd for pid, cmd in _descendants().items() if pid not in before}
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for pid in leaked:
        os.kill(pid, signal.SIGKILL)  # only processes this module's tests started
    assert not leaked, f"processes left running: {leaked}"
