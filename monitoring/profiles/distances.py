"""Drift distances of a profile against the reference, as Evidently computes them on rows.

- Numbers: the normed Wasserstein distance (`wasserstein` in Evidently: the earth mover's
  distance over the reference's standard deviation, floored at 0.001). The reference keeps its
  values; each bin of the window is a mass at its own mean. Below and above the reference's
  range the result is exact, and so is every bin in which the two distribution functions do not
  cross; the error of a crossing bin is at most its share of rows times its width.
- Categories: the Jensen-Shannon distance of the category shares (`jensenshannon`), exact from
  the counts (up to `MAX_CATEGORIES` distinct values per window).
Missing values are left out on both sides, as Evidently leaves them out.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import distance
from scipy.stats import wasserstein_distance

from monitoring.profiles.bins import ReferenceBins
from monitoring.profiles.profile import CategoricalProfile, NumericProfile

STD_FLOOR = 0.001  # Evidently's floor of the reference's standard deviation


def normed_wasserstein(reference: np.ndarray, window: NumericProfile) -> float | None:
    """Wasserstein distance over the reference's standard deviation; None without values on a side."""
    filled = window.counts > 0
    if not filled.any() or len(reference) == 0:
        return None
    means = window.sums[filled] / window.counts[filled]
    norm = max(float(np.std(reference)), STD_FLOOR)
    return float(wasserstein_distance(reference, means, v_weights=window.counts[filled])) / norm


def jensen_shannon(reference: dict[str, int], window: CategoricalProfile) -> float | None:
    """Jensen-Shannon distance (natural log) of the category shares; None without values on a side."""
    if not reference or not window.counts:
        return None
    keys = sorted(set(reference) | set(window.counts))
    ours = np.array([reference.get(key, 0) for key in keys], dtype="float64")
    theirs = np.array([window.counts.get(key, 0) for key in keys], dtype="float64")
    return float(distance.jensenshannon(ours / ours.sum(), theirs / theirs.sum()))


def column_distances(
    bins: ReferenceBins, numeric: dict[str, NumericProfile], categorical: dict[str, CategoricalProfile]
) -> dict[str, float]:
    """Every column's distance that both sides have values for."""
    scores: dict[str, float | None] = {
        name: normed_wasserstein(bins.reference_values[name], part)
        for name, part in numeric.items()
        if name in bins.reference_values
    }
    scores |= {
        name: jensen_shannon(bins.reference_counts[name], part)
        for name, part in categorical.items()
        if name in bins.reference_counts
    }
    return {name: score for name, score in scores.items() if score is not None}
