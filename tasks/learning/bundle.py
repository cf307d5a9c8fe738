"""The deployable bundle: ONNX model, input schema, metadata and the monitor's baselines.

The monitor's baselines are the training rows with the model's predictions (what drift is
measured against), the holdout rows with out-of-sample predictions (what live quality is
compared with and performance is estimated from) and each input's permutation importance.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from deployments.lambda_handler.contract import (
    HOLDOUT_FILE,
    IMPORTANCE_FILE,
    METADATA_FILE,
    MISSING_CATEGORY,
    MODEL_FILE,
    PREDICTION,
    PROBABILITY,
    REFERENCE_FILE,
    SCHEMA_FILE,
)
from tasks.learning.data import PreparedData
from tasks.learning.importance import FeatureImportance

SCHEMA_VERSION = 1


class FeatureSchema(BaseModel):
    """One model input as training saw it."""

    name: str
    type: str = Field(description="'number' or 'category'")
    nullable: bool
    null_rate: float
    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = None


class ModelSchema(BaseModel):
    """What the serving handler validates requests against (`schema.json`)."""

    schema_version: int = SCHEMA_VERSION
    task: str
    target: str
    classes: list[str] = Field(default_factory=list)
    features: list[FeatureSchema]
    example: dict[str, Any]
    time_column: str | None = None
    monitor_exclude: list[str] = Field(default_factory=list)
    metric: str | None = None  # what ranks and gates this model; the task's default when absent
    row_bounds: dict[str, tuple[float | None, float | None]] = Field(default_factory=dict)  # rows trained on


class BundleMetadata(BaseModel):
    """Provenance of a bundle (`metadata.json`)."""

    model_name: str
    model_version: str | None
    run_id: str
    family: str
    task: str
    data_digest: str
    data_snapshot: str
    metrics: dict[str, float]
    onnx_sha256: str
    onnx_max_rel_error: float


def describe_features(data: PreparedData, rows: pd.DataFrame) -> list[FeatureSchema]:
    """Types, null rates, ranges and categories of each feature in the given rows."""
    described = []
    for name in data.features:
        values = rows[name]
        if name in data.numeric:
            present = values.dropna()
            null_rate = float(values.isna().mean())
            described.append(
                FeatureSchema(
                    name=name,
                    type="number",
                    nullable=null_rate > 0,
                    null_rate=null_rate,
                    minimum=float(present.min()) if len(present) else None,
                    maximum=float(present.max()) if len(present) else None,
                )
            )
        else:
            null_rate = float((values == MISSING_CATEGORY).mean())
            levels = sorted(set(values) - {MISSING_CATEGORY})
            described.append(
                FeatureSchema(
                    name=name,
                    type="category",
                    nullable=null_rate > 0,
                    null_rate=null_rate,
                    categories=levels,
                )
            )
    return described


def example_instance(data: PreparedData, rows: pd.DataFrame) -> dict[str, Any]:
    """The most complete row, as a request would send it (missing values left out)."""
    features = rows[data.features]
    missing = features[data.numeric].isna().sum(axis=1) + (
        features[data.categorical] == MISSING_CATEGORY
    ).sum(axis=1)
    row = features.loc[missing.idxmin()]
    instance: dict[str, Any] = {}
    for name in data.features:
        value = row[name]
        if name in data.numeric:
            if not math.isnan(value):
                instance[name] = int(value) if float(value).is_integer() else float(value)
        elif value != MISSING_CATEGORY:
            instance[name] = str(value)
    return instance


def build_schema(data: PreparedData, train: pd.DataFrame) -> ModelSchema:
    """The request schema from the training rows."""
    return ModelSchema(
        task=data.task,
        target=data.target,
        classes=data.classes,
        features=describe_features(data, train),
        example=example_instance(data, train),
        time_column=data.time_column,
        monitor_exclude=data.monitor_exclude,
        metric=data.metric,
        row_bounds=data.row_bounds,
    )


def reference_sample(
    data: PreparedData, rows: pd.DataFrame, scores: np.ndarray, max_rows: int, seed: int
) -> pd.DataFrame:
    """Features, target and the model's predictions of some rows (at most `max_rows`)."""
    sample = rows[[*data.features, data.target]].assign(**_prediction_columns(data, scores))
    if len(sample) > max_rows:
        sample = sample.sample(n=max_rows, random_state=seed)
    return sample.reset_index(drop=True)


def _prediction_columns(data: PreparedData, scores: np.ndarray) -> dict[str, Any]:
    if data.task == "regression":
        return {PREDICTION: scores}
    labels = np.where(scores >= 0.5, data.classes[1], data.classes[0])  # noqa: PLR2004
    return {PREDICTION: labels, PROBABILITY: scores}


@dataclass(frozen=True)
class MonitoringBaseline:
    """What the monitor compares a window with: training rows, holdout rows, importance."""

    reference: pd.DataFrame  # training rows with in-sample predictions
    holdout: pd.DataFrame  # holdout rows with out-of-sample predictions
    importance: FeatureImportance


def write_bundle(
    directory: Path,
    onnx_model: bytes,
    schema: ModelSchema,
    metadata: BundleMetadata,
    baseline: MonitoringBaseline,
) -> Path:
    """Write the bundle files into a directory and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(onnx_model)
    (directory / SCHEMA_FILE).write_text(schema.model_dump_json(indent=2), encoding="utf-8")
    (directory / METADATA_FILE).write_text(metadata.model_dump_json(indent=2), encoding="utf-8")
    baseline.reference.to_parquet(directory / REFERENCE_FILE, index=False)
    baseline.holdout.to_parquet(directory / HOLDOUT_FILE, index=False)
    (directory / IMPORTANCE_FILE).write_text(baseline.importance.model_dump_json(indent=2), encoding="utf-8")
    return directory


def sha256_hex(payload: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(payload).hexdigest()
