"""Hold out part of the data for evaluation: at random or, with a time column, the latest rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from tasks.data import DataValidationError, PreparedData

MIN_HOLDOUT_ROWS = 10


@dataclass(frozen=True)
class Split:
    """Training and holdout rows; both keep the target column."""

    train: pd.DataFrame
    holdout: pd.DataFrame
    method: str


def _time_order(data: PreparedData, time_column: str) -> pd.Series:
    if time_column not in data.frame.columns:
        msg = f"time column {time_column!r} is not among the columns used for training"
        raise DataValidationError(msg)
    values = data.frame[time_column]
    if time_column in data.numeric:
        return values
    parsed = pd.to_datetime(values.replace("", None), errors="coerce", utc=True)
    if parsed.isna().any():
        msg = f"time column {time_column!r} has values that are neither numbers nor dates"
        raise DataValidationError(msg)
    return parsed


def split_data(data: PreparedData, time_column: str | None, holdout_fraction: float, seed: int) -> Split:
    """Split rows into train and holdout, stratified by class for classification."""
    frame = data.frame
    holdout_rows = round(len(frame) * holdout_fraction)
    if holdout_rows < MIN_HOLDOUT_ROWS or len(frame) - holdout_rows < MIN_HOLDOUT_ROWS:
        msg = f"{len(frame)} rows are too few for a {holdout_fraction:.0%} holdout"
        raise DataValidationError(msg)
    if time_column is not None:
        order = _time_order(data, time_column).sort_values(kind="stable").index
        ordered = frame.loc[order].reset_index(drop=True)
        split = Split(ordered.iloc[:-holdout_rows], ordered.iloc[-holdout_rows:], f"time:{time_column}")
    else:
        stratify = frame[data.target] if data.task == "classification" else None
        train, holdout = train_test_split(frame, test_size=holdout_rows, random_state=seed, stratify=stratify)
        split = Split(train.reset_index(drop=True), holdout.reset_index(drop=True), "random")
    if data.task == "classification":
        for part, rows in (("training", split.train), ("holdout", split.holdout)):
            if rows[data.target].nunique() < 2:  # noqa: PLR2004 - binary classification
                msg = f"the {part} rows hold only one class; more data of the other class is needed"
                raise DataValidationError(msg)
    return split
