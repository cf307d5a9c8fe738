"""Score the current champion on a new holdout so the gate compares like with like."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from deployments.lambda_handler.contract import CHAMPION_ALIAS, MODEL_FILE, ServingSchema
from tasks.core.errors import UserError
from tasks.core.metrics import holdout_metrics, primary_score
from tasks.learning.data import PreparedData
from tasks.learning.onnx_export import create_session, onnx_scores
from tasks.registry.model_registry import download_bundle, version_by_alias


class IncompatibleChampionError(UserError):
    """The champion was trained on other columns or another task and cannot be compared."""


@dataclass(frozen=True)
class ChampionScore:
    """The champion's version and its metrics on the candidate's holdout (and recent slice)."""

    version: str
    metrics: dict[str, float]
    score: float
    recent_metrics: dict[str, float] | None = None
    recent_score: float | None = None
    holdout_scores: np.ndarray | None = None  # per holdout row, for the paired bootstrap


def onnx_metrics(
    model: bytes, frame: pd.DataFrame, numeric: list[str], categorical: list[str], data: PreparedData
) -> dict[str, float]:
    """An ONNX model's metrics on labelled rows of the training table."""
    return onnx_metrics_and_scores(model, frame, numeric, categorical, data)[0]


def onnx_metrics_and_scores(
    model: bytes, frame: pd.DataFrame, numeric: list[str], categorical: list[str], data: PreparedData
) -> tuple[dict[str, float], np.ndarray]:
    """An ONNX model's metrics on labelled rows, and its score for each row."""
    scores = onnx_scores(create_session(model), frame, numeric, categorical, data.task)
    return holdout_metrics(data.task, frame[data.target].to_numpy(), scores), scores


def score_champion(
    client: MlflowClient,
    model_name: str,
    data: PreparedData,
    holdout: pd.DataFrame,
    recent: pd.DataFrame | None = None,
) -> ChampionScore | None:
    """The champion's holdout (and recent-slice) metrics, or None when there is no champion."""
    version = version_by_alias(client, model_name, CHAMPION_ALIAS)
    if version is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        bundle = download_bundle(client, version, Path(folder))
        schema = ServingSchema.load(bundle)
        model = (bundle / MODEL_FILE).read_bytes()
    if schema.task != data.task or schema.target != data.target:
        msg = (
            f"champion v{version.version} predicts {schema.target!r} ({schema.task}); "
            f"this run predicts {data.target!r} ({data.task})"
        )
        raise IncompatibleChampionError(msg)
    absent = sorted(set(schema.names) - set(holdout.columns))
    if absent:
        msg = f"champion v{version.version} needs columns this data lacks: {', '.join(absent)}"
        raise IncompatibleChampionError(msg)
    metrics, scores = onnx_metrics_and_scores(model, holdout, schema.numeric, schema.categorical, data)
    _, score, _ = primary_score(data.metric, metrics)
    if recent is None or recent.empty:
        return ChampionScore(str(version.version), metrics, score, holdout_scores=scores)
    recent_metrics = onnx_metrics(model, recent, schema.numeric, schema.categorical, data)
    _, recent_score, _ = primary_score(data.metric, recent_metrics)
    return ChampionScore(str(version.version), metrics, score, recent_metrics, recent_score, scores)
