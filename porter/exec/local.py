"""The in-process executor, the default: every node in this process, in plan order."""
from __future__ import annotations

import time

from porter.errors import InputError, StageError, ToolMissingError
from porter.exec.base import NodeResult, Progress, failure_result, settled_result, variant_of
from porter.plan import Plan
from porter.plugins import PluginSet
from porter.stages import run_node
from porter.workspace import Workspace


class LocalExecutor:
    """Runs every node in this process, in plan order."""

    name = "local"

    def execute(self, plan: Plan, plugins: PluginSet, workspace: Workspace, *,
                force_stages: frozenset[str] = frozenset(), force_all: bool = False,
                progress: Progress | None = None) -> dict[str, NodeResult]:
        results: dict[str, NodeResult] = {}
        for node in plan.nodes.values():
            forced = force_all or node.stage in force_stages
            settled = settled_result(node, plan, results, workspace, forced=forced, progress=progress)
            if settled is not None:
                results[node.key] = settled
                continue
            upstream = {role: results[key].value for role, key in node.inputs.items()}
            variant = variant_of(plan, node.key)
            if progress:
                progress(node, variant)
            try:
                value, record = run_node(node, upstream, plugins, workspace, force=forced, variant=variant,
                                         submitted_at=time.time())
            except InputError:
                raise
            except (ToolMissingError, StageError) as exc:
                results[node.key] = failure_result(node, exc)
                continue
            results[node.key] = NodeResult(value, record)
        return results
