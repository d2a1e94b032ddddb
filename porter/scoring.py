"""Scoring a target's outputs on a subset of the inputs with the recipe's metric, for compilers that tune
against accuracy (int8 with accuracy control) while the compile stage runs."""
from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from porter.artifacts import InputSet, OutputSet, Timing, write_sample
from porter.errors import InputError


@dataclass(frozen=True)
class Evaluator:
    """The recipe's first metric on chosen samples. ``metric`` names it; ``lower_is_better`` says which way
    is better (WER: lower), so callers that want "higher is better" negate it."""

    metric: str
    lower_is_better: bool
    metrics: tuple[str, ...]
    inputs: InputSet
    model: Any  # the ModelConfig the score hook decodes with
    score_hook: Any  # porter_score of the plugin that registered the model

    def score(self, indices: Sequence[int], outputs: Sequence[Mapping[str, np.ndarray]]) -> float:
        """The metric over the samples ``indices`` (of ``inputs``) whose outputs are ``outputs`` (batch-1
        arrays by output name, in the same order)."""
        if len(indices) != len(outputs):
            raise ValueError(f"{len(indices)} sample indices but {len(outputs)} outputs")
        if not indices:
            raise InputError("cannot score an empty subset of samples", field="metrics")
        with tempfile.TemporaryDirectory(prefix="porter-score-") as tmp:
            root = Path(tmp)
            ids = tuple(self.inputs.sample_ids[i] for i in indices)
            groups = tuple(self.inputs.groups[i] for i in indices) if self.inputs.groups else ()
            for j, i in enumerate(indices):
                write_sample(root / "inputs", j, self.inputs.load(i))
                write_sample(root / "outputs", j, outputs[j])
            subset = InputSet(root / "inputs", ids, self.inputs.input_names,
                              tuple(self.inputs.references[i] for i in indices), groups, self.inputs.details)
            outs = OutputSet(root / "outputs", ids, tuple(outputs[0]), Timing((), 0.0))
            # no framework reference run exists while compiling: models that score against one (the generic
            # plugin's output agreement) cannot drive accuracy control
            result = self.score_hook(model=self.model, metrics=self.metrics, inputs=subset, outputs=outs,
                                     reference=None)
        if result is None or self.metric not in result.values:
            raise InputError(f"no plugin scored metric {self.metric!r} for model {self.model.name!r}",
                             field="metrics")
        return float(result.values[self.metric])


def evaluator_for(plugins, model, metrics: Sequence[str], inputs: InputSet) -> Evaluator | None:
    """An Evaluator for the recipe's first metric, or None when the recipe names no metric."""
    if not metrics:
        return None
    spec = plugins.registry.get("metrics", metrics[0])
    return Evaluator(metric=metrics[0], lower_is_better=getattr(spec, "lower_is_better", True),
                     metrics=tuple(metrics), inputs=inputs, model=model,
                     score_hook=plugins.owned_hook("porter_score", "models", model.name))
