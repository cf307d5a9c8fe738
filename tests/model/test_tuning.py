"""Tuning: cross-validation on the training rows only, a budget per family, the fixed parameters first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.core.dataset_spec import AMES_SPEC, DatasetSpec
from tasks.learning.candidate_selection import fit_candidate
from tasks.learning.candidates import FAMILIES, LOG_TARGET, build_pipeline, model_params
from tasks.learning.cross_validation import (
    TrialScore,
    cv_folds,
    log_target_eligible,
    prefers_log_target,
    score_trial,
)
from tasks.learning.data import PreparedData, prepare_data, read_table
from tasks.learning.onnx_export import check_size, convert_pipeline
from tasks.learning.split import Split, split_data
from tasks.learning.tuning import TuningBudget, TuningResult, fixed_params, tune_families


@dataclass(frozen=True)
class Deferred:
    """A trial run when its result is asked for: like a task runner's future, without the runner."""

    run: Callable[[], TrialScore]

    def result(self) -> TrialScore:
        return self.run()


def _submitter(data: PreparedData, split: Split, seed: int = 0) -> Callable[[str, dict], Deferred]:
    folds = cv_folds(data, split, seed)

    def submit(family: str, params: dict) -> Deferred:
        return Deferred(lambda: score_trial(family, params, data, split, folds, seed))

    return submit


def _prepared(path: Path, task: str, time_column: str | None = None) -> PreparedData:
    spec = DatasetSpec(
        name=path.stem, target="target", task=task, drop=[], categorical=[], time_column=time_column
    )
    return prepare_data(read_table(str(path), spec.missing_values), spec, str(path), 50)


@pytest.fixture(scope="module")
def diabetes(diabetes_csv: Path) -> tuple[PreparedData, Split]:
    data = _prepared(diabetes_csv, "regression")
    return data, split_data(data, None, 0.2, 7)


@pytest.fixture(scope="module")
def ames(ames_csv: Path) -> tuple[PreparedData, Split]:
    data = prepare_data(read_table(str(ames_csv), AMES_SPEC.missing_values), AMES_SPEC, str(ames_csv), 50)
    return data, split_data(data, None, 0.2, 42)


def _scores(results: dict[str, TuningResult]) -> dict[str, pd.DataFrame]:
    return {family: result.table().drop(columns=["seconds"]) for family, result in results.items()}


def test_tuning_never_fits_or_scores_a_holdout_row(diabetes) -> None:
    data, split = diabetes
    # Poisoned holdout: targets a million times larger, inputs far outside the training range.
    # Any holdout row in a fold's fit or score would change the trial scores.
    numeric = split.holdout[data.numeric] * 1000.0
    poisoned = split.holdout.assign(**{name: numeric[name] for name in data.numeric})
    poisoned[data.target] = poisoned[data.target] * 1e6
    poisoned_split = replace(split, holdout=poisoned)
    budget = TuningBudget(trials=4)

    clean = tune_families(["ridge", "lightgbm"], data, split, _submitter(data, split), budget, seed=0)
    dirty = tune_families(
        ["ridge", "lightgbm"], data, poisoned_split, _submitter(data, poisoned_split), budget, seed=0
    )

    for family, table in _scores(clean).items():
        pd.testing.assert_frame_equal(table, _scores(dirty)[family])
        assert (table["state"] == "complete").all()
        assert table["cv_rmse"].between(40, 80).all()  # diabetes scale; poisoned rows would be ~1e8
    folds = cv_folds(data, split, 0)
    scored = np.sort(np.concatenate([rows for _, rows in folds]))
    np.testing.assert_array_equal(scored, np.arange(len(split.train)))  # each training row scored once
    assert all(fit.max() < len(split.train) for fit, _ in folds)


def test_time_split_folds_fit_on_the_past_and_score_later_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"x": rng.normal(size=200), "day": rng.permutation(200)})
    frame["target"] = 2 * frame["x"] + rng.normal(scale=0.1, size=200)
    frame.to_csv(tmp_path / "timed.csv", index=False)
    data = _prepared(tmp_path / "timed.csv", "regression", time_column="day")
    split = split_data(data, "day", 0.2, 0)
    assert split.method == "time:day"
    day = split.train["day"].to_numpy()
    folds = cv_folds(data, split, 0)
    assert len(folds) == 3
    for fit_rows, score_rows in folds:
        assert day[fit_rows].max() < day[score_rows].min()
        assert max(fit_rows.max(), score_rows.max()) < len(split.train)
    assert day.max() < split.holdout["day"].min()


def test_tuning_off_trains_the_fixed_parameters(diabetes) -> None:
    data, split = diabetes
    submitted: list[dict] = []

    def submit(family: str, params: dict) -> Deferred:
        submitted.append(params)
        return _submitter(data, split)(family, params)

    assert tune_families(["ridge", "lightgbm"], data, split, submit, TuningBudget(trials=0), seed=0) == {}
    assert submitted == []
    for family in ("ridge", "lightgbm"):
        untuned = fit_candidate(family, data, split, seed=0)
        fixed = TuningResult(family, fixed_params(family, data), "rmse", None)
        again = fit_candidate(family, data, split, seed=0, tuning=fixed)
        assert untuned.params == again.params
        assert untuned.params == model_params(build_pipeline(family, "regression", [], [], 0))
        np.testing.assert_array_equal(
            untuned.pipeline.predict(split.holdout[data.features]),
            again.pipeline.predict(split.holdout[data.features]),
        )


