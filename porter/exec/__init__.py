"""Executors run a Plan's nodes in dependency order: :mod:`porter.exec.local` in-process (the default),
:mod:`porter.exec.dask` on a Dask cluster. Both settle blocked and cached nodes through
:func:`porter.exec.base.settled_result` and run the rest through :func:`porter.stages.run_node`."""
from __future__ import annotations

from porter.errors import InputError
from porter.exec.base import Executor, NodeResult
from porter.exec.local import LocalExecutor

EXECUTORS = ("local", "dask")


def get_executor(name: str, address: str | None = None) -> Executor:
    """The executor called ``name``; ``address`` is the Dask scheduler's (None: a loopback cluster)."""
    if name == "local":
        return LocalExecutor()
    if name == "dask":
        try:
            from porter.exec.dask import DaskExecutor
        except ImportError as exc:
            raise InputError(
                f"the dask executor needs Dask distributed, which is not installed ({exc}); "
                "install it with: pip install -e '.[dask]'", field="executor") from None
        return DaskExecutor(address=address)
    raise InputError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})", field="executor")


__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "NodeResult", "get_executor"]
