"""skl2onnx converters for the estimators skl2onnx does not know: LightGBM and the log-target wrapper.

Importing this module registers them (once per process), so `skl2onnx.to_onnx` converts a
pipeline ending in either like any other.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
from lightgbm import Booster, LGBMClassifier, LGBMModel, LGBMRegressor
from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
from skl2onnx.algebra.onnx_ops import OnnxExp
from skl2onnx.common.shape_calculator import (
    calculate_linear_classifier_output_shapes,
    calculate_linear_regressor_output_shapes,
)
from sklearn.compose import TransformedTargetRegressor

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


def convert_log_target(scope: Any, operator: Any, container: Any) -> None:
    """A log-target regressor: the inner regressor's graph, then `Exp`, so the output is in target units."""
    model = operator.raw_operator
    if model.func is not np.log or model.inverse_func is not np.exp:
        msg = "only a log/exp TransformedTargetRegressor converts to ONNX"
        raise NotImplementedError(msg)
    opset = container.target_opset
    inner = OnnxSubEstimator(model.regressor_, operator.inputs[0], op_version=opset)
    OnnxExp(inner, op_version=opset, output_names=operator.outputs[:1]).add_to(scope, container)


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
update_registered_converter(
    TransformedTargetRegressor,
    "MlopsLogTargetRegressor",
    calculate_linear_regressor_output_shapes,
    convert_log_target,
)
