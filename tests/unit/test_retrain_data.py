"""The retrain data policies and the recent slice, on small tables built like the flow builds them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.core.dataset_spec import DatasetSpec
from tasks.learning.candidate_selection import fit_candidate
from tasks.learning.data import DataValidationError, PreparedData, prepare_data
from tasks.learning.production_data import ProductionRows, append_production_rows
from tasks.learning.retrain_data import RetrainRule, choose_retrain_rows, row_times, split_retrain_rows

NOW = pd.Timestamp("2026-06-30T12:00:00Z")
SOURCE_DAYS = 200
SPEC = DatasetSpec(name="toy", target="y", task="regression", drop=[], categorical=[], time_column="sold_on")


def _source(*, dated: bool = True, task: str = "regression") -> PreparedData:
    """One source row a day, from 1 to 200 days before NOW (at midnight); `x` is the row's day."""
    days = np.arange(1, SOURCE_DAYS + 1)
    frame = pd.DataFrame(
        {
            "x": days.astype(float),
            "sold_on": (NOW.normalize() - pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
            "y": days * 2.0 if task == "regression" else np.where(days % 2 == 0, "yes", "no"),
        }
    )
    spec = SPEC.model_copy(update={"task": task, "time_column": "sold_on" if dated else None})
    if not dated:
        frame = frame.drop(columns="sold_on")
    return prepare_data(frame.astype(str), spec, "toy", 10)


def _logged(versions: list[str], *, actual: list[object] | None = None) -> pd.DataFrame:
    """Labelled log rows as the reader returns them, the first one newest (one an hour before NOW)."""
    hours = np.arange(len(versions))
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in hours],
            "row": 0,
            "timestamp": NOW - pd.to_timedelta(hours, unit="h"),
            "model_version": versions,
            "x": 1000.0 + hours,
            "actual": actual if actual is not None else list(-1.0 * hours),
        }
    )


def _drift_retrain(
    data: PreparedData, versions: list[str], champion: str = "2", **actual: list[object]
) -> tuple[PreparedData, ProductionRows]:
    combined, added = append_production_rows(data, _logged(versions, **actual))
    return combined, ProductionRows(added, champion)


# 10 newest rows served by v1 (live rolled back to it), then 40 by the champion v2
VERSIONS = ["1"] * 10 + ["2"] * 40
RULE = RetrainRule(recent_fraction=0.2, recent_min_rows=5, min_rows=10)


def test_production_rows_keep_their_log_timestamp() -> None:
    combined, production = _drift_retrain(_source(), VERSIONS)
    assert len(combined.frame) == SOURCE_DAYS + 50
    assert combined.frame["sold_on"].iloc[SOURCE_DAYS:].tolist() == production.rows["timestamp"].tolist()
    times = row_times(combined, production.rows)
    assert times.iloc[0] == NOW.normalize() - pd.Timedelta(days=1)
    assert times.iloc[SOURCE_DAYS] == NOW
    assert times.notna().all()

    undated, production = _drift_retrain(_source(dated=False), VERSIONS)
    times = row_times(undated, production.rows)
    assert times.iloc[:SOURCE_DAYS].isna().all()
    assert times.iloc[SOURCE_DAYS:].tolist() == production.rows["timestamp"].tolist()


def test_manual_runs_use_every_row_whatever_the_policy() -> None:
    data = _source()
    rows = choose_retrain_rows(data, None, RetrainRule(policy="recent", recent_days=1))
    assert (rows.policy, int(rows.use.sum()), int(rows.recent.sum()), rows.weights) == ("all", 200, 0, None)
    assert rows.recent_note == ""
    empty = choose_retrain_rows(data, ProductionRows(pd.DataFrame()), RULE)
    assert int(empty.use.sum()) == SOURCE_DAYS
    assert empty.recent_note == "no labelled production rows"


