"""int8 through NNCF: calibration on the variant's own inputs, optionally under accuracy control driven by the
recipe's metric (porter's Evaluator)."""
from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from porter.api import Evaluator, InputError, InputSet, TensorSpec, feeds_for
from porter_openvino.flags import ignored_scope_lists


@dataclass(frozen=True)
class QuantizeResult:
    model: Any  # the quantised ov.Model
    mode: str
    seconds: float
    calibration_samples: int
    # accuracy control: the metric of the float and the int8 model on the validation subset (recipe units)
    metric: str = ""
    float_metric: float | None = None
    int8_metric: float | None = None


def spread_indices(total: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(total)``, so every split of a test set is represented."""
    count = min(count, total)
    if count <= 0:
        return []
    step = total / count
    return sorted({int(k * step) for k in range(count)})


def _nncf_options(flags: Mapping[str, Any]) -> dict:
    import nncf

    options: dict[str, Any] = {"fast_bias_correction": bool(flags.get("fast_bias_correction", True))}
    if flags.get("preset"):
        options["preset"] = {"performance": nncf.QuantizationPreset.PERFORMANCE,
                             "mixed": nncf.QuantizationPreset.MIXED}[flags["preset"]]
    scope = ignored_scope_lists(flags)
    if scope:
        # validate=False: a pattern or type absent from this graph is not an error (recipes span models)
        options["ignored_scope"] = nncf.IgnoredScope(**scope, validate=False)
    return options


@contextlib.contextmanager
def _progress_bars_only_on_a_terminal() -> Iterator[None]:
    # NNCF draws rich progress bars on stdout; piped, they come out as one 200-column line above porter's table
    if sys.stdout.isatty():
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def quantize(model, flags: Mapping[str, Any], inputs: InputSet, specs: tuple[TensorSpec, ...],
             evaluate: Evaluator | None):
    """``model`` (an ov.Model) quantised as the ``quantize`` flag asks."""
    try:
        import nncf
    except ImportError as exc:
        raise InputError(f"quantize: {flags['quantize']} needs NNCF ({exc}); install it with "
                         "pip install -e '.[openvino]'", field="target.flags.quantize") from None
    if inputs is None or len(inputs) == 0:
        raise InputError("quantize needs the variant's inputs to calibrate on; none were given",
                         field="target.flags.quantize")
    import logging

    # NNCF logs every quantizer it places at INFO: hundreds of lines in porter's table output
    nncf.set_log_level(logging.WARNING)
    indices = spread_indices(len(inputs), int(flags["subset_size"]))
    dataset = nncf.Dataset(indices, lambda i: feeds_for(inputs.load(i), specs))
    t0 = time.perf_counter()
    if flags["quantize"] == "int8":
        with _progress_bars_only_on_a_terminal():
            quantized = nncf.quantize(model, dataset, subset_size=len(indices), **_nncf_options(flags))
        return QuantizeResult(quantized, "int8", time.perf_counter() - t0, len(indices))
    if evaluate is None:
        raise InputError("quantize: int8_accuracy_control needs a metric to control; the recipe names none",
                         field="metrics")
    sign = -1.0 if evaluate.lower_is_better else 1.0
    seen: dict[str, float] = {}

    def validate(compiled, items) -> float:
        # NNCF wants "higher is better"; porter's metric may be an error rate, so it is negated
        order = list(items)
        request = compiled.create_infer_request()
        outputs = []
        for i in order:
            result = request.infer(feeds_for(inputs.load(i), specs))
            outputs.append({out.get_any_name(): result[out].copy() for out in compiled.outputs})
        value = evaluate.score(order, outputs)
        seen.setdefault("float", value)  # NNCF validates the float model first
        return sign * value

    with _progress_bars_only_on_a_terminal():
        quantized = nncf.quantize_with_accuracy_control(
            model, dataset, dataset, validate, max_drop=float(flags["max_drop"]),
            drop_type=nncf.DropType.ABSOLUTE, subset_size=len(indices), **_nncf_options(flags))
    seconds = time.perf_counter() - t0
    import openvino as ov

    final = sign * validate(ov.Core().compile_model(quantized, "CPU"), indices)
    return QuantizeResult(quantized, "int8_accuracy_control", seconds, len(indices), metric=evaluate.metric,
                          float_metric=seen.get("float"), int8_metric=final)
