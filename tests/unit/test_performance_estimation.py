"""Performance estimation without labels, against the metric the labels would have given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from deployments.lambda_handler.contract import PREDICTION, PROBABILITY
from monitoring.quality.estimation import estimate_by_chunk, estimate_performance, expected_roc_auc
from monitoring.quality.live_quality import quality_drop
from tasks.core.metrics import holdout_metrics
from tests.support.toy_schemas import CLASSIFICATION, REGRESSION

AREA_EFFECT = {"north": 0.0, "south": 2.0, "east": -1.0}


def _houses(rows: int, seed: int, size_mean: float = 0.0) -> pd.DataFrame:
    """The noise grows with size (heteroscedastic), so larger houses are priced less exactly."""
    rng = np.random.default_rng(seed)
    size = rng.normal(size_mean, 1.0, rows)
    age = rng.normal(0.0, 1.0, rows)
    area = rng.choice(list(AREA_EFFECT), rows)
    noise = (0.5 + 3.0 / (1.0 + np.exp(-2.0 * size))) * rng.normal(0.0, 1.0, rows)
    price = 3.0 * size - 2.0 * age + pd.Series(area).map(AREA_EFFECT).to_numpy() + noise
    return pd.DataFrame({"size": size, "age": age, "area": area, "price": price})


@pytest.fixture(scope="module")
def regression() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A holdout reference, a window like it and a window shifted toward large (noisy) houses."""
    encode = ColumnTransformer([("area", OneHotEncoder(), ["area"])], remainder="passthrough")
    model = Pipeline([("encode", encode), ("fit", LinearRegression())])
    train = _houses(1500, seed=1)
    model.fit(train[["size", "age", "area"]], train["price"])
    frames = (_houses(500, seed=2), _houses(2000, seed=3), _houses(2000, seed=4, size_mean=1.5))
    for frame in frames:
        frame[PREDICTION] = model.predict(frame[["size", "age", "area"]])
    return frames


def _rmse(frame: pd.DataFrame) -> float:
    return holdout_metrics("regression", frame["price"].to_numpy(), frame[PREDICTION].to_numpy())["rmse"]


