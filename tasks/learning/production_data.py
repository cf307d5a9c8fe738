"""Labelled production rows (logged features joined with uploaded labels) as training data."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from deployments.lambda_handler.contract import ACTUAL, MISSING_CATEGORY, ServingSchema
from monitoring.labels.commands import join_labels, read_labels
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from tasks.core.row_bounds import within_bounds
from tasks.learning.data import PreparedData

LOG_TIME = "timestamp"  # the prediction-log field with each row's UTC time
MODEL_VERSION = "model_version"  # the prediction-log field naming the version that answered


@dataclass(frozen=True)
class ProductionRows:
    """Labelled production rows appended to a training table: its last `len(rows)` rows, in order.

    `rows` keep what was logged (features, `timestamp`, `model_version`, `actual`);
    `champion_version` is the champion when they were read, to tell which rows it served itself.
    """

    rows: pd.DataFrame
    champion_version: str | None = None


def labelled_production_rows(
    storage_url: str, model_name: str, schema: ServingSchema, window: Window, row_cap: int
) -> pd.DataFrame:
    """Every logged row of the window that has a label (batch-scored rows too), with an `actual` column."""
    logs = LogReader(storage_url, model_name, schema, row_cap=row_cap, include_batch=True).read(window)
    joined = join_labels(logs.frame, read_labels(storage_url, model_name, window))
    return joined[joined[ACTUAL].notna()].reset_index(drop=True)


def append_production_rows(data: PreparedData, rows: pd.DataFrame) -> tuple[PreparedData, pd.DataFrame]:
    """Add labelled production rows to a prepared table, typed like its own rows.

    Returns the table and the rows appended (its last rows, in the same order, as logged).
    Classification labels that are not one of the training classes are left out, and so are
    rows outside the spec's `row_bounds`, as source rows are. A date time
    column that is not a model input gets each row's log timestamp; a numeric one stays empty
    (those rows sort as newer than any source row).
    """
    if rows.empty:
        return data, rows.iloc[:0]
    columns: dict[str, pd.Series] = {}
    for name in data.numeric:
        values = rows[name] if name in rows.columns else pd.Series(np.nan, index=rows.index)
        columns[name] = pd.to_numeric(values, errors="coerce").astype("float64")
    for name in data.categorical:
        values = rows[name] if name in rows.columns else pd.Series(None, index=rows.index, dtype=object)
        columns[name] = values.astype(object).where(values.notna(), MISSING_CATEGORY).astype(str)
    if data.task == "regression":
        target = pd.to_numeric(rows[ACTUAL], errors="coerce")
        keep = target.notna() & np.isfinite(target)
    else:
        labels = rows[ACTUAL].astype(str)
        keep = labels.isin(data.classes)
        target = (labels == data.classes[1]).astype("int64")
    for name, (low, high) in data.row_bounds.items():
        keep &= within_bounds(columns[name], low, high)
    if data.time_column is not None and data.time_column not in columns:
        time_type = data.frame[data.time_column].dtype
        if pd.api.types.is_datetime64_any_dtype(time_type):
            logged = pd.to_datetime(rows[LOG_TIME], utc=True, format="ISO8601")
            columns[data.time_column] = logged.astype(time_type)
        else:
            columns[data.time_column] = pd.Series(None, index=rows.index, dtype=time_type)
    extra = pd.DataFrame(columns)[keep.to_numpy()].assign(**{data.target: target[keep].to_numpy()})
    frame = pd.concat([data.frame, extra[data.frame.columns]], ignore_index=True)
    return replace(data, frame=frame), rows[keep.to_numpy()].reset_index(drop=True)
