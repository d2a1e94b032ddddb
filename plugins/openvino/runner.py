"""Inference on a compiled OpenVINO model, in porter's runner shape (porter.api.BaseRunner)."""
from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from porter.api import BaseRunner, CompiledModel
from porter_openvino.capabilities import DEVICE
from porter_openvino.compile import cache_dir_for, precision_of


class OpenVinoRunner(BaseRunner):
    """Compiles the IR with the compile stage's property set (the blob comes from the compile's cache) and
    infers one feed dict at a time. With ``static_shapes`` each distinct input shape gets its own reshaped,
    compiled model, made the first time that shape is fed."""

    def __init__(self, compiled: CompiledModel, flags: Mapping[str, Any]):
        super().__init__("openvino", compiled.inputs)
        self.compiled = compiled
        self.static_shapes = bool(flags.get("static_shapes"))
        self.cache = cache_dir_for(Path(compiled.path).parent, flags)
        self.properties = dict(compiled.details.get("properties") or {})
        self.core: Any = None
        self.request: Any = None
        self.outputs: list = []
        self.by_shape: dict[tuple, Any] = {}
        self.loaded_from_cache: bool | None = None
        self.ran_precision: str | None = None  # what OpenVINO computes in here, read back from each compile
        self.shape_compiles = 0
        self.shape_compile_seconds = 0.0

    def _activate_impl(self) -> None:
        import openvino as ov

        self.core = ov.Core()
        if not self.static_shapes:
            model = self.core.read_model(str(self.compiled.path))
            compiled = self.core.compile_model(model, DEVICE, {**self.properties, "CACHE_DIR": str(self.cache)})
            self.loaded_from_cache = bool(compiled.get_property("LOADED_FROM_CACHE"))
            self._read_precision(compiled)
            self._use(compiled)

    def _read_precision(self, compiled) -> None:
        # OpenVINO quietly runs f32 where the CPU lacks the precision the properties ask for; the compile stage
        # may have run on another machine (a Dask worker, a copied workspace), so read it again here
        self.ran_precision = precision_of(compiled.get_property("INFERENCE_PRECISION_HINT"))

    def _use(self, compiled) -> None:
        self.request = compiled.create_infer_request()
        self.outputs = list(compiled.outputs)

    def _for_shape(self, feeds: Mapping[str, np.ndarray]):
        key = tuple((name, arr.shape) for name, arr in sorted(feeds.items()))
        if key not in self.by_shape:
            t0 = time.perf_counter()
            model = self.core.read_model(str(self.compiled.path))
            model.reshape({name: list(shape) for name, shape in key})
            # no CACHE_DIR: a blob per batch shape would grow the compile artifact at every run
            compiled = self.core.compile_model(model, DEVICE, self.properties)
            self._read_precision(compiled)
            self.by_shape[key] = (compiled.create_infer_request(), list(compiled.outputs))
            self.shape_compiles += 1
            self.shape_compile_seconds += time.perf_counter() - t0
        self.request, self.outputs = self.by_shape[key]

    def _infer_impl(self, feeds):
        if self.static_shapes:
            self._for_shape(feeds)
        result = self.request.infer(feeds)
        return {self._name(i, out): np.array(result[out]) for i, out in enumerate(self.outputs)}

    def _name(self, index: int, output) -> str:
        """The ONNX output's name: a reshaped model can lose a tensor name when a static shape folds the
        output to a constant (out_lengths), so fall back to the position, which OpenVINO keeps."""
        names = output.get_names()
        wanted = [s.name for s in self.compiled.outputs]
        return next((n for n in wanted if n in names), wanted[index] if index < len(wanted) else output.get_any_name())

    def _deactivate_impl(self) -> None:
        self.request, self.outputs, self.by_shape, self.core = None, [], {}, None

    def _compiled_elsewhere_as(self) -> str | None:
        """The precision the compile stage's machine computed in, where this machine ran another; else None."""
        compiled_as = self.compiled.details.get("read_back", {}).get("INFERENCE_PRECISION_HINT")
        return compiled_as if compiled_as and self.ran_precision not in (None, compiled_as) else None

    def precision_notes(self) -> tuple[str, ...]:
        compiled_as = self._compiled_elsewhere_as()
        if compiled_as is None:
            return ()
        return (f"compiled where OpenVINO computed in {compiled_as}, but this machine's CPU ran it in "
                f"{self.ran_precision} (its OPTIMIZATION_CAPABILITIES lack {compiled_as.upper()}): the figures are "
                f"{self.ran_precision}'s",)

    def details(self) -> dict:
        out: dict[str, Any] = {"loaded_from_cache": self.loaded_from_cache}
        if self._compiled_elsewhere_as() is not None:
            out["ran_precision"] = self.ran_precision
        if self.static_shapes:
            out.update(shape_compiles=self.shape_compiles, shape_compile_seconds=round(self.shape_compile_seconds, 3))
        return out
