"""The metrics a model may be ranked by, their task and direction (no numerical libraries here).

Settings and the dataset spec are read before any heavy import, so the names live apart from
`tasks.core.metrics`, which computes them.
"""

from __future__ import annotations

from typing import Literal

from deployments.lambda_handler.contract import DEFAULT_METRICS

TaskType = Literal["regression", "classification"]
# Every metric a spec may rank by: its task and whether higher is better.
METRICS: dict[str, tuple[TaskType, bool]] = {
    "rmse": ("regression", False),
    "mae": ("regression", False),
    "rmsle": ("regression", False),
    "r2": ("regression", True),
    "roc_auc": ("classification", True),
    "log_loss": ("classification", False),
    "f1": ("classification", True),
    "accuracy": ("classification", True),
}
DEFAULT_METRIC: dict[TaskType, str] = {
    "regression": DEFAULT_METRICS["regression"],
    "classification": DEFAULT_METRICS["classification"],
}


def best_first(metric: str, value: float) -> float:
    """A sort key that puts the better value of the metric first."""
    return -value if higher_is_better(metric) else value


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of the metric is better."""
    return METRICS[metric][1]
