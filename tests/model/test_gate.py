"""The gate: a gain within the holdout's noise is a tie; the spec names the metric that ranks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deployments.lambda_handler.contract import ServingSchema
from tasks.core.dataset_spec import AMES_SPEC, DatasetSpec, DatasetSpecError, load_dataset_spec
from tasks.learning.candidate_selection import fit_candidate, rank_candidates
from tasks.learning.cross_validation import cv_folds
from tasks.learning.data import prepare_data, read_table
from tasks.learning.gate_statistics import bootstrap_interval, error_concentration, paired_bootstrap
from tasks.learning.onnx_export import pipeline_scores
from tasks.learning.promotion import decide_promotion, promotion_markdown
from tasks.learning.split import split_data


@pytest.fixture(scope="module")
def ames(ames_csv: Path):
    data = prepare_data(read_table(str(ames_csv), AMES_SPEC.missing_values), AMES_SPEC, str(ames_csv), 50)
    return data, split_data(data, None, 0.2, 42)


def _decide(metric: str, candidate: float, champion: float, share: float | None):
    return decide_promotion(
        metric,
        candidate,
        champion,
        "1",
        higher_is_better=False,
        margin=0.0,
        bootstrap_share=share,
        confidence=0.95,
    )


def test_a_gain_within_the_holdouts_noise_is_not_promoted(ames) -> None:
    """Two random forests differing only in their seed: one wins on the point score, not in resamples."""
    data, split = ames
    actual = split.holdout[data.target].to_numpy()
    fits = [fit_candidate("random_forest", data, split, seed) for seed in (0, 1)]
    scores = [pipeline_scores(fit.pipeline, split.holdout[data.features], data.task) for fit in fits]
    values = [fit.metrics[data.metric] for fit in fits]
    best, other = (0, 1) if values[0] < values[1] else (1, 0)
    assert values[best] < values[other]  # a point gain: the old gate promoted this
    share = paired_bootstrap(data.metric, data.task, actual, scores[best], scores[other])
    assert 0.05 < share < 0.95
    decision = _decide(data.metric, values[best], values[other], share)
    assert not decision.promoted
    assert "paired resamples" in decision.reason


def test_a_clear_gain_is_promoted(ames) -> None:
    data, split = ames
    actual = split.holdout[data.target].to_numpy()
    noise = np.random.default_rng(0).normal(0, 40_000, len(actual))
    good, bad = actual + noise / 4, actual + noise
    share = paired_bootstrap("rmse", data.task, actual, good, bad)
    assert share == 1.0
    assert _decide("rmse", 10_000.0, 40_000.0, share).promoted


def test_classification_bootstrap_resamples_the_rank_metric() -> None:
    rng = np.random.default_rng(1)
    actual = rng.integers(0, 2, 400).astype("float64")
    sharp = np.clip(actual * 0.6 + rng.uniform(0, 0.4, 400), 0, 1)
    blurred = rng.uniform(0, 1, 400)
    assert paired_bootstrap("roc_auc", "classification", actual, sharp, blurred) == 1.0
    assert paired_bootstrap("log_loss", "classification", actual, blurred, sharp) == 0.0


def test_the_largest_errors_share_is_reported() -> None:
    actual = np.full(100, 100.0)
    scores = actual.copy()
    scores[:2] += 50.0
    scores[2:] += 1.0
    assert error_concentration("rmse", "regression", actual, scores, top=2) == pytest.approx(5000 / 5098)


def test_the_holdout_interval_holds_the_score_and_narrows_with_more_rows() -> None:
    """The same model error on 200 and on 5,000 rows: the interval shrinks about as 1/sqrt(rows)."""
    rng = np.random.default_rng(2)
    widths = []
    for rows in (200, 5000):
        actual = rng.uniform(100_000, 300_000, rows)
        scores = actual + rng.normal(0, 20_000, rows)
        score = float(np.sqrt(np.mean((scores - actual) ** 2)))
        interval = bootstrap_interval("rmse", "regression", actual, scores)
        assert interval is not None
        assert interval[0] < score < interval[1]
        widths.append(interval[1] - interval[0])
    assert widths[1] < widths[0] / 3  # 1/5 expected
    labels = rng.integers(0, 2, 400).astype("float64")
    probabilities = np.clip(labels * 0.3 + rng.uniform(0, 0.7, 400), 0, 1)
    low, high = bootstrap_interval("roc_auc", "classification", labels, probabilities) or (0.0, 0.0)
    assert 0.5 < low < high < 1.0
    assert bootstrap_interval("rmse", "regression", np.array([]), np.array([])) is None


def test_the_gate_artifact_shows_the_candidates_interval() -> None:
    decision = decide_promotion(
        "rmsle", 0.1204, None, None, higher_is_better=False, margin=0.0, interval=(0.0961, 0.1471)
    )
    assert decision.candidate_interval == (0.0961, 0.1471)
    assert "rmsle lies between 0.0961 and 0.1471 in 90% of them" in promotion_markdown(decision, "ensemble")


def test_the_spec_names_its_metric(tmp_path: Path) -> None:
    assert AMES_SPEC.primary_metric == "rmsle"
    assert DatasetSpec(task="classification", target="y").primary_metric == "roc_auc"
    spec = tmp_path / "spec.json"
    spec.write_text('{"name": "churn", "target": "y", "task": "classification", "metric": "rmse"}')
    with pytest.raises(DatasetSpecError, match="not a classification metric; one of roc_auc, log_loss"):
        load_dataset_spec(spec)


def test_bundles_without_a_metric_rank_by_the_tasks_default() -> None:
    old = {"task": "classification", "target": "y", "classes": ["0", "1"], "features": []}
    assert ServingSchema.from_dict(old).metric == "roc_auc"
    assert ServingSchema.from_dict({**old, "metric": "log_loss"}).metric == "log_loss"


def test_candidates_are_ranked_by_cross_validation_not_the_holdout(ames) -> None:
    data, split = ames
    folds = cv_folds(data, split, 0)
    candidates = [fit_candidate(family, data, split, 0, folds=folds) for family in ("ridge", "lightgbm")]
    assert all(data.metric in candidate.cv_metrics for candidate in candidates)
    ranked = rank_candidates(candidates, data)
    assert [c.cv_metrics[data.metric] for c in ranked] == sorted(
        c.cv_metrics[data.metric] for c in candidates
    )