def test_recent_slice_is_the_newest_share_the_champion_served() -> None:
    data, production = _drift_retrain(_source(), VERSIONS)
    rows = choose_retrain_rows(data, production, RULE)
    recent = data.frame[rows.recent]
    assert len(recent) == 8  # 20% of the 40 rows v2 served
    # the newest rows v2 served: 10 to 17 hours before NOW, not v1's newer ones
    assert sorted(recent["x"]) == [1000.0 + hour for hour in range(10, 18)]
    assert not (rows.use & rows.recent).any()
    assert int(rows.use.sum()) == SOURCE_DAYS + 50 - 8
    assert rows.params["rows_used"] == SOURCE_DAYS + 42
    assert rows.params["recent_rows"] == 8


def test_recent_slice_below_the_minimum_is_skipped_with_the_reason() -> None:
    data, production = _drift_retrain(_source(), VERSIONS)
    rows = choose_retrain_rows(
        data, production, RetrainRule(recent_fraction=0.2, recent_min_rows=9, min_rows=10)
    )
    assert not rows.recent.any()
    assert rows.use.all()
    assert rows.recent_note == (
        "20% of 40 labelled production rows served by champion v2 is 8 rows, "
        "fewer than MLOPS_RECENT_HOLDOUT_MIN_ROWS=9"
    )


def test_a_one_class_recent_slice_is_skipped() -> None:
    labels = ["yes"] * 20 + ["no"] * 30  # the 10 newest v2 rows are all "yes"
    data, production = _drift_retrain(_source(task="classification"), ["2"] * 50, actual=labels)
    rows = choose_retrain_rows(
        data, production, RetrainRule(recent_fraction=0.2, recent_min_rows=5, min_rows=10)
    )
    assert not rows.recent.any()
    assert (
        rows.recent_note == "the 10 newest labelled production rows served by champion v2 hold only one class"
    )


def test_all_keeps_every_row_but_the_recent_slice() -> None:
    data, production = _drift_retrain(_source(), VERSIONS)
    rows = choose_retrain_rows(data, production, RULE)
    assert rows.policy == "all"
    assert rows.weights is None
    assert rows.params["retrain_window_end"] == NOW.isoformat()
    assert rows.params["retrain_window_start"] == (NOW.normalize() - pd.Timedelta(days=200)).isoformat()


def test_recent_keeps_only_the_last_days_of_source_and_production_rows() -> None:
    data, production = _drift_retrain(_source(), VERSIONS)
    rows = choose_retrain_rows(data, production, RetrainRule(policy="recent", recent_days=30, **_slice()))
    kept = data.frame[rows.use]
    # the window is 30 days back from the newest row (NOW); source rows are at midnight
    assert sorted(kept["x"][kept["x"] < 1000]) == [float(day) for day in range(1, 30)]
    assert (kept["x"] >= 1000).sum() == 42
    assert rows.params["retrain_data"] == "recent"
    assert rows.params["rows_used"] == 29 + 42
    assert rows.params["retrain_window_start"] == (NOW - pd.Timedelta(days=30)).isoformat()
    assert rows.params["retrain_recent_days"] == 30
    assert rows.warnings == []


def test_recent_keeps_undated_source_rows_and_says_so() -> None:
    data, production = _drift_retrain(_source(dated=False), VERSIONS)
    rows = choose_retrain_rows(data, production, RetrainRule(policy="recent", recent_days=1, **_slice()))
    # every source row, and the production rows of the last 24 hours but the 8 of the recent slice
    assert int(rows.use.sum()) == SOURCE_DAYS + 25 - 8
    assert rows.warnings == ["200 source rows have no date: `recent` keeps them all"]


def test_recent_with_too_few_rows_fails_naming_the_setting() -> None:
    data, production = _drift_retrain(_source(), VERSIONS)
    rule = RetrainRule(policy="recent", recent_days=0.5, recent_fraction=0.2, recent_min_rows=5, min_rows=50)
    with pytest.raises(DataValidationError, match=r"leaves 10 rows.*MLOPS_RETRAIN_RECENT_DAYS"):
        choose_retrain_rows(data, production, rule)


def _slice() -> dict[str, float]:
    return {"recent_fraction": 0.2, "recent_min_rows": 5, "min_rows": 10}


