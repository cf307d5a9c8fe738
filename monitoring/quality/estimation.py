"""Performance estimation without labels: the model's primary metric on live rows, before any label arrives.

The methods are NannyML's (docs, "Confidence-based Performance Estimation (CBPE)" and "Direct
Loss Estimation (DLE)", https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html):

- Regression, DLE: a "nanny" model learns the model's loss from its inputs and its prediction
  on the holdout (rows the model never trained on), then predicts the loss of each live row.
  NannyML uses LightGBM; here it is scikit-learn's histogram gradient boosting.
- Binary classification, CBPE: the holdout calibrates the positive-class score (isotonic
  regression), and each live row counts as p_i of a positive and 1 - p_i of a negative, which
  gives an expected confusion matrix at every threshold and so an expected ROC curve.

Both detect degradation from covariate shift (rows moving to where the model is worse); neither
can see concept drift (the same inputs now meaning a different target).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import mean_poisson_deviance
from sklearn.model_selection import KFold, StratifiedShuffleSplit
from sklearn.preprocessing import OrdinalEncoder

from deployments.lambda_handler.contract import DEFAULT_METRICS, PREDICTION, PROBABILITY, ServingSchema

MIN_REFERENCE_ROWS = 30
MAX_LEVELS = 250  # rarer categories share one level: histogram boosting takes at most 255 bins
SEED = 0
FOLDS = 5
BOOSTING_ROUNDS = (10, 25, 50, 100, 200)  # candidates for the loss model, chosen by cross-validation

Estimator = Callable[[pd.DataFrame], dict[str, float]]
ESTIMATED_METRICS = {"regression": ("rmse", "mae"), "classification": ("roc_auc", "accuracy")}


def estimated_metric(schema: ServingSchema) -> str:
    """What the monitor estimates and charts: the model's metric, else the task's default."""
    return schema.metric if schema.metric in ESTIMATED_METRICS[schema.task] else DEFAULT_METRICS[schema.task]


def estimate_performance(
    schema: ServingSchema, reference: pd.DataFrame, current: pd.DataFrame
) -> dict[str, float]:
    """Estimated primary metric (and a few companions) of `current` rows, which carry no labels."""
    estimator = fit_estimator(schema, reference)
    return {} if estimator is None else estimator(current)


def estimate_by_chunk(
    schema: ServingSchema, reference: pd.DataFrame, current: pd.DataFrame, chunk_rows: int
) -> list[dict[str, float]]:
    """Estimates for consecutive chunks of `chunk_rows` rows of `current`, from one fitted estimator."""
    estimator = fit_estimator(schema, reference)
    chunks = [current.iloc[start : start + chunk_rows] for start in range(0, len(current), chunk_rows)]
    return [{} if estimator is None else estimator(chunk) for chunk in chunks]


def usable_reference(schema: ServingSchema, reference: pd.DataFrame) -> pd.DataFrame:
    """The holdout rows an estimator learns from: those with a target and a score."""
    return reference[reference[schema.target].notna() & reference[schema.score_column].notna()]


def fit_estimator(
    schema: ServingSchema, reference: pd.DataFrame, weights: np.ndarray | None = None
) -> Estimator | None:
    """Learn from the holdout how to estimate a metric; None when it cannot (too few rows, one class).

    `weights` (one per row of `usable_reference`) re-weight the holdout towards the live rows
    (importance weights, as NannyML's PAPE and M-CBPE do); None weighs every row alike.
    """
    score = schema.score_column
    reference = usable_reference(schema, reference)
    if len(reference) < MIN_REFERENCE_ROWS:
        return None
    weights = np.ones(len(reference)) if weights is None else np.asarray(weights, dtype="float64")
    if schema.task == "regression":
        return _fit_dle(schema, reference, weights)
    actual, scores = reference[schema.target].to_numpy(dtype="int64"), reference[score].to_numpy("float64")
    return _fit_cbpe(actual, scores, weights)


# --- regression: direct loss estimation -----------------------------------------------------
def fitted_encoder(schema: ServingSchema, reference: pd.DataFrame) -> OrdinalEncoder:
    """Ordinal codes of the holdout's categories; rare ones share a level, unseen ones are NaN."""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=MAX_LEVELS,
    )
    if schema.categorical:
        encoder.fit(_categories(reference, schema))
    return encoder


