"""The rows a drift-triggered retrain learns from, and the recent slice its gate holds out.

Every row gets a time: a source row from the spec's time column when that column holds dates,
a labelled production row from its prediction-log timestamp. Ages count back from the newest
row. The data policy (`MLOPS_RETRAIN_DATA`) then keeps every row (`all`), only the rows of the
last `MLOPS_RETRAIN_RECENT_DAYS` (`recent`), or every row with a weight that halves every
`MLOPS_RECENCY_HALF_LIFE_DAYS` of age (`weighted`, scaled to average 1). Source rows without a
date (no time column, or a numeric one) cannot be aged: `recent` keeps them all and `weighted`
weighs them like the oldest dated row, with a warning either way.

Before the policy, the newest `MLOPS_RECENT_HOLDOUT_FRACTION` of the production rows the
current champion served itself are set aside as the recent slice: neither model has trained on
them, so the gate can score both on the traffic they will serve.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from tasks.learning.data import DataValidationError, PreparedData
from tasks.learning.production_data import LOG_TIME, MODEL_VERSION, ProductionRows
from tasks.learning.split import Split, split_data

RetrainData = Literal["all", "recent", "weighted"]
UTC_TIME = "datetime64[ns, UTC]"
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class RetrainRule:
    """The settings that choose a retrain's rows."""

    policy: RetrainData = "all"
    recent_days: float = 90.0
    half_life_days: float = 30.0
    recent_fraction: float = 0.2
    recent_min_rows: int = 30
    min_rows: int = 50


@dataclass(frozen=True)
class RetrainRows:
    """Which rows of the table a run fits and evaluates on, their weights and the recent slice."""

    policy: RetrainData
    use: np.ndarray  # rows for training and the holdout (never in the recent slice)
    recent: np.ndarray  # rows held out for the gate's recent check
    weights: np.ndarray | None = None  # one per row of the table, for `weighted`
    window: dict[str, str | float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    recent_note: str = ""  # why a drift retrain has no recent slice

    @property
    def params(self) -> dict[str, str | int | float]:
        """What the run logs about its data: the policy, the rows used and the window."""
        return {
            "retrain_data": self.policy,
            "rows_used": int(self.use.sum()),
            "recent_rows": int(self.recent.sum()),
            **self.window,
        }


def row_times(data: PreparedData, production: pd.DataFrame) -> pd.Series:
    """Each row's UTC time: source rows from a date time column (else NaT), production rows from their log."""
    frame, column = data.frame, data.time_column
    sources = len(frame) - len(production)
    if column is not None and pd.api.types.is_datetime64_any_dtype(frame[column]):
        source = pd.to_datetime(frame[column].iloc[:sources], utc=True).astype(UTC_TIME)
    else:
        source = pd.Series(pd.NaT, index=range(sources), dtype=UTC_TIME)
    logged = pd.to_datetime(production[LOG_TIME], utc=True, format="ISO8601").astype(UTC_TIME)
    return pd.concat([source, logged], ignore_index=True).astype(UTC_TIME)


def recent_slice(
    data: PreparedData, times: pd.Series, production: ProductionRows, fraction: float, min_rows: int
) -> tuple[np.ndarray, str]:
    """The newest `fraction` of the production rows the champion served, or no rows and the reason."""
    none = np.zeros(len(times), dtype=bool)
    if fraction == 0:
        return none, "turned off (MLOPS_RECENT_HOLDOUT_FRACTION=0)"
    sources = len(times) - len(production.rows)
    served = production.rows[MODEL_VERSION].astype(str).to_numpy() == str(production.champion_version)
    candidates = sources + np.flatnonzero(served)
    size = round(fraction * len(candidates))
    who = f"labelled production rows served by champion v{production.champion_version}"
    if size < min_rows:
        note = (
            f"{fraction:.0%} of {len(candidates)} {who} is {size} rows, "
            f"fewer than MLOPS_RECENT_HOLDOUT_MIN_ROWS={min_rows}"
        )
        return none, note
    order = np.argsort(times.to_numpy(dtype="datetime64[ns]")[candidates], kind="stable")
    newest = candidates[order[-size:]]
    if data.task == "classification" and data.frame[data.target].iloc[newest].nunique() < 2:  # noqa: PLR2004
        return none, f"the {size} newest {who} hold only one class"
    mask = none.copy()
    mask[newest] = True
    return mask, ""


def _policy(
    times: pd.Series, pool: np.ndarray, rule: RetrainRule
) -> tuple[np.ndarray, np.ndarray | None, dict[str, str | float], list[str]]:
    """Rows kept, weights, window and warnings of the policy over the `pool` rows."""
    newest = times.max()
    undated = times.isna().to_numpy() & pool
    warnings = []
    if rule.policy == "recent":
        start = newest - rule.recent_days * DAY
        keep = pool & ((times >= start).to_numpy() | undated)
        window: dict[str, str | float] = {
            "retrain_window_start": start.isoformat(),
            "retrain_window_end": newest.isoformat(),
            "retrain_recent_days": rule.recent_days,
        }
        if undated.any():
            warnings.append(f"{int(undated.sum())} source rows have no date: `recent` keeps them all")
        return keep, None, window, warnings
    ages = ((newest - times) / DAY).to_numpy(dtype="float64", na_value=np.nan)
    window = {"retrain_window_start": times[pool].min().isoformat(), "retrain_window_end": newest.isoformat()}
    if rule.policy == "all":
        return pool, None, window, warnings
    if undated.any():
        dated = pool & ~undated
        ages[undated] = np.nanmax(ages[dated]) if dated.any() else 0.0
        warnings.append(
            f"{int(undated.sum())} source rows have no date: weighted like the oldest dated row "
            f"({ages[undated][0]:.1f} days)"
        )
    weights = np.where(pool, 0.5 ** (ages / rule.half_life_days), 0.0)
    weights = weights / weights[pool].mean()
    window["recency_half_life_days"] = rule.half_life_days
    return pool, weights, window, warnings


def choose_retrain_rows(
    data: PreparedData, production: ProductionRows | None, rule: RetrainRule
) -> RetrainRows:
    """Apply the policy and set the recent slice aside; runs without production rows use every row."""
    rows = len(data.frame)
    if production is None or production.rows.empty:
        note = "" if production is None else "no labelled production rows"
        return RetrainRows("all", np.ones(rows, dtype=bool), np.zeros(rows, dtype=bool), recent_note=note)
    times = row_times(data, production.rows)
    recent, note = recent_slice(data, times, production, rule.recent_fraction, rule.recent_min_rows)
    use, weights, window, warnings = _policy(times, ~recent, rule)
    if use.sum() < rule.min_rows:
        msg = (
            f"MLOPS_RETRAIN_DATA={rule.policy} leaves {int(use.sum())} rows, fewer than "
            f"MLOPS_MIN_ROWS={rule.min_rows}: widen MLOPS_RETRAIN_RECENT_DAYS or use another policy"
        )
        raise DataValidationError(msg)
    return RetrainRows(rule.policy, use, recent, weights, window, warnings, note)


def split_retrain_rows(
    data: PreparedData, rows: RetrainRows, time_column: str | None, holdout_fraction: float, seed: int
) -> Split:
    """Split the used rows into train and holdout (weights follow), with the recent slice beside them."""
    used = replace(data, frame=data.frame[rows.use].reset_index(drop=True))
    weights = None if rows.weights is None else rows.weights[rows.use]
    split = split_data(used, time_column, holdout_fraction, seed, weights)
    recent = data.frame[rows.recent].reset_index(drop=True) if rows.recent.any() else None
    return replace(split, recent=recent, recent_note=rows.recent_note)
