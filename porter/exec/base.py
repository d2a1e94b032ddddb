"""What every executor shares: the result of a node, the settling of nodes that need no stage, the protocol."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from porter.errors import ToolMissingError
from porter.plan import Plan, StageNode
from porter.stages import StageRecord, cached_node
from porter.workspace import Workspace

if TYPE_CHECKING:
    from porter.plugins import PluginSet

# called with each node as it starts (or is read from the cache), and its variant's name
Progress = Callable[[StageNode, "str | None"], None]


@dataclass
class NodeResult:
    value: Any  # the artifact, or None when the node was skipped or failed
    record: StageRecord


class Executor(Protocol):
    """Runs a Plan's nodes in dependency order and returns each node's result by key."""

    name: str

    def execute(self, plan: Plan, plugins: PluginSet, workspace: Workspace, *,
                force_stages: frozenset[str] = frozenset(), force_all: bool = False,
                progress: Progress | None = None) -> dict[str, NodeResult]: ...


def variant_of(plan: Plan, key: str) -> str | None:
    return next((p.variant.name for p in plan.paths if key in p.keys), None)


def blocked_result(node: StageNode, results: dict[str, NodeResult]) -> NodeResult | None:
    """A skipped/failed result for ``node`` when one of its inputs did not produce an artifact."""
    for key in node.inputs.values():
        up = results.get(key)
        if up is not None and up.value is None:
            return NodeResult(None, StageRecord(node.key, node.stage, node.plugin, node.label, False,
                                                status=up.record.status, message=up.record.message))
    return None


def failure_result(node: StageNode, exc: Exception) -> NodeResult:
    status = "skipped" if isinstance(exc, ToolMissingError) else "failed"
    return NodeResult(None, StageRecord(node.key, node.stage, node.plugin, node.label, False,
                                        status=status, message=str(exc)))


def settled_result(node: StageNode, plan: Plan, results: dict[str, NodeResult], workspace: Workspace, *,
                   forced: bool, progress: Progress | None) -> NodeResult | None:
    """The result of a node that needs no stage run, or None: blocked by an input that produced nothing, or
    (unless forced) stored in the workspace. Every executor settles nodes here, in the driving process, so a
    cached node costs one workspace lookup wherever the plan runs."""
    blocked = blocked_result(node, results)
    if blocked is not None:
        return blocked
    if forced:
        return None
    hit = cached_node(node, workspace, worker=socket.gethostname(), waited=0.0)
    if hit is None:
        return None
    if progress:
        progress(node, variant_of(plan, node.key))
    return NodeResult(*hit)
