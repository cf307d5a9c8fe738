"""How much the model relies on each input: permutation importance on the holdout.

Model-agnostic (it needs only predictions), measured on rows the model did not see, and in
the units of the ranking metric: an input's importance is how much the holdout metric gets
worse when that input's values are shuffled. The shares (negative ones clipped to 0, then
normalised to sum 1) weight the monitor's drift verdict, so a drifting input the model
ignores counts for little and one it leans on counts for a lot.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sklearn.inspection import permutation_importance
from sklearn.pipeline import Pipeline

from tasks.core.metric_names import TaskType

SCORING: dict[TaskType, tuple[str, str]] = {
    "regression": ("neg_root_mean_squared_error", "rmse"),
    "classification": ("roc_auc", "roc_auc"),
}


class FeatureImportance(BaseModel):
    """`importance.json`: each input's share of the permutation importance, summing to 1."""

    method: str = "permutation"
    metric: str
    repeats: int
    rows: int
    seconds: float
    shares: dict[str, float]

    def top(self, count: int) -> list[tuple[str, float]]:
        """The `count` inputs the model relies on most."""
        return sorted(self.shares.items(), key=lambda item: item[1], reverse=True)[:count]


def normalised_shares(names: list[str], drops: np.ndarray) -> dict[str, float]:
    """Clip negative importances (noise: shuffling helped) and scale to sum 1; equal shares if all are 0."""
    clipped = np.clip(np.asarray(drops, dtype="float64"), 0.0, None)
    total = float(clipped.sum())
    if total <= 0.0:
        return dict.fromkeys(names, 1.0 / len(names))
    return {name: float(value / total) for name, value in zip(names, clipped, strict=True)}


def measure_importance(
    pipeline: Pipeline,
    holdout: pd.DataFrame,
    features: list[str],
    target: str,
    task: TaskType,
    *,
    repeats: int,
    seed: int,
) -> FeatureImportance:
    """Permutation importance of every input on the holdout rows, as shares."""
    scoring, metric = SCORING[task]
    started = time.perf_counter()
    result = permutation_importance(
        pipeline,
        holdout[features],
        holdout[target],
        scoring=scoring,
        n_repeats=repeats,
        random_state=seed,
        n_jobs=1,
    )
    return FeatureImportance(
        metric=metric,
        repeats=repeats,
        rows=len(holdout),
        seconds=time.perf_counter() - started,
        shares=normalised_shares(features, result.importances_mean),
    )
