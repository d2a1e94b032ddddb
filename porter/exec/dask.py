"""Running a Plan's stage nodes as Dask tasks on a cluster (or a loopback LocalCluster).

The executor runs exactly the Plan the in-process executor runs. Nodes already in the workspace are resolved on
the driver and never submitted; every other node becomes one Dask task that depends on its upstream tasks. A task
calls :func:`porter.stages.run_node` inside the worker, so cache keys, atomic commits and per-key locks are the
local runner's: a local run and a distributed run share one cache. Artifacts travel through the workspace folder,
which every worker must see at the same path (a shared file system); only the small artifact dataclasses travel
through Dask.

Placement: each node's needs come from the ``porter_stage_resources`` hook and become Dask worker resources, so
``dask worker --resources "atc=1"`` hosts receive only the stages that need ``atc``. A node whose resources no
connected worker offers fails before anything is submitted; one whose workers all leave mid-run fails after
``resource_timeout`` seconds instead of waiting forever.

Faults: a worker lost mid-stage makes the scheduler run the task again elsewhere (bounded by the scheduler's
``allowed-failures``); exceptions that escape a stage (a flaky shared file system) are retried ``retries`` times.
Re-running a stage is safe: the per-key lock and the atomic rename mean a stage is either committed once or not
at all.

Failures mirror the local executor: a missing tool skips the variant, a stage error fails it, an input error
stops the run. A stage's ``porter_stage_error`` hook runs in the worker that ran it. Errors of the cluster itself:
:class:`ResourceUnavailableError` (exit code 4, like a missing vendor tool) when no worker offers what a stage
needs, :class:`ClusterError` (exit code 1) for an unreachable scheduler, no workers, a workspace workers cannot see,
or a task that keeps killing its workers; a worker whose plugins differ from the driver's is an InputError (exit
code 2), since plugin versions are part of every cache key. Dask ships pickled code between the driver and the
workers: run it only on a network and cluster you trust.

Environment:
- ``PORTER_DASK_RESOURCE_TIMEOUT``: seconds a task may wait with no worker offering its resources (default 60).
- ``PORTER_DASK_CONNECT_TIMEOUT``: seconds to reach the scheduler and see a first worker (default 30).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import dask
import distributed
from distributed import Client, LocalCluster
from distributed.scheduler import KilledWorker

from porter.errors import EXIT_FAILURE, EXIT_TOOL_MISSING, InputError, PorterError, StageError, ToolMissingError
from porter.exec.base import NodeResult, Progress, blocked_result, failure_result, settled_result, variant_of
from porter.fsutil import atomic_write_text
from porter.plan import Plan, StageNode
from porter.plugins import PluginSet, load_plugins
from porter.stages import run_node
from porter.workspace import Workspace

DEFAULT_RESOURCE_TIMEOUT_S = 60.0
DEFAULT_CONNECT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 2
# worker deaths a task may cause before the scheduler gives up on it (local clusters; a remote scheduler uses its
# own ``distributed.scheduler.allowed-failures``)
LOCAL_ALLOWED_FAILURES = 2
POLL_S = 0.5
TARGET_STAGES = ("compile", "run")


class ResourceUnavailableError(PorterError):
    """No connected Dask worker offers a resource a stage needs. Exit code 4, like a missing vendor tool."""

    exit_code = EXIT_TOOL_MISSING


class ClusterError(PorterError):
    """The cluster could not run the plan: scheduler unreachable, no workers, a task that kept killing workers."""

    exit_code = EXIT_FAILURE


# ------------------------------------------------------------------------------------------------ plugins

@dataclass(frozen=True)
class WorkerPlugins:
    """What a worker needs to build the driver's plugin set, and what it must end up with."""

    entry_points: tuple[str, ...]  # entry-point plugins the driver loaded (PORTER_PLUGINS is set to these)
    modules: tuple[str, ...]  # recipe-named plugin modules
    import_roots: tuple[str, ...]  # folders that make the recipe modules importable (the recipe's folder)
    expected: tuple[tuple[str, str], ...]  # (plugin name, version) of every plugin the driver loaded

    @classmethod
    def from_plugin_set(cls, plugins: PluginSet, extra_roots=()) -> "WorkerPlugins":
        entry_points, modules, roots = [], [], [str(Path(r).resolve()) for r in extra_roots]
        for info in plugins.infos:
            if info.source.startswith("entry point"):
                entry_points.append(info.name)
            elif info.source == "recipe":
                modules.append(info.module)
                root = _import_root(info.module)
                if root and root not in roots:
                    roots.append(root)
            elif info.source != "builtin":
                raise InputError(
                    f"plugin {info.name!r} was registered as an in-process object ({info.module}); the dask "
                    "executor rebuilds plugins in each worker by module name, so name its module in the recipe's "
                    "plugins list instead", field="executor")
        expected = tuple(sorted((i.name, i.version) for i in plugins.infos))
        return cls(tuple(entry_points), tuple(modules), tuple(roots), expected)