def _fit_dle(schema: ServingSchema, reference: pd.DataFrame, weights: np.ndarray) -> Estimator:
    # inputs expected to move by design (`monitor_exclude`, such as a sale year) leave the holdout's
    # range in every later window: a loss learnt along them would only be extrapolated, flat
    kept = tuple(feature for feature in schema.features if feature.name not in schema.monitor_exclude)
    schema = dataclasses.replace(schema, features=kept)
    encoder = fitted_encoder(schema, reference)
    inputs = encoded_inputs(reference, schema, encoder)
    error = reference[PREDICTION].to_numpy("float64") - reference[schema.target].to_numpy("float64")
    squared = _nanny(schema, inputs, error**2, weights)
    absolute = _nanny(schema, inputs, np.abs(error), weights)

    def estimate(current: pd.DataFrame) -> dict[str, float]:
        current = current[current[PREDICTION].notna()] if PREDICTION in current.columns else current[:0]
        if current.empty:
            return {}
        rows = encoded_inputs(current, schema, encoder)
        return {
            "rmse": float(np.sqrt(np.mean(squared(rows)))),
            "mae": float(np.mean(absolute(rows))),
        }

    return estimate


def _nanny(
    schema: ServingSchema, inputs: np.ndarray, loss: np.ndarray, weights: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """A small, regularised booster of the loss's conditional mean: it learns from a few hundred rows.

    The loss is fitted with a Poisson deviance (log link) on loss / mean loss: the estimate is still
    the mean loss, but the model is multiplicative, so a few huge holdout errors raise the estimate
    of rows like them, and the regularisation does not depend on the target's units. The number of
    boosting rounds is chosen by 5-fold cross-validation on the holdout: a holdout of a few hundred
    rows supports only a few rounds before the booster memorises its largest errors.
    """
    scale = float(np.average(loss, weights=weights))
    if scale <= 0:  # a perfect holdout: nothing to learn
        return lambda rows: np.zeros(len(rows))
    categorical = np.zeros(inputs.shape[1], dtype=bool)
    categorical[len(schema.numeric) : len(schema.numeric) + len(schema.categorical)] = True
    target = loss / scale
    rounds = _rounds_by_cross_validation(inputs, target, weights, categorical)
    model = _booster(categorical, rounds).fit(inputs, target, sample_weight=_booster_weights(weights))
    return lambda rows: scale * model.predict(rows)


def _booster_weights(weights: np.ndarray) -> np.ndarray | None:
    """None when every weight is the same: the booster then bins on plain quantiles, many times faster."""
    return None if np.all(weights == weights[0]) else weights


def _booster(categorical: np.ndarray, rounds: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss="poisson",
        learning_rate=0.05,
        max_iter=rounds,
        max_depth=3,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features=categorical,
        early_stopping=False,
        random_state=SEED,
    )


def _rounds_by_cross_validation(
    inputs: np.ndarray, target: np.ndarray, weights: np.ndarray, categorical: np.ndarray
) -> int:
    """The candidate number of rounds with the least mean (weighted) Poisson deviance on held-out folds.

    One booster of the most rounds per fold, read at every candidate through its staged
    predictions: without early stopping, its first n rounds are the booster of n rounds.
    """
    deviances: dict[int, list[float]] = {rounds: [] for rounds in BOOSTING_ROUNDS}
    for fit_rows, test_rows in KFold(FOLDS, shuffle=True, random_state=SEED).split(inputs):
        booster = _booster(categorical, max(BOOSTING_ROUNDS))
        model = booster.fit(
            inputs[fit_rows], target[fit_rows], sample_weight=_booster_weights(weights[fit_rows])
        )
        for done, predicted in enumerate(model.staged_predict(inputs[test_rows]), start=1):
            if done in deviances:
                deviances[done].append(
                    mean_poisson_deviance(
                        target[test_rows], np.clip(predicted, 1e-9, None), sample_weight=weights[test_rows]
                    )
                )
    return min(BOOSTING_ROUNDS, key=lambda rounds: float(np.mean(deviances[rounds])))


def _categories(frame: pd.DataFrame, schema: ServingSchema) -> pd.DataFrame:
    """Categorical inputs as text, with NaN for missing (and absent) values."""
    out = pd.DataFrame(index=frame.index)
    for name in schema.categorical:
        column = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
        present = column.notna() & (column.astype(str) != "")
        out[name] = column.astype(str).where(present, np.nan).astype(object)
    return out


def encoded_inputs(frame: pd.DataFrame, schema: ServingSchema, encoder: OrdinalEncoder) -> np.ndarray:
    """Numbers, ordinal-coded categories (unseen and missing as NaN) and the score, as floats.

    The score is the prediction (regression) or the positive-class probability (classification).
    """
    numbers = [
        pd.to_numeric(frame[name], errors="coerce").to_numpy("float64")
        if name in frame.columns
        else np.full(len(frame), np.nan)
        for name in schema.numeric
    ]
    codes = encoder.transform(_categories(frame, schema)) if schema.categorical else np.empty((len(frame), 0))
    score = pd.to_numeric(frame[schema.score_column], errors="coerce").to_numpy("float64")
    return np.column_stack([*numbers, codes, score]).astype("float64")


# --- binary classification: confidence-based performance estimation -----------------------
def _fit_cbpe(actual: np.ndarray, score: np.ndarray, weights: np.ndarray) -> Estimator | None:
    if np.bincount(actual, minlength=2).min() < 2:  # noqa: PLR2004 - calibration needs both classes
        return None
    calibrate = (
        _isotonic().fit(score, actual, sample_weight=weights).predict
        if _needs_calibration(actual, score, weights)
        else np.asarray
    )

    def estimate(current: pd.DataFrame) -> dict[str, float]:
        if PROBABILITY not in current.columns:
            return {}
        live = current[PROBABILITY].dropna().to_numpy("float64")
        if len(live) == 0:
            return {}
        probability = np.clip(calibrate(live), 0.0, 1.0)
        auc = expected_roc_auc(live, probability)
        predicted = live >= 0.5  # noqa: PLR2004 - the threshold of the holdout metrics
        accuracy = float(np.mean(np.where(predicted, probability, 1.0 - probability)))
        return {"accuracy": accuracy} if np.isnan(auc) else {"roc_auc": auc, "accuracy": accuracy}

    return estimate


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")


def _needs_calibration(actual: np.ndarray, score: np.ndarray, weights: np.ndarray, splits: int = 10) -> bool:
    """NannyML's check: isotonic calibration lowers the expected calibration error on held-out rows.

    With importance weights (M-CBPE) both the calibration and the error are weighted.
    """
    held_out = StratifiedShuffleSplit(n_splits=splits, test_size=0.1, random_state=SEED).split(score, actual)
    truth, raw, calibrated, weight = [], [], [], []
    for train, test in held_out:
        truth.append(actual[test])
        raw.append(score[test])
        weight.append(weights[test])
        isotonic = _isotonic().fit(score[train], actual[train], sample_weight=weights[train])
        calibrated.append(isotonic.predict(score[test]))
    truths, weighed = np.concatenate(truth), np.concatenate(weight)
    return _calibration_error(truths, np.concatenate(calibrated), weighed) < _calibration_error(
        truths, np.concatenate(raw), weighed
    )


def _calibration_error(
    actual: np.ndarray, probability: np.ndarray, weights: np.ndarray, bins: int = 10
) -> float:
    """Expected (weighted) calibration error over equal-count bins of the probability."""
    gaps = []
    for group in np.array_split(np.argsort(probability, kind="stable"), bins):
        weight = weights[group]
        if weight.sum() > 0:
            gap = np.average(probability[group], weights=weight) - np.average(actual[group], weights=weight)
            gaps.append(weight.sum() * abs(gap))
    return float(sum(gaps) / weights.sum())


def expected_roc_auc(score: np.ndarray, probability: np.ndarray) -> float:
    """Area under the ROC curve expected when row i is positive with `probability[i]`; NaN if undefined.

    Thresholds run over the distinct scores, so tied rows move the curve together (a diagonal step).
    """
    order = np.argsort(-score, kind="stable")
    score, probability = score[order], probability[order]
    last_of_tie = np.r_[score[1:] != score[:-1], True]
    positives = np.cumsum(probability)[last_of_tie]
    negatives = np.cumsum(1.0 - probability)[last_of_tie]
    if positives[-1] <= 0 or negatives[-1] <= 0:
        return float("nan")
    true_positive_rate = np.r_[0.0, positives / positives[-1]]
    false_positive_rate = np.r_[0.0, negatives / negatives[-1]]
    return float(np.trapezoid(true_positive_rate, false_positive_rate))
