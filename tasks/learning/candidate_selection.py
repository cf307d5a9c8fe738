"""Fit candidates, rank them, and pick the best one that exports to ONNX faithfully."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from tasks.core.metric_names import best_first
from tasks.core.metrics import holdout_metrics
from tasks.learning.candidates import build_pipeline, fit_pipeline, model_params
from tasks.learning.cross_validation import Fold, TrialScore, score_trial
from tasks.learning.data import PreparedData
from tasks.learning.onnx_export import (
    OnnxExportError,
    Parity,
    check_parity,
    check_size,
    convert_pipeline,
    create_session,
    onnx_scores,
    pipeline_scores,
)
from tasks.learning.split import Split
from tasks.learning.tuning import TuningResult


@dataclass(frozen=True)
class FittedCandidate:
    """A fitted pipeline, its holdout metrics and, when tuned, the trials that chose its parameters."""

    family: str
    pipeline: Pipeline
    metrics: dict[str, float]
    fit_seconds: float
    params: dict[str, str] = field(default_factory=dict)
    tuning: TuningResult | None = None
    cross_validation: TrialScore | None = None  # out-of-fold metrics and scores on the training rows

    @property
    def cv_metrics(self) -> dict[str, float]:
        """Out-of-fold metrics on the training rows (empty when not cross-validated)."""
        return {} if self.cross_validation is None else self.cross_validation.metrics

    def ranking_metrics(self) -> dict[str, float]:
        """What ranks the candidate: its cross-validated metrics, its holdout ones without them."""
        return self.cv_metrics or self.metrics


@dataclass(frozen=True)
class DeployableModel:
    """The chosen candidate, its ONNX graph and the metrics of that graph on the holdout."""

    candidate: FittedCandidate
    onnx_model: bytes
    parity: Parity
    onnx_metrics: dict[str, float]
    onnx_scores: np.ndarray
    rejected: dict[str, str]


def fit_candidate(
    family: str,
    data: PreparedData,
    split: Split,
    seed: int,
    tuning: TuningResult | None = None,
    folds: list[Fold] | None = None,
) -> FittedCandidate:
    """Fit one model family on all training rows (with the tuned parameters) and score it.

    Its cross-validated metrics on the training rows (the tuned best trial's, or the fixed
    parameters' on `folds`) rank it; the holdout only reports and gates.
    """
    params = None if tuning is None else tuning.params
    if tuning is not None and tuning.best is not None:
        cross_validation: TrialScore | None = tuning.best
    elif folds:
        cross_validation = score_trial(family, params or {}, data, split, folds, seed)
    else:
        cross_validation = None
    pipeline = build_pipeline(family, data.task, data.numeric, data.categorical, seed, params)
    started = time.perf_counter()
    fit_pipeline(pipeline, split.train[data.features], split.train[data.target], split.train_weights)
    fit_seconds = time.perf_counter() - started
    scores = pipeline_scores(pipeline, split.holdout[data.features], data.task)
    metrics = holdout_metrics(data.task, split.holdout[data.target].to_numpy(), scores)
    return FittedCandidate(
        family, pipeline, metrics, fit_seconds, model_params(pipeline), tuning, cross_validation
    )


def rank_candidates(candidates: list[FittedCandidate], data: PreparedData) -> list[FittedCandidate]:
    """Best first by the primary metric, cross-validated on the training rows where known."""
    return sorted(candidates, key=lambda c: best_first(data.metric, c.ranking_metrics()[data.metric]))


def select_deployable(
    candidates: list[FittedCandidate], data: PreparedData, holdout: pd.DataFrame, tolerance: float
) -> DeployableModel:
    """The best candidate whose ONNX export converts and matches it within `tolerance`."""
    rejected: dict[str, str] = {}
    for candidate in rank_candidates(candidates, data):
        features = holdout[data.features]
        try:
            onnx_model = convert_pipeline(candidate.pipeline, data.numeric, data.categorical)
            check_size(onnx_model)
            scores = onnx_scores(
                create_session(onnx_model), features, data.numeric, data.categorical, data.task
            )
            parity = check_parity(pipeline_scores(candidate.pipeline, features, data.task), scores, tolerance)
        except OnnxExportError as error:
            rejected[candidate.family] = str(error)
            continue
        metrics = holdout_metrics(data.task, holdout[data.target].to_numpy(), scores)
        return DeployableModel(candidate, onnx_model, parity, metrics, scores, rejected)
    detail = "; ".join(f"{family}: {reason}" for family, reason in rejected.items())
    msg = f"no candidate could be exported to ONNX ({detail})"
    raise OnnxExportError(msg)