def _import_root(module_name: str) -> str | None:
    """The sys.path entry that made ``module_name`` importable on the driver (e.g. the recipe's folder)."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parent
    if Path(file).name == "__init__.py":
        root = root.parent
    for _ in range(module_name.count(".")):
        root = root.parent
    return str(root)


_WORKER_PLUGINS: dict[WorkerPlugins, PluginSet] = {}
_WORKER_PLUGINS_LOCK = threading.Lock()


def worker_plugin_set(spec: WorkerPlugins) -> tuple[PluginSet, float]:
    """This worker process's PluginSet for ``spec`` (built once, then cached) and the seconds building it took."""
    with _WORKER_PLUGINS_LOCK:
        cached = _WORKER_PLUGINS.get(spec)
        if cached is not None:
            return cached, 0.0
        t0 = time.perf_counter()
        for root in spec.import_roots:
            if root not in sys.path:
                sys.path.insert(0, root)
        # the worker loads exactly the entry-point plugins the driver loaded, whatever its own environment says
        saved = {name: os.environ.get(name) for name in ("PORTER_PLUGINS", "PORTER_DISABLE_PLUGINS")}
        os.environ["PORTER_PLUGINS"] = ",".join(spec.entry_points)
        os.environ.pop("PORTER_DISABLE_PLUGINS", None)
        try:
            plugins = load_plugins(spec.modules)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        got = tuple(sorted((i.name, i.version) for i in plugins.infos))
        if got != spec.expected:
            missing = sorted(set(spec.expected) - set(got))
            extra = sorted(set(got) - set(spec.expected))
            raise InputError(
                f"worker {_worker_name()} does not load the driver's plugins: missing or other version "
                f"{missing}, unexpected {extra}; install the same porter plugins (same versions) on every worker, "
                "since a plugin's version is part of every cache key", field="executor")
        _WORKER_PLUGINS[spec] = plugins
        return plugins, time.perf_counter() - t0


def _worker_name() -> str:
    try:
        return distributed.get_worker().address
    except ValueError:  # not inside a worker (a task run on the driver by a test)
        import socket

        return socket.gethostname()


# ------------------------------------------------------------------------------------------------ the task

@dataclass
class TaskOutcome:
    """What a stage task hands back: the node's result, when it finished, and an input error to raise."""

    result: NodeResult
    finished_at: float  # wall clock on the worker, so a dependent task can tell how long it waited to start
    input_error: str = ""


