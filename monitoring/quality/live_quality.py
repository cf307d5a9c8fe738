"""Live and estimated quality of a model version, against its holdout."""

from __future__ import annotations

import pandas as pd

from deployments.lambda_handler.contract import ACTUAL, PREDICTION, PROBABILITY, ServingSchema
from monitoring.quality.estimation import Estimator
from tasks.core.metric_names import DEFAULT_METRIC
from tasks.core.metrics import holdout_metrics, primary_score


def rows_of_version(rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """Rows one model version answered: its predictions are what its quality is measured on.

    Rows answered by another version (before a deploy moved `live`) say nothing about this one.
    """
    return rows[rows["model_version"].astype(str) == version]


def labelled_by_version(rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """Labelled rows one model version answered: what its live quality is measured on."""
    answered = rows_of_version(rows, version)
    return answered[answered[ACTUAL].notna()]


def quality_drop(
    schema: ServingSchema, metrics: dict[str, float], baseline: dict[str, float]
) -> float | None:
    """How much worse the primary metric is than the holdout's, as a fraction (None if either is absent)."""
    # the schema's metric, or the task's default where it cannot be had (no RMSLE estimate)
    name = schema.metric if schema.metric in metrics else DEFAULT_METRIC[schema.task]
    if name not in metrics:  # e.g. no ROC AUC when every row is one class
        return None
    name, value, higher_is_better = primary_score(name, metrics)
    reference = baseline.get(name)
    if reference is None:
        return None
    return (reference - value) / abs(reference) if higher_is_better else (value - reference) / abs(reference)


def realized_metrics(labelled: pd.DataFrame, schema: ServingSchema) -> dict[str, float]:
    """The task's metrics on labelled rows; empty when ROC AUC lacks one of the classes."""
    if schema.task == "regression":
        actual = pd.to_numeric(labelled[ACTUAL]).to_numpy()
        scores = labelled[PREDICTION].to_numpy(dtype="float64")
    else:
        actual = (labelled[ACTUAL].astype(str) == schema.positive_class).astype("int64").to_numpy()
        scores = labelled[PROBABILITY].to_numpy(dtype="float64")
        if len(set(actual)) < 2:  # noqa: PLR2004 - ROC AUC needs both classes
            return {}
    return holdout_metrics(schema.task, actual, scores)


def live_quality(
    rows: pd.DataFrame, schema: ServingSchema, version: str, baseline: dict[str, float], min_rows: int
) -> tuple[dict[str, float], float | None]:
    """Metrics on the labelled rows the compared version answered, and its drop from the holdout."""
    labelled = labelled_by_version(rows, version)
    if len(labelled) < min_rows:
        return {}, None
    metrics = realized_metrics(labelled, schema)
    return metrics, quality_drop(schema, metrics, baseline)


def estimation_error(
    rows: pd.DataFrame, version: str, estimator: Estimator | None, live_metrics: dict[str, float]
) -> dict[str, float]:
    """Estimated minus realized metric on the same labelled rows: how far to trust the estimate."""
    if estimator is None or not live_metrics:
        return {}
    estimated = estimator(labelled_by_version(rows, version))
    return {name: estimated[name] - live_metrics[name] for name in estimated if name in live_metrics}
