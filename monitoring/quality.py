"""Live quality: metrics of a model version on the labelled rows it answered, against its holdout."""

from __future__ import annotations

import pandas as pd

from deployments.lambda_handler.contract import ACTUAL, PREDICTION, PROBABILITY, ServingSchema
from tasks.evaluate import holdout_metrics, primary_score


def labelled_by_version(rows: pd.DataFrame, version: str) -> pd.DataFrame:
    """Labelled rows one model version answered: what its live quality is measured on.

    Rows answered by another version (before a deploy moved `live`) say nothing about this one.
    """
    return rows[rows[ACTUAL].notna() & (rows["model_version"].astype(str) == version)]


def live_quality(
    rows: pd.DataFrame, schema: ServingSchema, version: str, baseline: dict[str, float], min_rows: int
) -> tuple[dict[str, float], float | None]:
    """Metrics on the labelled rows the compared version answered, and its drop from the holdout."""
    labelled = labelled_by_version(rows, version)
    if len(labelled) < min_rows:
        return {}, None
    if schema.task == "regression":
        actual = pd.to_numeric(labelled[ACTUAL]).to_numpy()
        scores = labelled[PREDICTION].to_numpy(dtype="float64")
    else:
        actual = (labelled[ACTUAL].astype(str) == schema.positive_class).astype("int64").to_numpy()
        scores = labelled[PROBABILITY].to_numpy(dtype="float64")
        if len(set(actual)) < 2:  # noqa: PLR2004 - ROC AUC needs both classes
            return {}, None
    metrics = holdout_metrics(schema.task, actual, scores)
    name, live, higher_is_better = primary_score(schema.task, metrics)
    reference = baseline.get(name)
    if reference is None:
        return metrics, None
    drop = (reference - live) / abs(reference) if higher_is_better else (live - reference) / abs(reference)
    return metrics, drop
