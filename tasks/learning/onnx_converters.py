"""The skl2onnx converters of the log-target wrapper and the skewed-input log, and the families' own.

Importing this module registers them (once per process), so `skl2onnx.to_onnx` converts a
pipeline ending in any family, with or without a log target, like any other.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from skl2onnx import update_registered_converter
from skl2onnx.algebra.onnx_operator import OnnxSubEstimator
from skl2onnx.algebra.onnx_ops import OnnxAdd, OnnxClip, OnnxExp, OnnxLog, OnnxMax, OnnxWhere
from skl2onnx.common.data_types import FloatTensorType
from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
from sklearn.compose import TransformedTargetRegressor

from tasks.learning.families import register_converters
from tasks.learning.log_target import LogTargetRegressor
from tasks.learning.skewed_inputs import SkewedLog


def convert_log_target(scope: Any, operator: Any, container: Any) -> None:
    """A log-target regressor: the inner regressor's graph, then `Exp`, so the output is in target units."""
    model = operator.raw_operator
    if model.func is not np.log or model.inverse_func is not np.exp:
        msg = "only a log/exp TransformedTargetRegressor converts to ONNX"
        raise NotImplementedError(msg)
    opset = container.target_opset
    inner = OnnxSubEstimator(model.regressor_, operator.inputs[0], op_version=opset)
    OnnxExp(inner, op_version=opset, output_names=operator.outputs[:1]).add_to(scope, container)


def convert_clipped_log_target(scope: Any, operator: Any, container: Any) -> None:
    """The inner regressor's graph, clipped to the fitted log range, then `Exp`."""
    model = operator.raw_operator
    opset = container.target_opset
    low, high = (np.array([bound], dtype=np.float32) for bound in model.log_range_)
    inner = OnnxSubEstimator(model.regressor_, operator.inputs[0], op_version=opset)
    clipped = OnnxClip(inner, low, high, op_version=opset)
    OnnxExp(clipped, op_version=opset, output_names=operator.outputs[:1]).add_to(scope, container)


def convert_skewed_log(scope: Any, operator: Any, container: Any) -> None:
    """`Where(chosen column, Log(Max(x, 0) + 1), x)`, the chosen columns a constant row of booleans."""
    model = operator.raw_operator
    opset = container.target_opset
    values = operator.inputs[0]
    zero, one = np.array([0.0], dtype=np.float32), np.array([1.0], dtype=np.float32)
    logged = OnnxLog(
        OnnxAdd(OnnxMax(values, zero, op_version=opset), one, op_version=opset), op_version=opset
    )
    chosen = np.asarray(model.logged_, dtype=bool).reshape(1, -1)
    OnnxWhere(chosen, logged, values, op_version=opset, output_names=operator.outputs[:1]).add_to(
        scope, container
    )


def shape_skewed_log(operator: Any) -> None:
    """The output has the input's shape, in float."""
    rows, columns = operator.inputs[0].get_first_dimension(), operator.inputs[0].get_second_dimension()
    operator.outputs[0].type = FloatTensorType([rows, columns])


update_registered_converter(SkewedLog, "MlopsSkewedLog", shape_skewed_log, convert_skewed_log)
update_registered_converter(
    TransformedTargetRegressor,
    "MlopsLogTargetRegressor",
    calculate_linear_regressor_output_shapes,
    convert_log_target,
)
update_registered_converter(
    LogTargetRegressor,
    "MlopsClippedLogTargetRegressor",
    calculate_linear_regressor_output_shapes,
    convert_clipped_log_target,
)
register_converters()
