"""Which rows lie within a spec's `row_bounds`: one rule for training, production rows and the monitor."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

Bounds = Mapping[str, tuple[float | None, float | None]]  # input -> (low, high), None an open side


def within_bounds(values: pd.Series, low: float | None, high: float | None) -> np.ndarray:
    """Which values lie in [low, high] (an open side when None); missing values count as within."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    low_bound = -np.inf if low is None else low
    high_bound = np.inf if high is None else high
    return np.asarray(np.isnan(numbers) | ((numbers >= low_bound) & (numbers <= high_bound)))


def rows_within(frame: pd.DataFrame, bounds: Bounds) -> np.ndarray:
    """Which rows lie within every bound of an input they hold (an input they lack bounds nothing)."""
    inside = np.ones(len(frame), dtype=bool)
    for name, (low, high) in bounds.items():
        if name in frame:
            inside &= within_bounds(frame[name], low, high)
    return inside