def test_first_trial_scores_the_fixed_parameters_and_the_best_is_kept(breast_cancer_csv: Path) -> None:
    data = _prepared(breast_cancer_csv, "classification")
    split = split_data(data, None, 0.2, 7)
    results = tune_families(
        list(FAMILIES["classification"]), data, split, _submitter(data, split), TuningBudget(trials=5), seed=1
    )
    for family, result in results.items():
        table = result.table()
        assert len(table) == 5
        assert result.trials[0].params == fixed_params(family, data)
        assert result.cv_score == pytest.approx(table["cv_roc_auc"].max())  # higher is better
        best = next(trial for trial in result.trials if trial.metrics["roc_auc"] == result.cv_score)
        assert best.params == result.params
        assert LOG_TARGET not in table.columns  # classification never transforms its target


def test_a_failing_trial_is_told_as_failed_and_tuning_goes_on(diabetes) -> None:
    data, split = diabetes
    scorer = _submitter(data, split)
    calls = []

    def submit(family: str, params: dict) -> Deferred:
        calls.append(params)
        if len(calls) % 2 == 0:  # every second trial gets an invalid regularisation strength
            params = {**params, "alpha": -1.0}
        return scorer(family, params)

    result = tune_families(["ridge"], data, split, submit, TuningBudget(trials=6), seed=0)["ridge"]
    table = result.table()
    assert (table["state"] == ["complete", "failed"] * 3).all()
    assert table.loc[table["state"] == "failed", "error"].str.contains("alpha").all()
    assert result.cv_score == pytest.approx(table["cv_rmse"].min())


def test_budget_timeout_stops_asking_for_trials(diabetes) -> None:
    data, split = diabetes
    budget = TuningBudget(trials=50, timeout_seconds=1e-9)
    result = tune_families(["ridge"], data, split, _submitter(data, split), budget, seed=0)["ridge"]
    assert len(result.trials) == 4  # the first batch always runs; none starts after the limit
    assert result.cv_score is not None


def test_log_target_rule_and_eligibility(diabetes, ames) -> None:
    assert prefers_log_target({"rmse": 10.0, "rmsle": 0.2}, {"rmse": 10.5, "rmsle": 0.19}, "rmsle")
    assert not prefers_log_target({"rmse": 10.0, "rmsle": 0.2}, {"rmse": 10.5, "rmsle": 0.19}, "rmse")
    assert not prefers_log_target({"rmse": 10.0, "rmsle": 0.2}, {"rmse": 9.0, "rmsle": 0.2}, "rmsle")
    assert prefers_log_target({"r2": 0.8}, {"r2": 0.81}, "r2")  # higher is better
    assert not log_target_eligible(*diabetes)  # positive but hardly skewed
    assert log_target_eligible(*ames)  # sale prices: positive, skew about 1.7
    data, split = ames
    negative = replace(split, train=split.train.assign(**{data.target: split.train[data.target] - 200_000}))
    assert not log_target_eligible(data, negative)


def test_skewed_target_compares_log_target_by_cross_validation(ames) -> None:
    data, split = ames
    small = replace(split, train=split.train.iloc[:600])
    results = tune_families(
        ["ridge", "lightgbm"], data, small, _submitter(data, small), TuningBudget(trials=3), seed=0
    )
    for family, result in results.items():
        table = result.table()
        raw, log = result.trials[0], result.trials[1]
        assert raw.params == {**fixed_params(family, data), LOG_TARGET: False}
        assert log.params == {**fixed_params(family, data), LOG_TARGET: True}
        chosen = prefers_log_target(raw.metrics, log.metrics, data.metric)
        assert result.params.get(LOG_TARGET, False) == chosen
        assert (table[LOG_TARGET].iloc[2:] == chosen).all()  # later trials keep the decision


def test_training_weights_reach_every_fit(diabetes) -> None:
    data, split = diabetes
    folds = cv_folds(data, split, 0)
    ones = replace(split, train_weights=np.ones(len(split.train)))
    skewed = replace(split, train_weights=np.where(split.train["age"] > 0, 5.0, 0.2))
    params = fixed_params("ridge", data)
    plain = score_trial("ridge", params, data, split, folds, 0).metrics
    assert score_trial("ridge", params, data, ones, folds, 0).metrics == pytest.approx(plain)
    assert score_trial("ridge", params, data, skewed, folds, 0).metrics["rmse"] != pytest.approx(
        plain["rmse"]
    )
    holdout = split.holdout[data.features]
    unweighted = fit_candidate("lightgbm", data, split, 0).pipeline.predict(holdout)
    np.testing.assert_allclose(fit_candidate("lightgbm", data, ones, 0).pipeline.predict(holdout), unweighted)
    assert not np.allclose(fit_candidate("lightgbm", data, skewed, 0).pipeline.predict(holdout), unweighted)


@pytest.mark.parametrize(
    ("family", "largest"),
    [
        ("random_forest", {"n_estimators": 150, "max_depth": 12, "min_samples_leaf": 1, "max_features": 0.6}),
        (
            "lightgbm",
            {"n_estimators": 1000, "num_leaves": 31, "min_child_samples": 3, "colsample_bytree": 0.8},
        ),
    ],
)
def test_largest_models_of_a_search_space_fit_the_function_zip(ames, family: str, largest: dict) -> None:
    data, split = ames
    pipeline = build_pipeline(family, "regression", data.numeric, data.categorical, 0, largest)
    pipeline.fit(split.train[data.features], split.train[data.target])
    assert check_size(convert_pipeline(pipeline, data.numeric, data.categorical)) < 1_500_000