def run_stage_task(node: StageNode, upstream: Mapping[str, object], *, workspace_root: str,
                   worker_plugins: WorkerPlugins, force: bool, variant: str | None,
                   submitted_at: float) -> TaskOutcome:
    """Run one stage node in a Dask worker. ``upstream`` maps each input role to a TaskOutcome or NodeResult."""
    task_started = time.time()
    by_key: dict[str, NodeResult] = {}
    ready_at = submitted_at  # the moment the task could have started: submitted and every input finished
    for role, key in node.inputs.items():
        up = upstream[role]
        if isinstance(up, TaskOutcome):
            ready_at = max(ready_at, up.finished_at)
            up = up.result
        assert isinstance(up, NodeResult), up
        by_key[key] = up
    blocked = blocked_result(node, by_key)
    if blocked is not None:
        return TaskOutcome(blocked, time.time())
    try:
        plugins, load_seconds = worker_plugin_set(worker_plugins)
        node_started = time.perf_counter()
        value, record = run_node(node, {role: by_key[key].value for role, key in node.inputs.items()}, plugins,
                                 Workspace(Path(workspace_root)), force=force, variant=variant,
                                 submitted_at=ready_at)
    except InputError as exc:
        return TaskOutcome(failure_result(node, exc), time.time(), input_error=str(exc))
    except (ToolMissingError, StageError) as exc:
        # StageError does not survive pickling (keyword-only constructor): only its message travels
        return TaskOutcome(failure_result(node, exc), time.time())
    node_seconds = time.perf_counter() - node_started
    finished = time.time()
    record.worker = _worker_name()
    record.waited_seconds = max(0.0, task_started - ready_at)
    task_seconds = finished - task_started
    record.extra = {
        **record.extra, "task_seconds": task_seconds, "plugin_load_seconds": load_seconds,
        # what being a Dask task added: the blocked-input check and the plugin set (built once per worker)
        "task_overhead_seconds": max(0.0, task_seconds - node_seconds),
        # run_node's own cost beyond the stage (lock, fsync'ed commit, artifact digest): paid in-process too
        "bookkeeping_seconds": max(0.0, node_seconds - (0.0 if record.cache_hit else record.seconds)),
    }
    return TaskOutcome(NodeResult(value, record), finished)


# ------------------------------------------------------------------------------------------------ placement

def stage_resources(plugins: PluginSet, node: StageNode) -> dict[str, float]:
    """The Dask resources ``node`` needs: the plugins' ``porter_stage_resources`` answers, merged by maximum."""
    target = node.config if node.stage in TARGET_STAGES else None
    merged: dict[str, float] = {}
    for answer in plugins.hook.porter_stage_resources(stage=node.stage, target=target):
        if answer is None:
            continue
        if not isinstance(answer, Mapping) or not all(
                isinstance(k, str) and k and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                for k, v in answer.items()):
            raise InputError(f"a plugin's porter_stage_resources returned {answer!r} for stage {node.stage!r}: "
                             "expected a dict of resource name → positive number", field="executor")
        for name, amount in answer.items():
            merged[name] = max(merged.get(name, 0.0), float(amount))
    return merged


def offered_resources(client: Client) -> dict[str, dict[str, float]]:
    """Worker address → the resources it offers (empty for workers started without ``--resources``)."""
    workers = client.scheduler_info(n_workers=-1)["workers"]
    return {addr: dict(info.get("resources") or {}) for addr, info in workers.items()}


def missing_resources(needs: Mapping[str, float], offered: Mapping[str, Mapping[str, float]]) -> list[str] | None:
    """None when one worker offers everything ``needs`` asks for, else the resources the best worker lacks
    (an empty list: no worker is connected at all)."""
    if not offered:
        return sorted(needs)
    best: list[str] | None = None
    for resources in offered.values():
        lacking = sorted(n for n, amount in needs.items() if resources.get(n, 0.0) < amount)
        if not lacking:
            return None
        if best is None or len(lacking) < len(best):
            best = lacking
    return best


def _describe_offers(offered: Mapping[str, Mapping[str, float]]) -> str:
    if not offered:
        return "no worker is connected"
    parts = [f"{addr} offers {', '.join(f'{k}={v:g}' for k, v in sorted(res.items())) or 'no resources'}"
             for addr, res in sorted(offered.items())]
    return "; ".join(parts)


def _describe_node(plan: Plan, node: StageNode) -> str:
    variant = variant_of(plan, node.key)
    return f"stage {node.stage!r} ({node.label}{', variant ' + repr(variant) if variant else ''})"


# ------------------------------------------------------------------------------------------------ executor

@dataclass
class _Submitted:
    node: StageNode
    future: distributed.Future
    needs: dict[str, float]
    stalled_since: float | None = None


