"""Evidently reports: drift of every model input and of the prediction, data quality, live quality.

Drift methods are set explicitly, never left to Evidently's size-dependent defaults (it
switches to p-value tests below 1,000 reference rows, and p-values call almost any
difference significant once samples are large). Numbers use the normed Wasserstein distance
(the earth mover's distance in units of the reference's standard deviation) and categories
the Jensen-Shannon distance. Both measure how far the distributions are, not how sure we
are that they differ, so the verdict depends on the size of a shift, not on how many rows
the window happened to hold.

Each report is titled with the compared model version and the window (a heading in the HTML,
and the snapshot's name, metadata and tags in the workspace). The drift report's headline and
its one dataset-level test are the verdict's measure against the verdict's threshold
(`VerdictDriftPreset`), and the verdict reads both drift figures back from the report's
snapshot, so the HTML, the history and the verdict show the same numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Regression, Report
from evidently.core.report import Snapshot
from evidently.metrics import RowCount, ValueDrift
from evidently.presets import ClassificationPreset, DataSummaryPreset, RegressionPreset
from sklearn.exceptions import UndefinedMetricWarning

from deployments.lambda_handler.contract import ACTUAL, PREDICTION, PROBABILITY, ServingSchema
from monitoring.drift.drift_metrics import MonitorValue
from monitoring.drift.evidently_presets import ReportTitle, VerdictDriftPreset, WindowMeasures
from monitoring.logs.window import Window
from tasks.core.settings import DriftMeasure

NUMERIC_METHOD = "wasserstein"
CATEGORICAL_METHOD = "jensenshannon"


_DRIFTED_COLUMNS = "evidently:metric_v2:DriftedColumnsCount"
_WEIGHTED_DRIFT = "evidently:metric_v2:WeightedDrift"
_VALUE_DRIFT = "evidently:metric_v2:ValueDrift"


@dataclass(frozen=True)
class DriftThresholds:
    """Per-column distance thresholds, and the verdict's measure with the threshold that means drift."""

    numeric: float = 0.2
    categorical: float = 0.2
    drift: float = 0.15  # MLOPS_DRIFT_THRESHOLD: the measure above this is drift
    measure: DriftMeasure = "weighted"  # MLOPS_DRIFT_MEASURE


@dataclass(frozen=True)
class ReportSubject:
    """What a report is about: the compared model version and the window."""

    model_name: str
    model_version: str
    window: Window

    def title(self, kind: str) -> str:
        """E.g. `Drift of ames-price v3, window 2026-11-23 10:00 to 2026-11-24 10:00 UTC`."""
        start, end = self.window.start, self.window.end
        span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
        return f"{kind} of {self.model_name} v{self.model_version}, window {span}"

    def metadata(self, kind: str) -> dict[str, str]:
        """The snapshot's metadata: model, version, window bounds (ISO 8601) and report kind."""
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "report": kind,
        }

    def tags(self) -> list[str]:
        """The snapshot's tags: the model and its version."""
        return [self.model_name, f"v{self.model_version}"]


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift score against its threshold, and the model's reliance on it."""

    column: str
    method: str
    score: float
    threshold: float
    importance: float = 0.0  # share of the verdict's inputs' permutation importance

    @property
    def drifted(self) -> bool:
        """Distances at or above the threshold count as drift (Evidently's rule)."""
        return self.score >= self.threshold


@dataclass
class DriftFigures:
    """The key figures of a drift report, as its snapshot holds them."""

    rows: int
    reference_rows: int
    features: list[ColumnDrift]  # the inputs the verdict counts
    prediction: ColumnDrift | None
    drift_share: float  # share of the verdict's inputs that drifted (DriftedColumnsCount)
    weighted_drift: float  # importance share of the verdict's inputs that drifted (WeightedDrift)
    missing_share: dict[str, float] = field(default_factory=dict)
    excluded: list[ColumnDrift] = field(default_factory=list)  # monitored, left out of the verdict

    @property
    def drifted(self) -> list[ColumnDrift]:
        """Drifted inputs of the verdict, most important first."""
        drifted = (c for c in self.features if c.drifted)
        return sorted(drifted, key=lambda c: (c.importance, c.score), reverse=True)


def verdict_weights(schema: ServingSchema, importance: dict[str, float] | None) -> dict[str, float]:
    """Importance of the inputs the verdict counts, summing to 1 (equal weights without importance)."""
    counted = [name for name in schema.names if name not in schema.monitor_exclude]
    weights = {name: max(float((importance or {}).get(name, 0.0)), 0.0) for name in counted}
    total = sum(weights.values())
    if total <= 0.0:
        return dict.fromkeys(counted, 1.0 / len(counted)) if counted else {}
    return {name: weight / total for name, weight in weights.items()}


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


def _drift_scores(metrics: list[dict[str, Any]]) -> dict[str, ColumnDrift]:
    scores = {}
    for metric in metrics:
        config = metric["config"]
        if config.get("type") == _VALUE_DRIFT:
            scores[config["column"]] = ColumnDrift(
                config["column"], config["method"], float(metric["value"]), float(config["threshold"])
            )
    return scores


