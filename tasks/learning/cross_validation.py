"""Score a family's hyperparameters by cross-validation on the training rows, never the holdout.

Folds are positions in `split.train` only: shuffled K-fold for a hash split (stratified for
classification), expanding time-ordered folds (each scores rows later than all it fits on)
for a time split, whose training rows are in time order.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit

from tasks.core.metric_names import higher_is_better
from tasks.core.metrics import holdout_metrics
from tasks.learning.candidates import build_pipeline, fit_pipeline
from tasks.learning.data import PreparedData
from tasks.learning.onnx_export import pipeline_scores
from tasks.learning.skewed_inputs import SKEW_THRESHOLD
from tasks.learning.split import Split

CV_FOLDS = 3
Fold = tuple[np.ndarray, np.ndarray]  # positions in split.train to fit on, then to score


@dataclass(frozen=True)
class TrialScore:
    """Out-of-fold metrics of one set of hyperparameters, the scores behind them and how long it took."""

    metrics: dict[str, float]
    seconds: float
    rows: np.ndarray | None = None  # positions in split.train that were scored, in score order
    scores: np.ndarray | None = None  # the out-of-fold score of each of those rows


def cv_folds(data: PreparedData, split: Split, seed: int, n_folds: int = CV_FOLDS) -> list[Fold]:
    """The folds tuning scores on: time-ordered for a time split, else seeded (stratified) K-fold."""
    positions = np.arange(len(split.train))
    if split.method.startswith("time:"):
        return list(TimeSeriesSplit(n_splits=n_folds).split(positions))
    if data.task == "classification":
        stratified = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
        return list(stratified.split(positions, split.train[data.target]))
    return list(KFold(n_folds, shuffle=True, random_state=seed).split(positions))


def score_trial(
    family: str,
    params: Mapping[str, object],
    data: PreparedData,
    split: Split,
    folds: list[Fold],
    seed: int,
) -> TrialScore:
    """Fit the family with `params` on each fold's training rows and score its held-out rows.

    The metrics are those of the task (`tasks.core.metrics`) over the pooled out-of-fold scores.
    Training weights, when the split has them, weight each fold's fit.
    """
    started = time.perf_counter()
    features, target = split.train[data.features], split.train[data.target]
    weights = split.train_weights
    scored_rows = np.concatenate([rows for _, rows in folds])
    scores = np.empty(len(scored_rows), dtype="float64")
    offset = 0
    for fit_rows, score_rows in folds:
        pipeline = build_pipeline(family, data.task, data.numeric, data.categorical, seed, params)
        fold_weights = None if weights is None else weights[fit_rows]
        fit_pipeline(pipeline, features.iloc[fit_rows], target.iloc[fit_rows], fold_weights)
        scores[offset : offset + len(score_rows)] = pipeline_scores(
            pipeline, features.iloc[score_rows], data.task
        )
        offset += len(score_rows)
    metrics = holdout_metrics(data.task, target.to_numpy()[scored_rows], scores)
    return TrialScore(metrics, time.perf_counter() - started, scored_rows, scores)


def log_target_eligible(data: PreparedData, split: Split) -> bool:
    """Whether a regression target is strictly positive and right-skewed, so log(target) may fit better."""
    if data.task != "regression":
        return False
    target = split.train[data.target].astype("float64")
    return bool(target.min() > 0 and target.skew() > SKEW_THRESHOLD)


def prefers_log_target(raw: Mapping[str, float], log: Mapping[str, float], metric: str) -> bool:
    """Keep log(target) only if it is better by cross-validation on the primary metric."""
    return log[metric] > raw[metric] if higher_is_better(metric) else log[metric] < raw[metric]
