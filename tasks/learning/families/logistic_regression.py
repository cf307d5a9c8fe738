"""Logistic regression: the linear baseline of classification."""

from __future__ import annotations

from optuna.distributions import FloatDistribution
from sklearn.linear_model import LogisticRegression

from tasks.learning.families import ModelFamily

FAMILY = ModelFamily(
    name="logistic_regression",
    estimators={"classification": lambda _seed: LogisticRegression(C=1.0, max_iter=2000)},
    search_spaces={"classification": {"C": FloatDistribution(0.001, 100.0, log=True)}},
    listing_order=1,
    scale_inputs=True,
)
