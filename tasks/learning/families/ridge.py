"""Ridge regression: the linear baseline of regression."""

from __future__ import annotations

from optuna.distributions import FloatDistribution
from sklearn.linear_model import Ridge

from tasks.learning.families import ModelFamily

FAMILY = ModelFamily(
    name="ridge",
    estimators={"regression": lambda _seed: Ridge(alpha=10.0)},
    search_spaces={"regression": {"alpha": FloatDistribution(0.01, 1000.0, log=True)}},
    listing_order=0,
    scale_inputs=True,
)
