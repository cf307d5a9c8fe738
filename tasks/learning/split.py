"""Hold out rows for evaluation: by a seeded hash of their inputs or, with a time column, the latest rows.

The random split hashes each row's input features, so a row lands on the same side in every run.
Retraining on grown data (the source plus labelled production rows) therefore never scores
the champion on rows it was trained on: the gate compares like with like. The target is left
out of the hash: rows with identical inputs (repeated customers, twins with different labels)
always land on the same side, so the holdout never asks a model about inputs it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tasks.learning.data import DataValidationError, PreparedData

MIN_HOLDOUT_ROWS = 10
HASH_BUCKETS = 1_000_000


@dataclass(frozen=True)
class Split:
    """Training and holdout rows; both keep the target column.

    `train_weights` (one per training row) weight the fit when the retrain data policy asks for
    it; `recent` are the newest labelled production rows, held out from fitting in a drift
    retrain so the gate can score both models on the traffic they will serve; `recent_note`
    says why a drift retrain has no recent rows.
    """

    train: pd.DataFrame
    holdout: pd.DataFrame
    method: str
    train_weights: np.ndarray | None = None
    recent: pd.DataFrame | None = None
    recent_note: str = ""


def _time_order(data: PreparedData, time_column: str) -> pd.Series:
    """Row positions sorted by time; rows without a time (labelled production rows) are the newest."""
    if time_column not in data.frame.columns:
        msg = f"time column {time_column!r} is not among the columns of the training table"
        raise DataValidationError(msg)
    values = data.frame[time_column]
    if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values.replace("", None), errors="coerce", utc=True, format="mixed")
    return values.sort_values(kind="stable", na_position="last")


def holdout_mask(inputs: pd.DataFrame, fraction: float, seed: int) -> np.ndarray:
    """Rows whose seeded hash of the inputs falls in the holdout share (stable across runs).

    `inputs` holds the model's input columns only, never the target: equal inputs, equal side.
    """
    hashes = pd.util.hash_pandas_object(inputs, index=False, hash_key=f"{seed:016d}"[-16:]).to_numpy()
    return np.asarray((hashes % HASH_BUCKETS) < round(fraction * HASH_BUCKETS))


def split_data(
    data: PreparedData,
    time_column: str | None,
    holdout_fraction: float,
    seed: int,
    weights: np.ndarray | None = None,
) -> Split:
    """Split rows into train and holdout: the latest rows by time, else by a hash of the inputs.

    `weights` (one per row of the table) follow their rows into `Split.train_weights`.
    """
    frame = data.frame
    if time_column is not None:
        holdout_rows = round(len(frame) * holdout_fraction)
        order = frame.index.get_indexer(_time_order(data, time_column).index)
        train_at, holdout_at = order[: len(frame) - holdout_rows], order[len(frame) - holdout_rows :]
        method = f"time:{time_column}"
    else:
        held = holdout_mask(frame[data.features], holdout_fraction, seed)
        train_at, holdout_at = np.flatnonzero(~held), np.flatnonzero(held)
        method = f"hash:{seed}"
    split = Split(
        frame.iloc[train_at].reset_index(drop=True),
        frame.iloc[holdout_at].reset_index(drop=True),
        method,
        None if weights is None else np.asarray(weights, dtype="float64")[train_at],
    )
    if len(split.holdout) < MIN_HOLDOUT_ROWS or len(split.train) < MIN_HOLDOUT_ROWS:
        msg = f"{len(frame)} rows are too few for a {holdout_fraction:.0%} holdout"
        raise DataValidationError(msg)
    if data.task == "classification":
        for part, rows in (("training", split.train), ("holdout", split.holdout)):
            if rows[data.target].nunique() < 2:  # noqa: PLR2004 - binary classification
                msg = f"the {part} rows hold only one class; more data of the other class is needed"
                raise DataValidationError(msg)
    return split
