"""Executors run a Plan's nodes in dependency order; the in-process one is the default."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from porter.errors import InputError, StageError, ToolMissingError
from porter.plan import Plan, StageNode
from porter.stages import StageRecord, run_node
from porter.workspace import Workspace


@dataclass
class NodeResult:
    value: Any  # the artifact, or None when the node was skipped or failed
    record: StageRecord


def variant_of(plan: Plan, key: str) -> str | None:
    return next((p.variant.name for p in plan.paths if key in p.keys), None)


def blocked_result(node: StageNode, results: dict[str, NodeResult]) -> NodeResult | None:
    """A skipped/failed result for ``node`` when one of its inputs did not produce an artifact."""
    for role, key in node.inputs.items():
        up = results.get(key)
        if up is not None and up.value is None:
            return NodeResult(None, StageRecord(node.key, node.stage, node.plugin, node.label, False,
                                                status=up.record.status, message=up.record.message))
    return None


def failure_result(node: StageNode, exc: Exception) -> NodeResult:
    status = "skipped" if isinstance(exc, ToolMissingError) else "failed"
    return NodeResult(None, StageRecord(node.key, node.stage, node.plugin, node.label, False,
                                        status=status, message=str(exc)))


class LocalExecutor:
    """Runs every node in this process, in plan order."""

    name = "local"

    def execute(self, plan: Plan, plugins, workspace: Workspace, *, force_stages=frozenset(),
                force_all: bool = False, progress=None) -> dict[str, NodeResult]:
        results: dict[str, NodeResult] = {}
        for node in plan.nodes.values():
            blocked = blocked_result(node, results)
            if blocked is not None:
                results[node.key] = blocked
                continue
            upstream = {role: results[key].value for role, key in node.inputs.items()}
            variant = variant_of(plan, node.key)
            if progress:
                progress(node, variant)
            try:
                value, record = run_node(node, upstream, plugins, workspace,
                                         force=force_all or node.stage in force_stages, variant=variant,
                                         submitted_at=time.time())
            except InputError:
                raise
            except (ToolMissingError, StageError) as exc:
                results[node.key] = failure_result(node, exc)
                continue
            results[node.key] = NodeResult(value, record)
        return results


def get_executor(name: str, address: str | None = None):
    if name == "local":
        return LocalExecutor()
    if name == "dask":
        try:
            from porter.dask_executor import DaskExecutor
        except ImportError as exc:
            raise InputError(
                f"the dask executor needs Dask distributed, which is not installed ({exc}); "
                "install it with: pip install -e '.[dask]'", field="executor") from None
        return DaskExecutor(address=address)
    raise InputError(f"unknown executor {name!r} (known: local, dask)", field="executor")
