"""How sure the gate can be: a paired bootstrap of two models on the same rows, and error concentration.

A holdout of a few hundred rows moves a metric by more than a typical retrain's gain, so an
improvement counts only if it holds in most resamples of those rows (the same resample for
both models). And a handful of rows can carry most of a holdout's error: the gate says how
much the largest errors carry, so a reader knows when a score is really those rows' score, and
the range a score takes over resamples of its holdout.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

from tasks.core.metric_names import TaskType, higher_is_better

RESAMPLES = 1000
CLASSIFICATION_RESAMPLES = 300  # each resample recomputes a rank metric with scikit-learn
TOP_ERRORS = 5


def row_losses(metric: str, task: TaskType, actual: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's share of the metric's loss: squared (log) error, absolute error or log loss."""
    actual = np.asarray(actual, dtype="float64")
    scores = np.asarray(scores, dtype="float64")
    if task == "classification":
        probability = np.clip(scores, 1e-15, 1 - 1e-15)
        return np.asarray(
            -(actual * np.log(probability) + (1 - actual) * np.log(1 - probability)), dtype="float64"
        )
    if metric == "rmsle":
        return np.asarray(
            (np.log1p(np.clip(scores, 0, None)) - np.log1p(np.clip(actual, 0, None))) ** 2, dtype="float64"
        )
    if metric == "mae":
        return np.asarray(np.abs(scores - actual), dtype="float64")
    return np.asarray((scores - actual) ** 2, dtype="float64")


def error_concentration(
    metric: str, task: TaskType, actual: np.ndarray, scores: np.ndarray, top: int = TOP_ERRORS
) -> float:
    """The share of the rows' total loss that their `top` largest losses carry."""
    losses = row_losses(metric, task, actual, scores)
    total = float(losses.sum())
    if total <= 0 or len(losses) == 0:
        return 0.0
    return float(np.sort(losses)[-top:].sum() / total)


def _regression_values(metric: str, actual: np.ndarray, scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The metric on each resample (a row of `rows`), vectorised."""
    if metric == "r2":
        y = actual[rows]
        residual = ((scores[rows] - y) ** 2).sum(axis=1)
        spread = ((y - y.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        return np.asarray(1 - residual / np.maximum(spread, 1e-12), dtype="float64")
    losses = row_losses(metric, "regression", actual, scores)[rows]
    return np.asarray(
        losses.mean(axis=1) if metric == "mae" else np.sqrt(losses.mean(axis=1)), dtype="float64"
    )


def _classification_value(metric: str, actual: np.ndarray, scores: np.ndarray) -> float:
    if metric == "roc_auc":
        return float(roc_auc_score(actual, scores)) if len(np.unique(actual)) == 2 else float("nan")  # noqa: PLR2004
    if metric == "log_loss":
        return float(log_loss(actual, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1]))
    predicted = (scores >= 0.5).astype("int64")  # noqa: PLR2004 - the usual threshold
    if metric == "f1":
        return float(f1_score(actual, predicted, zero_division=0))
    return float(accuracy_score(actual, predicted))


def _resampled(
    metric: str, task: TaskType, actual: np.ndarray, scores: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """The metric of the scores on each resample of the rows (one resample per row of `rows`)."""
    if task == "regression":
        return _regression_values(metric, actual, scores, rows)
    return np.array([_classification_value(metric, actual[r], scores[r]) for r in rows])


def _resamples(task: TaskType, rows: int, seed: int) -> np.ndarray:
    count = RESAMPLES if task == "regression" else CLASSIFICATION_RESAMPLES
    return np.random.default_rng(seed).integers(0, rows, size=(count, rows))


def bootstrap_interval(
    metric: str, task: TaskType, actual: np.ndarray, scores: np.ndarray, level: float = 0.9, seed: int = 0
) -> tuple[float, float] | None:
    """The central `level` interval of the metric over resamples of the rows: how much the rows decide."""
    actual = np.asarray(actual, dtype="float64")
    if len(actual) == 0:
        return None
    rows = _resamples(task, len(actual), seed)
    values = _resampled(metric, task, actual, np.asarray(scores, dtype="float64"), rows)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return None
    tail = (1 - level) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return float(low), float(high)


def paired_bootstrap(
    metric: str,
    task: TaskType,
    actual: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    seed: int = 0,
) -> float:
    """The share of paired resamples of the rows in which the candidate scores better than the champion."""
    actual = np.asarray(actual, dtype="float64")
    candidate = np.asarray(candidate, dtype="float64")
    champion = np.asarray(champion, dtype="float64")
    rows = _resamples(task, len(actual), seed)
    ours = _resampled(metric, task, actual, candidate, rows)
    theirs = _resampled(metric, task, actual, champion, rows)
    valid = np.isfinite(ours) & np.isfinite(theirs)
    if not valid.any():
        return 0.0
    better = ours[valid] > theirs[valid] if higher_is_better(metric) else ours[valid] < theirs[valid]
    return float(better.mean())
