"""Candidate scikit-learn pipelines, one per model family, all convertible to ONNX."""

from __future__ import annotations

from collections.abc import Callable

from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
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

# Each family is sized to convert to a small ONNX graph (the function zip stays under 2 MB)
# and to fit Ames in seconds on two cores.
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
    },
}
LINEAR_FAMILIES = frozenset({"ridge", "logistic_regression"})


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
    family: str, task: TaskType, numeric: list[str], categorical: list[str], seed: int
) -> Pipeline:
    """A preprocessing + estimator pipeline for one model family."""
    try:
        factory = FAMILIES[task][family]
    except KeyError:
        known = ", ".join(FAMILIES[task])
        msg = f"unknown {task} model family {family!r} (MLOPS_CANDIDATE_FAMILIES or families); known: {known}"
        raise ValueError(msg) from None
    preprocessor = build_preprocessor(numeric, categorical, scale=family in LINEAR_FAMILIES)
    return Pipeline([("preprocess", preprocessor), ("model", factory(seed))])