def _dataset_drift(metrics: list[dict[str, Any]]) -> tuple[float, float]:
    """The drifted share and the weighted drift, as the report computed and tested them."""
    values = {metric["config"]["type"]: metric["value"] for metric in metrics}
    return float(values[_DRIFTED_COLUMNS]["share"]), float(values[_WEIGHTED_DRIFT])


def _value_drift(column: str, schema: ServingSchema, thresholds: DriftThresholds) -> ValueDrift:
    if column in schema.categorical:
        return ValueDrift(column=column, method=CATEGORICAL_METHOD, threshold=thresholds.categorical)
    return ValueDrift(column=column, method=NUMERIC_METHOD, threshold=thresholds.numeric)


def build_drift_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    schema: ServingSchema,
    thresholds: DriftThresholds,
    subject: ReportSubject,
    importance: dict[str, float] | None = None,
    window_values: dict[str, float] | None = None,
    window_figures: DriftFigures | None = None,
) -> tuple[Snapshot, DriftFigures]:
    """Input and prediction drift plus data-quality summaries of the window against the reference.

    The inputs in `monitor_exclude` get their own drift scores but stay out of the verdict's
    preset; `importance` (the bundle's shares) weights the verdict's inputs. `window_values`
    (estimated and live metrics) go into the snapshot as named values, so the workspace's
    dashboard can plot them over time. `window_figures` are the figures over every row of the
    window (from its profile) when `current` is a sample of it: they are then the verdict's, the
    headline's and the dataset-level test's, and the per-column widgets show the sample.
    """
    kind = "Drift"
    title = subject.title(kind)
    if window_figures is not None and window_figures.rows > len(current):
        title += f" (per-column figures from a sample of {len(current):,} of {window_figures.rows:,} rows)"
    weights = verdict_weights(schema, importance)
    counted = list(weights)
    excluded = [name for name in schema.names if name not in weights]
    prediction = schema.score_column
    current_data = model_frame(current, schema)
    reference_data = model_frame(reference, schema)
    definition = _definition(schema, with_actual=False)
    report = Report(
        [
            ReportTitle(title),
            VerdictDriftPreset(
                columns=counted,
                importance=weights,
                measure=thresholds.measure,
                threshold=thresholds.drift,
                num_method=NUMERIC_METHOD,
                cat_method=CATEGORICAL_METHOD,
                num_threshold=thresholds.numeric,
                cat_threshold=thresholds.categorical,
                window=None
                if window_figures is None
                else WindowMeasures(
                    window_figures.weighted_drift, window_figures.drift_share, window_figures.rows
                ),
            ),
            *[_value_drift(name, schema, thresholds) for name in excluded],
            ValueDrift(column=prediction, method=NUMERIC_METHOD, threshold=thresholds.numeric),
            RowCount(),
            *[MonitorValue(name=name, value=value) for name, value in (window_values or {}).items()],
            DataSummaryPreset(columns=[*schema.names, prediction]),
        ],
        metadata=subject.metadata(kind),
        tags=subject.tags(),
        include_tests=True,
    )
    snapshot = report.run(
        Dataset.from_pandas(current_data, data_definition=definition),
        Dataset.from_pandas(reference_data, data_definition=definition),
        name=subject.title(kind),
    )
    if window_figures is not None:
        return snapshot, window_figures
    metrics = snapshot.dict()["metrics"]
    scores = _drift_scores(metrics)
    drift_share, weighted_drift = _dataset_drift(metrics)
    figures = DriftFigures(
        rows=len(current_data),
        reference_rows=len(reference_data),
        features=[replace(scores[name], importance=weights[name]) for name in counted if name in scores],
        prediction=scores.get(prediction),
        drift_share=drift_share,
        weighted_drift=weighted_drift,
        missing_share={name: float(current_data[name].isna().mean()) for name in schema.names},
        excluded=[scores[name] for name in excluded if name in scores],
    )
    return snapshot, figures


def build_quality_report(
    labelled: pd.DataFrame, reference: pd.DataFrame, schema: ServingSchema, subject: ReportSubject
) -> Snapshot:
    """Regression or classification quality of the live model on labelled rows, next to the holdout's."""
    kind = "Live quality"
    target = schema.target
    current_data = model_frame(labelled, schema, with_actual=True)
    reference_data = model_frame(reference.assign(**{ACTUAL: reference[target]}), schema, with_actual=True)
    if schema.task == "classification":
        current_data[ACTUAL] = current_data[ACTUAL].astype(str)
        reference_data[ACTUAL] = reference_data[ACTUAL].map(lambda v: schema.classes[int(v)])
    definition = _definition(schema, with_actual=True)
    preset = RegressionPreset() if schema.task == "regression" else ClassificationPreset()
    with warnings.catch_warnings():
        # Evidently scores R^2 per bin of the target; a bin of one row only leaves that plot point empty
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        report = Report(
            [ReportTitle(subject.title(kind)), preset], metadata=subject.metadata(kind), tags=subject.tags()
        )
        return report.run(
            Dataset.from_pandas(current_data, data_definition=definition),
            Dataset.from_pandas(reference_data, data_definition=definition),
            name=subject.title(kind),
        )