def test_dle_estimates_rmse_and_sees_covariate_shift_degrade_it(
    regression: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, same, shifted = regression
    estimated_same = estimate_performance(REGRESSION, reference, same.drop(columns="price"))
    estimated_shifted = estimate_performance(REGRESSION, reference, shifted.drop(columns="price"))
    assert estimated_same["rmse"] == pytest.approx(_rmse(same), rel=0.1)
    assert estimated_shifted["rmse"] == pytest.approx(_rmse(shifted), rel=0.1)
    assert estimated_shifted["rmse"] > 1.3 * estimated_same["rmse"]
    realized_mae = np.mean(np.abs(shifted["price"] - shifted[PREDICTION]))
    assert estimated_shifted["mae"] == pytest.approx(realized_mae, rel=0.15)


def test_dle_survives_unseen_categories_missing_values_and_absent_columns(
    regression: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, same, _ = regression
    current = same.drop(columns=["price", "age"]).head(50).copy()
    current.loc[:9, "area"] = "harbour"
    current.loc[10:19, "area"] = None
    current.loc[20:29, "size"] = np.nan
    estimate = estimate_performance(REGRESSION, reference, current)
    assert set(estimate) == {"rmse", "mae"}
    assert all(np.isfinite(value) and value > 0 for value in estimate.values())


def test_estimates_are_deterministic_and_chunked_estimates_cover_every_row(
    regression: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, same, _ = regression
    current = same.drop(columns="price")
    assert estimate_performance(REGRESSION, reference, current) == estimate_performance(
        REGRESSION, reference, current
    )
    chunks = estimate_by_chunk(REGRESSION, reference, current, chunk_rows=800)
    assert len(chunks) == 3
    assert all(chunk["rmse"] > 0 for chunk in chunks)


def test_nothing_is_estimated_from_too_little_data(
    regression: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, same, _ = regression
    current = same.drop(columns="price")
    assert estimate_performance(REGRESSION, reference, current.head(0)) == {}
    assert estimate_performance(REGRESSION, reference.head(29), current) == {}
    assert estimate_performance(REGRESSION, reference.head(30), current) != {}


def _customers(rows: int, seed: int, usage_scale: float = 1.5) -> pd.DataFrame:
    """Churn follows a logistic model; a small usage spread crowds rows where the odds are even."""
    rng = np.random.default_rng(seed)
    usage = rng.normal(0.0, usage_scale, rows)
    tenure = rng.normal(0.0, 1.0, rows)
    churned = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(2.0 * usage + tenure)))).astype("int64")
    return pd.DataFrame({"usage": usage, "tenure": tenure, "churned": churned})


@pytest.fixture(scope="module")
def classification() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A holdout reference, a window like it and a window shifted toward the uncertain middle."""
    train = _customers(1500, seed=11)
    model = LogisticRegression().fit(train[["usage", "tenure"]], train["churned"])
    frames = (_customers(500, seed=12), _customers(2000, seed=13), _customers(2000, seed=14, usage_scale=0.4))
    for frame in frames:
        frame[PROBABILITY] = model.predict_proba(frame[["usage", "tenure"]])[:, 1]
        frame[PREDICTION] = np.where(frame[PROBABILITY] >= 0.5, "yes", "no")
    return frames


def _roc_auc(frame: pd.DataFrame) -> float:
    return holdout_metrics("classification", frame["churned"].to_numpy(), frame[PROBABILITY].to_numpy())[
        "roc_auc"
    ]


def test_cbpe_estimates_roc_auc_and_sees_covariate_shift_degrade_it(
    classification: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, same, shifted = classification
    estimated_same = estimate_performance(CLASSIFICATION, reference, same.drop(columns="churned"))
    estimated_shifted = estimate_performance(CLASSIFICATION, reference, shifted.drop(columns="churned"))
    assert estimated_same["roc_auc"] == pytest.approx(_roc_auc(same), abs=0.03)
    assert estimated_shifted["roc_auc"] == pytest.approx(_roc_auc(shifted), abs=0.03)
    assert estimated_shifted["roc_auc"] < estimated_same["roc_auc"] - 0.05
    accuracy = holdout_metrics(
        "classification", shifted["churned"].to_numpy(), shifted[PROBABILITY].to_numpy()
    )
    assert estimated_shifted["accuracy"] == pytest.approx(accuracy["accuracy"], abs=0.03)


def test_cbpe_needs_both_classes_in_the_reference(
    classification: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
) -> None:
    reference, same, _ = classification
    one_class = reference[reference["churned"] == 0]
    assert len(one_class) >= 30
    assert estimate_performance(CLASSIFICATION, one_class, same.drop(columns="churned")) == {}
    assert estimate_performance(CLASSIFICATION, reference, same.drop(columns="churned").head(0)) == {}


def test_expected_roc_auc_with_certain_labels_is_the_ordinary_roc_auc_ties_included() -> None:
    rng = np.random.default_rng(5)
    score = np.round(rng.random(400), 1)  # many ties
    actual = (rng.random(400) < score).astype("float64")
    realized = holdout_metrics("classification", actual.astype("int64"), score)["roc_auc"]
    assert expected_roc_auc(score, actual) == pytest.approx(realized, abs=1e-12)
    assert np.isnan(expected_roc_auc(np.array([0.2, 0.9]), np.zeros(2)))  # no positive expected


def test_a_window_without_an_estimated_roc_auc_has_no_quality_drop() -> None:
    """Calibrated probabilities all 0 leave ROC AUC undefined: no drop, rather than a failed run."""
    rng = np.random.default_rng(7)
    score = rng.uniform(0, 1, 400)
    reference = pd.DataFrame(
        {PROBABILITY: np.sqrt(score), "churned": (rng.uniform(0, 1, 400) < score).astype(int)}
    )
    window = pd.DataFrame({PROBABILITY: [0.01, 0.005]})
    estimated = estimate_performance(CLASSIFICATION, reference, window)
    assert "roc_auc" not in estimated
    assert quality_drop(CLASSIFICATION, estimated, {"roc_auc": 0.8, "accuracy": 0.7}) is None
