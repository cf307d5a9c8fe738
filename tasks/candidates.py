"""Candidate scikit-learn pipelines, one per model family, all convertible to ONNX."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor
from skl2onnx.sklapi import CastTransformer
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from tasks.data import MISSING_CATEGORY
from tasks.dataset import TaskType

EstimatorFactory = Callable[[int], BaseEstimator]
LOG_TARGET = "log_target"  # in a candidate's params: the regressor learns log(target)

# Each family is sized to convert to a small ONNX graph (the function zip stays under 2 MB)
# and to fit Ames in seconds on two cores. LightGBM uses one thread: tuning runs trials side by
# side, and its OpenMP threads then fight for the cores (one fit took 300x longer with two).
LIGHTGBM_SHARED: dict[str, Any] = {
    "num_leaves": 15,
    "min_child_samples": 10,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.5,
    "n_jobs": 1,
    "verbose": -1,
}
FAMILIES: dict[TaskType, dict[str, EstimatorFactory]] = {
    "regression": {
        "ridge": lambda _seed: Ridge(alpha=10.0),
        "random_forest": lambda seed: RandomForestRegressor(
            n_estimators=120,
            max_depth=12,
            min_samples_leaf=2,
            max_features=0.3,
            n_jobs=2,
            random_state=seed,
        ),
        "gradient_boosting": lambda seed: GradientBoostingRegressor(
            n_estimators=500,
            learning_rate=0.05,
            max_depth=3,
            subsample=0.8,
            random_state=seed,
        ),
        "lightgbm": lambda seed: LGBMRegressor(
            n_estimators=600, learning_rate=0.03, random_state=seed, **LIGHTGBM_SHARED
        ),
    },
    "classification": {
        "logistic_regression": lambda _seed: LogisticRegression(C=1.0, max_iter=2000),
        "random_forest": lambda seed: RandomForestClassifier(
            n_estimators=120,
            max_depth=12,
            min_samples_leaf=2,
            max_features="sqrt",
            n_jobs=2,
            random_state=seed,
        ),
        "gradient_boosting": lambda seed: GradientBoostingClassifier(
            n_estimators=300,
            learning_rate=0.05,
            max_depth=3,
            subsample=0.8,
            random_state=seed,
        ),
        "lightgbm": lambda seed: LGBMClassifier(
            n_estimators=300, learning_rate=0.05, random_state=seed, **LIGHTGBM_SHARED
        ),
    },
}
LINEAR_FAMILIES = frozenset({"ridge", "logistic_regression"})
# LightGBM compares inputs with double thresholds; fed float32 values, as the ONNX graph is,
# its splits are exactly reproducible in float32 (see tasks.onnx_converters).
FLOAT32_FAMILIES = frozenset({"lightgbm"})


def build_preprocessor(numeric: list[str], categorical: list[str], *, scale: bool) -> ColumnTransformer:
    """Impute numbers with the median, categories with a 'missing' level, then one-hot encode."""
    numeric_steps: list[tuple[str, BaseEstimator]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    categorical_steps = [
        (
            "impute",
            SimpleImputer(strategy="constant", missing_values=MISSING_CATEGORY, fill_value="missing"),
        ),
        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
    ]
    transformers = [("numeric", Pipeline(numeric_steps), numeric)]
    if categorical:
        transformers.append(("categorical", Pipeline(categorical_steps), categorical))
    return ColumnTransformer(transformers)


def build_pipeline(
    family: str,
    task: TaskType,
    numeric: list[str],
    categorical: list[str],
    seed: int,
    params: Mapping[str, object] | None = None,
) -> Pipeline:
    """A preprocessing + estimator pipeline for one model family.

    `params` override the family's fixed hyperparameters; `log_target: True` (regression only)
    fits the estimator on log(target) and predicts in the target's units.
    """
    try:
        factory = FAMILIES[task][family]
    except KeyError:
        known = ", ".join(FAMILIES[task])
        msg = f"unknown {task} model family {family!r} (MLOPS_CANDIDATE_FAMILIES or families); known: {known}"
        raise ValueError(msg) from None
    overrides = dict(params or {})
    log_target = bool(overrides.pop(LOG_TARGET, False))
    model = factory(seed).set_params(**overrides)
    if log_target:
        if task != "regression":
            msg = f"{LOG_TARGET} applies to regression only"
            raise ValueError(msg)
        model = log_target_regressor(model)
    steps: list[tuple[str, BaseEstimator]] = [
        ("preprocess", build_preprocessor(numeric, categorical, scale=family in LINEAR_FAMILIES))
    ]
    if family in FLOAT32_FAMILIES:
        steps.append(("float32", CastTransformer(dtype=np.float32)))
    return Pipeline([*steps, ("model", model)])


def log_target_regressor(regressor: BaseEstimator) -> TransformedTargetRegressor:
    """`regressor` fitted on log(target), predicting exp of its output (ONNX: an `Exp` node)."""
    return TransformedTargetRegressor(
        regressor=regressor, func=np.log, inverse_func=np.exp, check_inverse=False
    )


def fit_pipeline(
    pipeline: Pipeline, features: pd.DataFrame, target: pd.Series, weights: np.ndarray | None
) -> Pipeline:
    """Fit the pipeline; training weights, when given, weight the estimator's fit (not preprocessing)."""
    if weights is None:
        return pipeline.fit(features, target)
    return pipeline.fit(features, target, model__sample_weight=weights)


def model_params(pipeline: Pipeline) -> dict[str, str]:
    """The estimator's hyperparameters as strings, with `log_target` when it learns log(target)."""
    model = pipeline.named_steps["model"]
    extra = {}
    if isinstance(model, TransformedTargetRegressor):
        model, extra = model.regressor, {LOG_TARGET: "True"}
    params = {key: str(value) for key, value in model.get_params().items() if value is not None}
    return {**params, **extra}
