"""The one shape of a target's runner: activate, infer a feed dict, deactivate.

A target returns a subclass from ``porter_runner``; the core uses it for the run stage (through
:func:`porter.batching.run_samples`) and for the padded-batch parity check after compile, so whatever a target
computes is checked the same way it is measured. Subclasses override the ``*_impl`` methods; the public ones do
the checks every runner needs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

from porter.artifacts import TensorSpec
from porter.errors import InputError

RunnerT = TypeVar("RunnerT", bound="BaseRunner")

class BaseRunner:
    """Runs one compiled model. Use as a context manager, or call :meth:`activate` and :meth:`deactivate`."""

    def __init__(self, name: str, inputs: Sequence[TensorSpec]):
        self.name = name
        self.inputs = tuple(inputs)
        self.is_active = False

    # ------------------------------------------------------------------ for subclasses
    def _activate_impl(self) -> None:
        """Load the model (a session, a compiled model). Called once per activation."""

    def _infer_impl(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one feed dict (already checked and cast); return every output by name."""
        raise NotImplementedError

    def _deactivate_impl(self) -> None:
        """Release what activation loaded."""

    # ------------------------------------------------------------------ the public contract
    def activate(self: RunnerT) -> RunnerT:
        if not self.is_active:
            self._activate_impl()
            self.is_active = True
        return self

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self.is_active:
            raise RuntimeError(f"runner {self.name!r} was not activated before infer()")
        missing = [s.name for s in self.inputs if s.name not in feeds]
        if missing:
            raise InputError(f"runner {self.name!r} needs inputs {', '.join(missing)}; the feeds hold "
                             f"{', '.join(feeds) or 'nothing'}")
        cast = {s.name: np.asarray(feeds[s.name]).astype(s.dtype, copy=False) for s in self.inputs}
        return self._infer_impl(cast)

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate_impl()
            self.is_active = False

    def __enter__(self: RunnerT) -> RunnerT:  # a TypeVar, not typing.Self, which Python 3.10 lacks
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()
