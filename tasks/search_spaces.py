"""What tuning may vary, per model family: small spaces that hold each family's fixed parameters.

Every space contains the fixed parameters of `tasks.candidates.FAMILIES` (tuning scores them
first), and bounds tree counts, depths and leaves so that any trial converts to a small ONNX
graph and the function zip stays under 2 MB. On Ames the largest corners deflate to 0.35 MB
(LightGBM, 1,000 trees of 31 leaves), 0.15 MB (gradient boosting, 600 trees of depth 5) and
1.1 MB (random forest, 150 trees of depth 12); on much more data a deep forest can grow past
the limit, and selection then skips it for the next candidate (`tasks.onnx_export.check_size`).
"""

from __future__ import annotations

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from tasks.dataset import TaskType

SearchSpace = dict[str, BaseDistribution]


def _forest(max_features: BaseDistribution) -> SearchSpace:
    return {
        "n_estimators": IntDistribution(50, 150),
        "max_depth": IntDistribution(4, 12),
        "min_samples_leaf": IntDistribution(1, 10),
        "max_features": max_features,
    }


def _boosting(n_estimators: tuple[int, int]) -> SearchSpace:
    return {
        "n_estimators": IntDistribution(*n_estimators, log=True),
        "learning_rate": FloatDistribution(0.02, 0.2, log=True),
        "max_depth": IntDistribution(2, 5),
        "subsample": FloatDistribution(0.5, 1.0),
        "min_samples_leaf": IntDistribution(1, 20),
        "max_features": CategoricalDistribution([None, 0.5, 0.25, "sqrt"]),
    }


def _lightgbm(n_estimators: tuple[int, int]) -> SearchSpace:
    return {
        "n_estimators": IntDistribution(*n_estimators, log=True),
        "learning_rate": FloatDistribution(0.01, 0.2, log=True),
        "num_leaves": IntDistribution(4, 31, log=True),
        "min_child_samples": IntDistribution(3, 40, log=True),
        "subsample": FloatDistribution(0.5, 1.0),
        "colsample_bytree": FloatDistribution(0.1, 0.8),
    }


SEARCH_SPACES: dict[TaskType, dict[str, SearchSpace]] = {
    "regression": {
        "ridge": {"alpha": FloatDistribution(0.01, 1000.0, log=True)},
        "random_forest": _forest(FloatDistribution(0.1, 0.6)),
        "gradient_boosting": _boosting((100, 600)),
        "lightgbm": _lightgbm((100, 1000)),
    },
    "classification": {
        "logistic_regression": {"C": FloatDistribution(0.001, 100.0, log=True)},
        "random_forest": _forest(CategoricalDistribution(["sqrt", "log2", 0.3])),
        "gradient_boosting": _boosting((100, 600)),
        "lightgbm": _lightgbm((100, 1000)),
    },
}


def search_space(family: str, task: TaskType) -> SearchSpace:
    """The family's search space; an unknown family is an error naming the known ones."""
    try:
        return SEARCH_SPACES[task][family]
    except KeyError:
        known = ", ".join(SEARCH_SPACES[task])
        msg = f"unknown {task} model family {family!r} (MLOPS_CANDIDATE_FAMILIES or families); known: {known}"
        raise ValueError(msg) from None
