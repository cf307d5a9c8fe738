"""Holdout metrics and the one metric that ranks models for each task."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

from tasks.core.metric_names import TaskType, higher_is_better


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and (for non-negative targets) RMSLE, in the target's own units."""
    actual = np.asarray(actual, dtype="float64")
    predicted = np.asarray(predicted, dtype="float64")
    metrics = {
        "rmse": float(np.sqrt(np.mean((predicted - actual) ** 2))),
        "mae": float(mean_absolute_error(actual, predicted)),
        "r2": float(r2_score(actual, predicted)),
    }
    if (actual >= 0).all():
        log_error = np.log1p(np.clip(predicted, 0, None)) - np.log1p(actual)
        metrics["rmsle"] = float(np.sqrt(np.mean(log_error**2)))
    return metrics


def classification_metrics(actual: np.ndarray, positive_probability: np.ndarray) -> dict[str, float]:
    """ROC AUC, log loss, F1 and accuracy at a 0.5 threshold."""
    actual = np.asarray(actual, dtype="int64")
    probability = np.clip(np.asarray(positive_probability, dtype="float64"), 1e-15, 1 - 1e-15)
    predicted = (probability >= 0.5).astype("int64")  # noqa: PLR2004 - the usual threshold
    return {
        "roc_auc": float(roc_auc_score(actual, probability)),
        "log_loss": float(log_loss(actual, probability, labels=[0, 1])),
        "f1": float(f1_score(actual, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(actual, predicted)),
    }


def holdout_metrics(task: TaskType, actual: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Metrics for the task from predictions (regression) or positive-class probabilities."""
    if task == "regression":
        return regression_metrics(actual, scores)
    return classification_metrics(actual, scores)


def primary_score(metric: str, metrics: dict[str, float]) -> tuple[str, float, bool]:
    """The ranking metric's name, value and whether higher is better."""
    return metric, metrics[metric], higher_is_better(metric)
