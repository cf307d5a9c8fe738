"""LightGBM, with an ONNX converter whose float32 thresholds decide as the double ones do.

LightGBM uses one thread: tuning runs trials side by side, and its OpenMP threads then fight
for the cores (one fit took 300x longer with two). It compares inputs with double thresholds;
fed float32 values, as the ONNX graph is, its splits are exactly reproducible in float32
(`float32_thresholds`). 1,000 trees of 31 leaves deflate to about 0.35 MB of ONNX on Ames.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
from lightgbm import Booster, LGBMClassifier, LGBMModel, LGBMRegressor
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from optuna.distributions import FloatDistribution, IntDistribution
from skl2onnx import update_registered_converter
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)

from tasks.learning.families import ModelFamily, SearchSpace

SHARED: dict[str, Any] = {
    "num_leaves": 15,
    "min_child_samples": 10,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.5,
    "n_jobs": 1,
    "verbose": -1,
}
SPACE: SearchSpace = {
    "n_estimators": IntDistribution(100, 1000, log=True),
    "learning_rate": FloatDistribution(0.01, 0.2, log=True),
    "num_leaves": IntDistribution(4, 31, log=True),
    "min_child_samples": IntDistribution(3, 40, log=True),
    "subsample": FloatDistribution(0.5, 1.0),
    "colsample_bytree": FloatDistribution(0.1, 0.8),
}
_THRESHOLDS = re.compile(r"^threshold=(.*)$", re.MULTILINE)
_TREE_SIZES = re.compile(r"^tree_sizes=.*\n", re.MULTILINE)


def _round_down_to_float32(match: re.Match[str]) -> str:
    values = np.array(match.group(1).split(), dtype="float64")
    rounded = values.astype("float32")
    rounded = np.where(rounded > values, np.nextafter(rounded, np.float32(-np.inf)), rounded)
    return "threshold=" + " ".join(repr(float(value)) for value in rounded)


def float32_thresholds(model: LGBMModel) -> LGBMModel:
    """A copy of a fitted LightGBM model whose split thresholds are rounded down to float32.

    The ONNX tree ensemble holds float32 thresholds. Rounded to nearest, a threshold between two
    adjacent float32 values can land on the upper one and send it the other way; rounded down,
    `x <= t` and `x <= float32(t)` agree for every float32 `x` (what the graph and, through the
    pipeline's cast, the model see).
    """
    text = _THRESHOLDS.sub(_round_down_to_float32, model.booster_.model_to_string())
    text = _TREE_SIZES.sub("", text)  # byte offsets of the trees, stale now; LightGBM reads on without
    rounded = copy.copy(model)
    rounded._Booster = Booster(model_str=text)  # noqa: SLF001 - the fitted booster behind booster_
    return rounded


def convert_lightgbm_float32(scope: Any, operator: Any, container: Any) -> None:
    """The LightGBM converter of onnxmltools, given thresholds that compare in float32 as in double."""
    operator.raw_operator = float32_thresholds(operator.raw_operator)
    convert_lightgbm(scope, operator, container)


def register() -> None:
    """Teach skl2onnx to convert LightGBM estimators."""
    update_registered_converter(
        LGBMRegressor,
        "LightGbmLGBMRegressor",
        calculate_linear_regressor_output_shapes,
        convert_lightgbm_float32,
        options={"split": None},
    )
    update_registered_converter(
        LGBMClassifier,
        "LightGbmLGBMClassifier",
        calculate_linear_classifier_output_shapes,
        convert_lightgbm_float32,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )


FAMILY = ModelFamily(
    name="lightgbm",
    estimators={
        "regression": lambda seed: LGBMRegressor(
            n_estimators=600, learning_rate=0.03, random_state=seed, **SHARED
        ),
        "classification": lambda seed: LGBMClassifier(
            n_estimators=300, learning_rate=0.05, random_state=seed, **SHARED
        ),
    },
    search_spaces={"regression": SPACE, "classification": SPACE},
    listing_order=4,
    float32_inputs=True,
    trusted_types=("lightgbm.", "skl2onnx.sklapi."),  # the model, and the float32 cast before it
    requirements={"lightgbm.": "lightgbm", "skl2onnx.": "skl2onnx"},
    register_converters=register,
)
