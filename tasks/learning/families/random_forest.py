"""Random forests (on Ames the largest trial deflates to about 1.1 MB of ONNX)."""

from __future__ import annotations

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from tasks.learning.families import ModelFamily, SearchSpace


def _space(max_features: BaseDistribution) -> SearchSpace:
    return {
        "n_estimators": IntDistribution(50, 150),
        "max_depth": IntDistribution(4, 12),
        "min_samples_leaf": IntDistribution(1, 10),
        "max_features": max_features,
    }


FAMILY = ModelFamily(
    name="random_forest",
    estimators={
        "regression": lambda seed: RandomForestRegressor(
            n_estimators=120, max_depth=12, min_samples_leaf=2, max_features=0.3, n_jobs=2, random_state=seed
        ),
        "classification": lambda seed: RandomForestClassifier(
            n_estimators=120,
            max_depth=12,
            min_samples_leaf=2,
            max_features="sqrt",
            n_jobs=2,
            random_state=seed,
        ),
    },
    search_spaces={
        "regression": _space(FloatDistribution(0.1, 0.6)),
        "classification": _space(CategoricalDistribution(["sqrt", "log2", 0.3])),
    },
    listing_order=2,
)
