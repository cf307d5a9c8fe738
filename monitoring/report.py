"""Evidently reports: drift of every model input and of the prediction, data quality, live quality.

Drift methods are set explicitly, never left to Evidently's size-dependent defaults (it
switches to p-value tests below 1,000 reference rows, and p-values call almost any
difference significant once samples are large). Numbers use the normed Wasserstein distance
(the earth mover's distance in units of the reference's standard deviation) and categories
the Jensen-Shannon distance. Both measure how far the distributions are, not how sure we
are that they differ, so the verdict depends on the size of a shift, not on how many rows
the window happened to hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
from evidently.core.report import Snapshot
from evidently.metrics import ValueDrift
from evidently.presets import ClassificationPreset, DataDriftPreset, DataSummaryPreset, RegressionPreset

from deployments.lambda_handler.contract import ACTUAL, PREDICTION, PROBABILITY, ServingSchema

NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"


@dataclass(frozen=True)
class DriftThresholds:
    """Per-column distance thresholds and the drifted-feature share that means 'drift'."""

    numeric: float = 0.2
    categorical: float = 0.2
    share: float = 0.3


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift score against its threshold."""

    column: str
    method: str
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        """Distances at or above the threshold count as drift (Evidently's rule)."""
        return self.score >= self.threshold


@dataclass
class DriftFigures:
    """The key figures of a drift report."""

    rows: int
    reference_rows: int
    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    missing_share: dict[str, float] = field(default_factory=dict)

    @property
    def drifted(self) -> list[ColumnDrift]:
        """Drifted features, largest score first."""
        return sorted((c for c in self.features if c.drifted), key=lambda c: c.score, reverse=True)

    @property
    def drift_share(self) -> float:
        """Share of model inputs that drifted."""
        return len(self.drifted) / len(self.features) if self.features else 0.0


def model_frame(frame: pd.DataFrame, schema: ServingSchema, *, with_actual: bool = False) -> pd.DataFrame:
    """Features, prediction (and actual) with one representation of missing values."""
    numeric, categorical = schema.numeric, schema.categorical
    columns = [*numeric, *categorical, schema.score_column]
    if schema.task == "classification":
        columns.append(PREDICTION)
    out = pd.DataFrame(index=frame.index)
    for name in columns:
        out[name] = frame[name] if name in frame.columns else np.nan
    for name in numeric:
        out[name] = pd.to_numeric(out[name], errors="coerce").astype("float64")
    for name in categorical:
        out[name] = out[name].astype(object).where(out[name].notna() & (out[name] != ""), None)
    if with_actual:
        out[ACTUAL] = frame[ACTUAL]
    return out.reset_index(drop=True)


def _definition(schema: ServingSchema, *, with_actual: bool) -> DataDefinition:
    numeric, categorical = schema.numeric, schema.categorical
    if schema.task == "regression":
        tasks: dict[str, Any] = {
            "regression": [Regression(target=ACTUAL, prediction=PREDICTION)] if with_actual else None
        }
        return DataDefinition(
            numerical_columns=[*numeric, PREDICTION], categorical_columns=categorical, **tasks
        )
    classification = (
        [BinaryClassification(target=ACTUAL, prediction_labels=PREDICTION, pos_label=schema.positive_class)]
        if with_actual
        else None
    )
    return DataDefinition(
        numerical_columns=[*numeric, PROBABILITY],
        categorical_columns=[*categorical, PREDICTION],
        classification=classification,
    )


def _drift_scores(snapshot: Snapshot) -> dict[str, ColumnDrift]:
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            scores[config["column"]] = ColumnDrift(
                config["column"], config["method"], float(metric["value"]), float(config["threshold"])
            )
    return scores


def build_drift_report(
    current: pd.DataFrame, reference: pd.DataFrame, schema: ServingSchema, thresholds: DriftThresholds
) -> tuple[Snapshot, DriftFigures]:
    """Feature and prediction drift plus data-quality summaries of the window against the reference."""
    features = [*schema.numeric, *schema.categorical]
    prediction = schema.score_column
    current_data = model_frame(current, schema)
    reference_data = model_frame(reference, schema)
    definition = _definition(schema, with_actual=False)
    report = Report(
        [
            DataDriftPreset(
                columns=features,
                num_method=NUMERIC_METHOD,
                cat_method=CATEGORICAL_METHOD,
                num_threshold=thresholds.numeric,
                cat_threshold=thresholds.categorical,
                drift_share=thresholds.share,
            ),
            ValueDrift(column=prediction, method=NUMERIC_METHOD, threshold=thresholds.numeric),
            DataSummaryPreset(columns=[*features, prediction]),
        ],
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current_data, data_definition=definition),
        Dataset.from_pandas(reference_data, data_definition=definition),
    )
    scores = _drift_scores(snapshot)
    figures = DriftFigures(
        rows=len(current_data),
        reference_rows=len(reference_data),
        features=[scores[name] for name in features if name in scores],
        prediction=scores.get(prediction),
        missing_share={name: float(current_data[name].isna().mean()) for name in features},
    )
    return snapshot, figures


def build_quality_report(labelled: pd.DataFrame, reference: pd.DataFrame, schema: ServingSchema) -> Snapshot:
    """Regression or classification quality of the live model on labelled rows, next to training's."""
    target = schema.target
    current_data = model_frame(labelled, schema, with_actual=True)
    reference_data = model_frame(reference.assign(**{ACTUAL: reference[target]}), schema, with_actual=True)
    if schema.task == "classification":
        current_data[ACTUAL] = current_data[ACTUAL].astype(str)
        reference_data[ACTUAL] = reference_data[ACTUAL].map(lambda v: schema.classes[int(v)])
    definition = _definition(schema, with_actual=True)
    preset = RegressionPreset() if schema.task == "regression" else ClassificationPreset()
    return Report([preset]).run(
        Dataset.from_pandas(current_data, data_definition=definition),
        Dataset.from_pandas(reference_data, data_definition=definition),
    )