def test_weighted_halves_the_weight_every_half_life() -> None:
    data, production = _drift_retrain(_source(), VERSIONS)
    rows = choose_retrain_rows(
        data, production, RetrainRule(policy="weighted", half_life_days=30, **_slice())
    )
    assert rows.weights is not None
    assert rows.use.sum() == SOURCE_DAYS + 42
    weights = pd.Series(rows.weights, index=data.frame["x"])
    newest = weights[1000.0]  # logged at NOW: age 0
    # a source row of day d is d days and 12 hours old
    assert weights[30.0] / newest == pytest.approx(0.5 ** (30.5 / 30))
    assert weights[90.0] / weights[30.0] == pytest.approx(0.25)
    assert rows.weights[rows.use].mean() == pytest.approx(1.0)
    assert rows.params["recency_half_life_days"] == 30


def test_weighted_gives_undated_source_rows_the_oldest_dated_weight() -> None:
    data, production = _drift_retrain(_source(dated=False), VERSIONS)
    rows = choose_retrain_rows(data, production, RetrainRule(policy="weighted", half_life_days=1, **_slice()))
    assert rows.weights is not None
    oldest_logged = rows.weights[SOURCE_DAYS + 49]  # 49 hours old
    assert rows.weights[:SOURCE_DAYS] == pytest.approx(np.full(SOURCE_DAYS, oldest_logged))
    assert oldest_logged < rows.weights[SOURCE_DAYS + 5]
    assert rows.warnings == ["200 source rows have no date: weighted like the oldest dated row (2.0 days)"]


@pytest.mark.parametrize("time_column", ["sold_on", None])
def test_weights_follow_their_rows_through_the_split(time_column: str | None) -> None:
    data, production = _drift_retrain(_source(), VERSIONS)
    rows = choose_retrain_rows(data, production, RetrainRule(policy="weighted", **_slice()))
    assert rows.weights is not None
    split = split_retrain_rows(data, rows, time_column, 0.2, 42)
    by_x = dict(zip(data.frame["x"], rows.weights, strict=True))
    assert split.train_weights is not None
    assert split.train_weights.tolist() == [by_x[x] for x in split.train["x"]]
    assert split.recent is not None
    assert split.recent["x"].tolist() == data.frame["x"][rows.recent].tolist()
    seen = [*split.train["x"], *split.holdout["x"], *split.recent["x"]]
    assert sorted(seen) == sorted(data.frame["x"])


def test_production_rows_outside_the_row_bounds_are_left_out_like_source_rows() -> None:
    spec = DatasetSpec.model_validate({**SPEC.model_dump(), "row_bounds": {"x": [None, 1010]}})
    source = prepare_data(_source().frame.astype(str), spec, "toy", 10)
    assert source.out_of_bounds == 0  # source days 1..200
    combined, added = append_production_rows(source, _logged(VERSIONS))  # x is 1000 + hours
    assert added["x"].tolist() == [1000.0 + hour for hour in range(11)]
    assert len(combined.frame) == SOURCE_DAYS + 11


def test_weights_make_the_fit_follow_the_newest_rows() -> None:
    """Old rows say y = 2x, the newest say y = -x: with a short half-life the fitted slope turns negative."""
    frame = pd.DataFrame({"x": np.tile(np.arange(-5.0, 5.0), 30)})
    hours = np.arange(len(frame))
    frame["y"] = np.where(hours < 60, -frame["x"], 2 * frame["x"])
    logged = frame.rename(columns={"y": "actual"}).assign(
        timestamp=NOW - pd.to_timedelta(hours * 24, unit="h"), model_version="1"
    )
    source = prepare_data(frame.iloc[:10].astype(str), SPEC.model_copy(update={"time_column": None}), "t", 10)
    data, added = append_production_rows(source, logged)
    slopes = {}
    for policy in ("all", "weighted"):
        rule = RetrainRule(
            policy=policy, half_life_days=5, recent_fraction=0.0, recent_min_rows=1, min_rows=10
        )
        rows = choose_retrain_rows(data, ProductionRows(added, "1"), rule)
        model = fit_candidate("ridge", data, split_retrain_rows(data, rows, None, 0.2, 42), 42).pipeline
        slopes[policy] = float(
            model.predict(pd.DataFrame({"x": [1.0]}))[0] - model.predict(pd.DataFrame({"x": [0.0]}))[0]
        )
    assert slopes["all"] > 1.0
    assert slopes["weighted"] < -0.5
