"""Hourly profiles: every row counted against the reference's bins, merged, and as exact as stated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from deployments.lambda_handler.contract import PREDICTION, Feature, ServingSchema
from monitoring.drift.window_drift import window_drift
from monitoring.drift.window_reports import DriftThresholds, build_drift_report, model_frame
from monitoring.logs.read_stats import ReadStats
from monitoring.profiles.bins import MAX_EDGES, reference_bins
from monitoring.profiles.hour_digest import PROFILE, SAMPLE, digest_rows, load_digest, store_digest
from monitoring.profiles.profile import MAX_CATEGORIES, OTHER, Profile, profile_of
from tests.support.reports import SUBJECT

# the stated tolerance of the binned normed Wasserstein distance (exact outside crossing bins)
WASSERSTEIN_TOLERANCE = 0.005
SCHEMA = ServingSchema(
    "regression",
    "price",
    (
        Feature("area", "number", nullable=True),
        Feature("rooms", "number", nullable=True),
        Feature("year", "number", nullable=True),
        Feature("zone", "category", nullable=True),
        Feature("style", "category", nullable=True),
    ),
)
IMPORTANCE = {"area": 0.5, "rooms": 0.2, "year": 0.1, "zone": 0.15, "style": 0.05}


def rows(count: int, seed: int, *, area_factor: float = 1.0, new_zone: float = 0.0) -> pd.DataFrame:
    """Continuous, discrete and categorical inputs with missing and empty values, and a prediction."""
    rng = np.random.default_rng(seed)
    area = rng.lognormal(7.3, 0.35, count) * area_factor
    area[rng.random(count) < 0.03] = np.nan
    zones = np.array(["RL", "RM", "FV", "RH"], dtype=object)[rng.integers(0, 4, count)]
    zones[rng.random(count) < new_zone] = "C (all)"
    style = rng.choice(
        np.array(["1Story", "2Story", "", None], dtype=object), count, p=[0.5, 0.4, 0.05, 0.05]
    )
    return pd.DataFrame(
        {
            "area": area,
            "rooms": rng.integers(2, 12, count).astype(float),
            "year": rng.integers(1900, 2010, count).astype(float),
            "zone": zones,
            "style": style,
            PREDICTION: 100 * np.nan_to_num(area, nan=1500.0) + rng.normal(0, 5000, count),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return rows(1500, seed=1)


def _profile(window: pd.DataFrame, reference: pd.DataFrame, parts: int) -> Profile:
    """The window's profile as the sum of `parts` consecutive slices' (hours)."""
    bins = reference_bins(reference, SCHEMA)
    table = pa.Table.from_pandas(model_frame(window, SCHEMA), preserve_index=False)
    total = Profile(bins.fingerprint)
    for piece in np.array_split(np.arange(table.num_rows), parts):
        total.add(profile_of(table.take(pa.array(piece)), bins))
    return total


@pytest.mark.parametrize(
    "shift", [{}, {"area_factor": 1.3}, {"new_zone": 0.2}, {"area_factor": 0.8, "new_zone": 0.5}]
)
def test_merged_hours_give_evidently_figures_on_the_same_rows(reference: pd.DataFrame, shift: dict) -> None:
    window = rows(3000, seed=2, **shift)
    thresholds = DriftThresholds()
    _, exact = build_drift_report(window, reference, SCHEMA, thresholds, SUBJECT, IMPORTANCE)
    profile = _profile(window, reference, parts=24)
    bins = reference_bins(reference, SCHEMA)
    binned = window_drift(profile, bins, SCHEMA, thresholds, IMPORTANCE, len(reference))
    exact_scores = {c.column: c for c in [*exact.features, exact.prediction]}
    binned_scores = {c.column: c for c in [*binned.features, binned.prediction]}
    assert set(binned_scores) == set(exact_scores)
    for name, column in exact_scores.items():
        tolerance = 1e-9 if name in SCHEMA.categorical else WASSERSTEIN_TOLERANCE
        assert binned_scores[name].score == pytest.approx(column.score, abs=tolerance), name
        assert binned_scores[name].method == column.method
    assert binned.drift_share == pytest.approx(exact.drift_share)
    assert binned.weighted_drift == pytest.approx(exact.weighted_drift)
    assert binned.rows == len(window)
    for name in SCHEMA.names:
        assert binned.missing_share[name] == pytest.approx(exact.missing_share[name]), name


def test_a_shifted_input_is_exact_beyond_the_reference_range(reference: pd.DataFrame) -> None:
    window = rows(2000, seed=3, area_factor=3.0)  # nearly every area above the reference's largest
    _, exact = build_drift_report(window, reference, SCHEMA, DriftThresholds(), SUBJECT, IMPORTANCE)
    binned = window_drift(
        _profile(window, reference, 5), reference_bins(reference, SCHEMA), SCHEMA, DriftThresholds(), None, 1
    )
    area = next(c for c in binned.features if c.column == "area")
    assert area.score == pytest.approx(next(c.score for c in exact.features if c.column == "area"), rel=1e-3)


def test_profiles_add_up_and_survive_json(reference: pd.DataFrame) -> None:
    window = rows(1000, seed=4)
    whole, hourly = _profile(window, reference, 1), _profile(window, reference, 7)
    again = Profile.from_json(hourly.to_json())
    for profile in (hourly, again):
        assert profile.rows == whole.rows == 1000
        for name, part in whole.numeric.items():
            assert np.array_equal(profile.numeric[name].counts, part.counts)
            assert np.allclose(profile.numeric[name].sums, part.sums)
            assert (profile.numeric[name].minimum, profile.numeric[name].maximum) == (
                part.minimum,
                part.maximum,
            )
            assert profile.numeric[name].missing == part.missing
        assert {n: p.counts for n, p in profile.categorical.items()} == {
            n: p.counts for n, p in whole.categorical.items()
        }
    other_bins = reference_bins(rows(500, seed=9), SCHEMA)
    with pytest.raises(ValueError, match="different bins"):
        whole.add(Profile(other_bins.fingerprint))


def test_many_distinct_values_are_bounded(reference: pd.DataFrame) -> None:
    bins = reference_bins(rows(5000, seed=5), SCHEMA)
    assert len(bins.edges["area"]) <= MAX_EDGES
    hostile = pd.DataFrame({"zone": [f"zone-{i}" for i in range(3 * MAX_CATEGORIES)], "area": 1.0})
    profile = profile_of(pa.Table.from_pandas(hostile, preserve_index=False), bins)
    counts = profile.categorical["zone"].counts
    assert len(counts) == MAX_CATEGORIES + 1
    assert counts[OTHER] == 2 * MAX_CATEGORIES
    assert sum(counts.values()) == 3 * MAX_CATEGORIES
    assert profile.categorical["style"].missing == 3 * MAX_CATEGORIES  # an absent column is all missing


def test_a_stored_digest_reads_back_and_a_corrupt_one_is_refused(
    reference: pd.DataFrame, tmp_path: Path
) -> None:
    bins = reference_bins(reference, SCHEMA)
    window = rows(800, seed=6).assign(request_id=[f"r{i}" for i in range(800)], row=0, model_version="1")
    table = pa.Table.from_pandas(window, preserve_index=False)
    digest = digest_rows(table, ReadStats(objects=8, bad_lines=2), bins, sample_rows=100)
    assert digest.sample.num_rows == 100
    folder = str(tmp_path / "hour")
    store_digest(folder, digest)
    loaded = load_digest(folder, bins)
    assert loaded is not None
    assert loaded.profile.rows == 800
    assert loaded.keys.num_rows == 800
    assert loaded.sample.column("request_id").to_pylist() == digest.sample.column("request_id").to_pylist()
    assert (loaded.stats.objects, loaded.stats.bad_lines) == (8, 2)
    assert load_digest(str(tmp_path / "elsewhere"), bins) is None
    (tmp_path / "hour" / PROFILE).write_text('{"profile": {"rows": ')
    with pytest.raises(ValueError):
        load_digest(folder, bins)
    # a truncated sample is refused when the digest is loaded, not later when the sample is read
    other = str(tmp_path / "other-hour")
    store_digest(other, digest)
    sample_file = tmp_path / "other-hour" / SAMPLE
    sample_file.write_bytes(sample_file.read_bytes()[:-40])
    with pytest.raises(ValueError):
        load_digest(other, bins)
