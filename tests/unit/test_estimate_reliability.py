"""Estimates that know their limits: the domain classifier, its weights and the reliability flag."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from deployments.lambda_handler.contract import PREDICTION, PROBABILITY
from monitoring.quality.domain import domain_shift, window_sample
from monitoring.quality.reliability import MIN_EFFECTIVE_ROWS, Assessment, assess_estimate
from tasks.core.metrics import holdout_metrics
from tests.support.toy_schemas import CLASSIFICATION, REGRESSION

AREAS = ("north", "south", "east")


def _houses(rows: int, seed: int, size_mean: float = 0.0) -> pd.DataFrame:
    """Prices with noise that grows with size; `age` plays no part in them."""
    rng = np.random.default_rng(seed)
    size = rng.normal(size_mean, 1.0, rows)
    noise = (0.5 + 3.0 / (1.0 + np.exp(-2.0 * size))) * rng.normal(0.0, 1.0, rows)
    return pd.DataFrame(
        {
            "size": size,
            "age": rng.normal(0.0, 1.0, rows),
            "area": rng.choice(AREAS, rows),
            "price": 3.0 * size + noise,
        }
    )


@pytest.fixture(scope="module")
def houses() -> dict[str, pd.DataFrame]:
    """A holdout and windows: like it, far beyond its sizes, and with ages it never saw."""
    model = LinearRegression().fit(_houses(1500, seed=1)[["size"]], _houses(1500, seed=1)["price"])
    frames = {"holdout": _houses(500, 2), "same": _houses(2000, 3), "far": _houses(2000, 4, size_mean=6.0)}
    frames["old"] = _houses(2000, 5).assign(age=lambda frame: frame["age"] + 10.0)
    for frame in frames.values():
        frame[PREDICTION] = model.predict(frame[["size"]])
    return frames


@pytest.fixture(scope="module")
def house_estimates(houses: dict[str, pd.DataFrame]) -> dict[str, Assessment]:
    importance = {"size": 0.9, "age": 0.0, "area": 0.1}
    return {
        name: assess_estimate(REGRESSION, houses["holdout"], houses[name].drop(columns="price"), importance)
        for name in ("same", "far", "old")
    }


def _rmse(frame: pd.DataFrame) -> float:
    return holdout_metrics("regression", frame["price"].to_numpy(), frame[PREDICTION].to_numpy())["rmse"]


def test_a_window_like_the_holdout_is_reliable_and_its_estimate_close(
    houses: dict[str, pd.DataFrame], house_estimates: dict[str, Assessment]
) -> None:
    same = house_estimates["same"]
    assert same.reliable
    assert same.reasons == []
    assert same.domain_auc == pytest.approx(0.5, abs=0.07)
    assert same.effective_rows > MIN_EFFECTIVE_ROWS
    assert same.metrics["rmse"] == pytest.approx(_rmse(houses["same"]), rel=0.1)


def test_a_window_far_outside_the_holdout_is_marked_unreliable_and_says_why(
    house_estimates: dict[str, Assessment],
) -> None:
    far = house_estimates["far"]
    assert not far.reliable
    assert far.domain_auc > 0.97
    assert far.effective_rows < MIN_EFFECTIVE_ROWS
    text = "; ".join(far.reasons)
    assert "effective rows of 500" in text
    assert "outside the holdout's range of size" in text
    assert "rmse" in far.metrics  # still estimated, and shown as unreliable


def test_a_shift_in_an_input_the_model_ignores_leaves_the_estimate_reliable(
    house_estimates: dict[str, Assessment],
) -> None:
    """`age` has no importance: every window row is beyond its range, and that does not count."""
    old = house_estimates["old"]
    assert old.reliable, old.reasons
    assert old.domain_auc == pytest.approx(0.5, abs=0.07)


def test_unseen_categories_of_an_important_input_make_the_estimate_unreliable(
    houses: dict[str, pd.DataFrame],
) -> None:
    window = houses["same"].drop(columns="price").head(400).copy()
    window.loc[: len(window) // 2, "area"] = "harbour"
    assessment = assess_estimate(REGRESSION, houses["holdout"], window)
    assert any("outside the holdout's categories of area" in reason for reason in assessment.reasons)


def test_the_domain_classifier_tells_disjoint_rows_apart_and_not_alike_ones() -> None:
    rng = np.random.default_rng(0)
    categorical = np.array([False, False])
    reference = rng.normal(0.0, 1.0, (400, 2))
    alike = domain_shift(reference, rng.normal(0.0, 1.0, (3000, 2)), categorical)
    apart = domain_shift(reference, rng.normal(0.0, 1.0, (3000, 2)) + 20.0, categorical)
    assert alike.auc == pytest.approx(0.5, abs=0.06)
    assert apart.auc > 0.99
    assert alike.weights.mean() == pytest.approx(1.0)
    assert alike.effective_rows > 0.5 * len(reference) > apart.effective_rows


def test_the_window_sample_is_bounded_and_the_same_on_every_run() -> None:
    assert len(window_sample(20_000)) == 5_000
    assert np.array_equal(window_sample(20_000), window_sample(20_000))
    assert np.array_equal(window_sample(30), np.arange(30))


def _customers(rows: int, seed: int, usage_shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    usage = rng.normal(0.0, 1.5, rows) + usage_shift
    tenure = rng.normal(0.0, 1.0, rows)
    churned = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(2.0 * usage + tenure)))).astype("int64")
    return pd.DataFrame({"usage": usage, "tenure": tenure, "churned": churned})


def test_cbpe_on_the_reweighted_holdout_is_reliable_alike_and_unreliable_far_away() -> None:
    train = _customers(1500, seed=11)
    model = LogisticRegression().fit(train[["usage", "tenure"]], train["churned"])
    holdout, same, far = _customers(500, 12), _customers(2000, 13), _customers(2000, 14, usage_shift=9.0)
    for frame in (holdout, same, far):
        frame[PROBABILITY] = model.predict_proba(frame[["usage", "tenure"]])[:, 1]
    alike = assess_estimate(CLASSIFICATION, holdout, same.drop(columns="churned"))
    realized = holdout_metrics("classification", same["churned"].to_numpy(), same[PROBABILITY].to_numpy())
    assert alike.reliable
    assert alike.metrics["roc_auc"] == pytest.approx(realized["roc_auc"], abs=0.03)
    away = assess_estimate(CLASSIFICATION, holdout, far.drop(columns="churned"))
    assert not away.reliable
    assert away.domain_auc > 0.97


def test_a_window_of_a_few_rows_is_estimated_without_a_domain_classifier(
    houses: dict[str, pd.DataFrame],
) -> None:
    """Too few rows to cross-fit: equal weights, no AUC, and still an estimate."""
    few = assess_estimate(REGRESSION, houses["holdout"], houses["same"].drop(columns="price").head(3))
    assert few.domain_auc is None
    assert few.effective_rows == pytest.approx(500)
    assert few.metrics["rmse"] > 0


def test_a_model_that_misses_its_holdout_one_way_marks_every_window_unreliable(
    houses: dict[str, pd.DataFrame],
) -> None:
    """Prices that rose since training at the same inputs (concept drift): the estimate is not trusted."""
    risen = houses["holdout"].assign(price=lambda frame: frame["price"] + 1.5)
    window = houses["same"].drop(columns="price")
    assessment = assess_estimate(REGRESSION, risen, window, {"size": 0.9, "age": 0.0, "area": 0.1})
    assert not assessment.reliable
    assert assessment.domain_auc == pytest.approx(0.5, abs=0.07)  # the inputs did not move
    assert len(assessment.reasons) == 1
    lean = (risen["price"] - risen[PREDICTION]).mean()
    assert f"the true values lie above the predictions by {lean:.4g} on average" in assessment.reasons[0]


def test_a_lean_within_the_noise_is_not_a_reason(houses: dict[str, pd.DataFrame]) -> None:
    """A small systematic miss (under a tenth of the squared error) leaves the window reliable."""
    nudged = houses["holdout"].assign(price=lambda frame: frame["price"] + 0.3)
    assessment = assess_estimate(REGRESSION, nudged, houses["same"].drop(columns="price"))
    assert assessment.reliable, assessment.reasons


def test_rows_outside_the_spec_row_bounds_make_the_estimate_unreliable(
    houses: dict[str, pd.DataFrame],
) -> None:
    """The model never learnt from sizes above 2: one such row in the window is enough to say so."""
    bounded = dataclasses.replace(REGRESSION, row_bounds=(("size", -2.5, 2.0),))
    window = houses["same"].drop(columns="price").query("-2.5 <= size <= 2.0").head(600).copy()
    assert assess_estimate(bounded, houses["holdout"], window).reliable
    window.loc[window.index[:3], "size"] = [2.5, 3.0, -3.0]
    reasons = assess_estimate(bounded, houses["holdout"], window).reasons
    assert reasons == [
        (
            "the window holds rows outside the spec's row_bounds, which the model was neither trained nor "
            "checked on (1 with size below -2.5; 2 with size above 2)"
        )
    ]


def test_a_holdout_missed_by_the_same_amount_everywhere_leans(houses: dict[str, pd.DataFrame]) -> None:
    """Every error alike (no spread at all) is the clearest lean, not a division by zero."""
    holdout = houses["holdout"].assign(price=lambda frame: frame[PREDICTION] + 2.0)
    assessment = assess_estimate(REGRESSION, holdout, houses["same"].drop(columns="price"))
    assert any(
        "lie above the predictions by 2 on average (100% of the squared error" in r
        for r in assessment.reasons
    )
