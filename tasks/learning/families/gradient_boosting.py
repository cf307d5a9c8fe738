"""scikit-learn's gradient boosting (600 trees of depth 5 deflate to about 0.15 MB of ONNX)."""

from __future__ import annotations

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

from tasks.learning.families import ModelFamily, SearchSpace

SPACE: SearchSpace = {
    "n_estimators": IntDistribution(100, 600, log=True),
    "learning_rate": FloatDistribution(0.02, 0.2, log=True),
    "max_depth": IntDistribution(2, 5),
    "subsample": FloatDistribution(0.5, 1.0),
    "min_samples_leaf": IntDistribution(1, 20),
    "max_features": CategoricalDistribution([None, 0.5, 0.25, "sqrt"]),
}

FAMILY = ModelFamily(
    name="gradient_boosting",
    estimators={
        "regression": lambda seed: GradientBoostingRegressor(
            n_estimators=500, learning_rate=0.05, max_depth=3, subsample=0.8, random_state=seed
        ),
        "classification": lambda seed: GradientBoostingClassifier(
            n_estimators=300, learning_rate=0.05, max_depth=3, subsample=0.8, random_state=seed
        ),
    },
    search_spaces={"regression": SPACE, "classification": SPACE},
    listing_order=3,
)
