"""Candidate scikit-learn pipelines: preprocessing and one family's estimator, convertible to ONNX."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from skl2onnx.sklapi import CastTransformer
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from deployments.lambda_handler.contract import MISSING_CATEGORY
from tasks.core.metric_names import TaskType
from tasks.learning.families import EstimatorFactory, family_for, family_names
from tasks.learning.log_target import LogTargetRegressor
from tasks.learning.skewed_inputs import SkewedLog

LOG_TARGET = "log_target"  # in a candidate's params: the regressor learns log(target)
# task -> family name -> estimator factory, in listing order (declared in `tasks.learning.families`)
FAMILIES: dict[TaskType, dict[str, EstimatorFactory]] = {
    task: {name: family_for(name, task).estimators[task] for name in family_names(task)}
    for task in ("regression", "classification")
}


def build_preprocessor(numeric: list[str], categorical: list[str], *, scale: bool) -> ColumnTransformer:
    """Impute numbers with the median, categories with a 'missing' level, then one-hot encode.

    With `scale` (linear models), numbers are then logged where skewed and standardised.
    """
    numeric_steps: list[tuple[str, BaseEstimator]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps += [("log_skewed", SkewedLog()), ("scale", StandardScaler())]
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
    declared = family_for(family, task)
    factory = declared.estimators[task]
    overrides = dict(params or {})
    log_target = bool(overrides.pop(LOG_TARGET, False))
    model = factory(seed).set_params(**overrides)
    if log_target:
        if task != "regression":
            msg = f"{LOG_TARGET} applies to regression only"
            raise ValueError(msg)
        model = log_target_regressor(model)
    steps: list[tuple[str, BaseEstimator]] = [
        ("preprocess", build_preprocessor(numeric, categorical, scale=declared.scale_inputs))
    ]
    if declared.float32_inputs:
        steps.append(("float32", CastTransformer(dtype=np.float32)))
    return Pipeline([*steps, ("model", model)])


def log_target_regressor(regressor: BaseEstimator) -> TransformedTargetRegressor:
    """`regressor` fitted on log(target), predicting exp of its output within the fitted range."""
    return LogTargetRegressor(regressor)


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