@dataclass
class DaskExecutor:
    """Runs a Plan on a Dask cluster: ``address`` is a scheduler address (``tcp://host:8786``) or a scheduler
    file (``*.json``); None starts a LocalCluster of ``local_workers`` single-threaded processes on 127.0.0.1."""

    address: str | None = None
    resource_timeout: float | None = None
    connect_timeout: float | None = None
    retries: int = DEFAULT_RETRIES
    local_workers: int = 2
    # folders workers must put on sys.path besides the recipe modules' own (e.g. the recipe's folder)
    plugin_paths: tuple = ()
    name: str = field(default="dask", init=False)

    def __post_init__(self):
        if self.resource_timeout is None:
            self.resource_timeout = _env_seconds("PORTER_DASK_RESOURCE_TIMEOUT", DEFAULT_RESOURCE_TIMEOUT_S)
        if self.connect_timeout is None:
            self.connect_timeout = _env_seconds("PORTER_DASK_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT_S)

    # -------------------------------------------------------------------------------------------- public

    def execute(self, plan: Plan, plugins: PluginSet, workspace: Workspace, *,
                force_stages: frozenset[str] = frozenset(), force_all: bool = False,
                progress: Progress | None = None) -> dict[str, NodeResult]:
        worker_plugins = WorkerPlugins.from_plugin_set(plugins, self.plugin_paths)
        needs = {key: stage_resources(plugins, node) for key, node in plan.nodes.items()}
        results: dict[str, NodeResult] = {}
        to_submit: list[StageNode] = []
        submitted_keys: set[str] = set()
        for node in plan.nodes.values():
            # a node whose inputs are all settled here is settled here when it is blocked or cached, needing no
            # worker; one downstream of a submitted node is submitted too, and its task sees a failed input
            if not (set(node.inputs.values()) & submitted_keys):
                settled = settled_result(node, plan, results, workspace,
                                         forced=force_all or node.stage in force_stages, progress=progress)
                if settled is not None:
                    results[node.key] = settled
                    continue
            to_submit.append(node)
            submitted_keys.add(node.key)
        if not to_submit:
            return results

        with self._client() as client:
            offered = offered_resources(client)
            for node in to_submit:
                lacking = missing_resources(needs[node.key], offered)
                if lacking:
                    wanted = " ".join(f"{n}={needs[node.key][n]:g}" for n in lacking)
                    hint = (f"start a worker that has it (dask worker SCHEDULER --resources \"{wanted}\")"
                            if self.address else
                            "porter's own local cluster offers no resources: start a Dask cluster whose workers "
                            f"have it (--resources \"{wanted}\") and pass its address (--address)")
                    raise ResourceUnavailableError(
                        f"{_describe_node(plan, node)} needs resource {', '.join(map(repr, lacking))} "
                        f"({_format_needs(needs[node.key])}), which no worker of the Dask cluster offers "
                        f"({_describe_offers(offered)}); {hint}")
            self._check_workspace_visible(client, workspace)
            token = uuid.uuid4().hex[:8]
            submitted: dict[str, _Submitted] = {}
            try:
                for node in to_submit:
                    upstream = {role: (submitted[key].future if key in submitted else results[key])
                                for role, key in node.inputs.items()}
                    future = client.submit(
                        run_stage_task, node, upstream,
                        workspace_root=str(workspace.root), worker_plugins=worker_plugins,
                        force=force_all or node.stage in force_stages, variant=variant_of(plan, node.key),
                        submitted_at=time.time(),
                        key=f"porter_{node.stage}-{node.key}-{token}",
                        resources=needs[node.key] or None, retries=self.retries)
                    submitted[node.key] = _Submitted(node, future, needs[node.key])
                self._collect(client, plan, submitted, results, progress)
            finally:
                # an interrupted or failed run leaves nothing queued on a shared cluster; a stage already running
                # finishes or not, and either way commits whole or not at all
                client.cancel([s.future for s in submitted.values()])
        return results

    # -------------------------------------------------------------------------------------------- internals

    @contextlib.contextmanager
    def _client(self) -> Iterator[Client]:
        if self.address is None:
            with dask.config.set({"distributed.scheduler.allowed-failures": LOCAL_ALLOWED_FAILURES}):
                # loopback only, every port chosen by the OS; the scheduler's HTTP server (health, metrics) would
                # otherwise take the fixed port 8787 whenever no dashboard is asked for
                cluster = LocalCluster(n_workers=self.local_workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", scheduler_port=0, dashboard_address="127.0.0.1:0",
                                       worker_dashboard_address=None, silence_logs=logging.ERROR)
            try:
                with Client(cluster) as client:
                    yield client
            finally:
                cluster.close()
            return
        kwargs = {"scheduler_file": self.address} if self.address.endswith(".json") else {"address": self.address}
        try:
            client = Client(**kwargs, timeout=self.connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {self.address} within "
                               f"{self.connect_timeout:g} s: {exc}") from None
        try:
            try:
                client.wait_for_workers(1, timeout=self.connect_timeout)
            except TimeoutError:
                raise ClusterError(f"no Dask worker joined the scheduler at {self.address} within "
                                   f"{self.connect_timeout:g} s") from None
            yield client
        finally:
            client.close()

    def _check_workspace_visible(self, client: Client, workspace: Workspace) -> None:
        """Every worker must see the workspace at the same path: artifacts travel through it."""
        probe = workspace.root / "cluster-probe" / uuid.uuid4().hex
        token = uuid.uuid4().hex
        atomic_write_text(probe, token)
        try:
            seen = client.run(_reads_token, str(probe), token)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        blind = sorted(addr for addr, ok in seen.items() if not ok)
        if blind:
            raise ClusterError(f"the workspace {workspace.root} is not visible from worker(s) {', '.join(blind)}: "
                               "artifacts travel through it, so put it on a file system shared by every host, "
                               "mounted at the same path (--workspace)")

    def _collect(self, client: Client, plan: Plan, submitted: dict[str, _Submitted],
                 results: dict[str, NodeResult], progress) -> None:
        by_future = {s.future.key: s for s in submitted.values()}
        pending = {s.future for s in submitted.values()}
        last_check = 0.0
        while pending:
            try:
                done, pending = distributed.wait(pending, timeout=POLL_S, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for future in done:
                item = by_future[future.key]
                try:
                    outcome: TaskOutcome = future.result()
                except KilledWorker as exc:
                    last = getattr(exc.last_worker, "address", exc.last_worker)
                    deaths = exc.allowed_failures + 1
                    raise ClusterError(
                        f"{_describe_node(plan, item.node)} was on Dask workers that died while it ran or waited "
                        f"there, {deaths} time{'s' if deaths != 1 else ''} (last {last}); the scheduler gave up on "
                        "it (distributed.scheduler.allowed-failures)") from None
                if outcome.input_error:
                    raise InputError(outcome.input_error)
                results[item.node.key] = outcome.result
                if progress:
                    progress(item.node, variant_of(plan, item.node.key))
            now = time.monotonic()
            if pending and now - last_check >= 1.0:
                last_check = now
                self._check_stalls(client, plan, [by_future[f.key] for f in pending], now)

    def _check_stalls(self, client: Client, plan: Plan, waiting: list[_Submitted], now: float) -> None:
        """Fail a task that no live worker could run for ``resource_timeout`` seconds, naming what it lacks."""
        offered = offered_resources(client)
        for item in waiting:
            lacking = missing_resources(item.needs, offered)
            if lacking is None:
                item.stalled_since = None
                continue
            if item.stalled_since is None:
                item.stalled_since = now
            elif now - item.stalled_since > (self.resource_timeout or 0.0):
                if not lacking:
                    raise ClusterError(
                        f"{_describe_node(plan, item.node)} is waiting, and no Dask worker has been connected to "
                        f"the scheduler for {self.resource_timeout:g} s (PORTER_DASK_RESOURCE_TIMEOUT)")
                raise ResourceUnavailableError(
                    f"{_describe_node(plan, item.node)} needs resource {', '.join(map(repr, lacking))} "
                    f"({_format_needs(item.needs)}), and no worker offering it has been connected for "
                    f"{self.resource_timeout:g} s (PORTER_DASK_RESOURCE_TIMEOUT): the workers that had it left the "
                    f"cluster ({_describe_offers(offered)})")


def _reads_token(path: str, token: str) -> bool:
    try:
        return Path(path).read_text(encoding="utf-8") == token
    except OSError:
        return False


def _format_needs(needs: Mapping[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in sorted(needs.items())) or "no resources"


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise InputError(f"expected a positive number of seconds, got {raw!r}", field=name)
    return value
