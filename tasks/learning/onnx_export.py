"""Convert a fitted pipeline to ONNX and check that it predicts what the pipeline predicts."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime
import pandas as pd
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

import tasks.learning.onnx_converters  # noqa: F401 - registers the LightGBM and log-target converters
from deployments.lambda_handler.contract import (
    CATEGORICAL_INPUT,
    NUMERIC_INPUT,
    input_columns_key,
    packed_columns,
)
from tasks.core.metric_names import TaskType

TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}
# The function zip must stay under 2 MB; the handler and schema take well under 0.5 MB of it.
MAX_COMPRESSED_MODEL_BYTES = 1_500_000


class OnnxExportError(RuntimeError):
    """A pipeline could not be converted, or its ONNX graph disagrees with it."""


@dataclass(frozen=True)
class Parity:
    """How far the ONNX scores are from the pipeline's on the holdout."""

    max_abs_error: float
    max_rel_error: float
    rows: int


def convert_pipeline(pipeline: Pipeline, numeric: list[str], categorical: list[str]) -> bytes:
    """The pipeline as a serialized ONNX model taking one numeric and one categorical matrix."""
    numeric_set = set(numeric)
    columns = pipeline.feature_names_in_
    inputs = [
        (name, FloatTensorType([None, 1]) if name in numeric_set else StringTensorType([None, 1]))
        for name in columns
    ]
    if set(columns) != numeric_set | set(categorical):
        msg = "pipeline inputs do not match the feature lists"
        raise OnnxExportError(msg)
    options = {id(pipeline): {"zipmap": False}} if is_classifier(pipeline) else None
    try:
        model = to_onnx(pipeline, initial_types=inputs, target_opset=TARGET_OPSET, options=options)
    except Exception as error:  # skl2onnx raises many types for unsupported models
        msg = f"ONNX conversion failed: {type(error).__name__}: {error}"
        raise OnnxExportError(msg) from error
    return bytes(pack_inputs(model, numeric, categorical).SerializeToString())


def pack_inputs(model: onnx.ModelProto, numeric: list[str], categorical: list[str]) -> onnx.ModelProto:
    """Replace the per-column inputs by a numeric and a categorical matrix, split inside the graph.

    Two feeds instead of one per feature cut the per-input work of every call (numpy arrays,
    onnxruntime's input checks and copies). The column order is kept in the model's metadata.
    """
    graph = model.graph
    internal = {name: f"column:{name}" for name in (*numeric, *categorical)}
    for node in graph.node:
        node.input[:] = [internal.get(name, name) for name in node.input]
    packed, splits = [], []
    for input_name, names, element in (
        (NUMERIC_INPUT, numeric, TensorProto.FLOAT),
        (CATEGORICAL_INPUT, categorical, TensorProto.STRING),
    ):
        if not names:
            continue
        packed.append(helper.make_tensor_value_info(input_name, element, [None, len(names)]))
        sizes = f"{input_name}:sizes"
        graph.initializer.append(numpy_helper.from_array(np.ones(len(names), dtype=np.int64), sizes))
        outputs = [internal[name] for name in names]
        splits.append(
            helper.make_node("Split", [input_name, sizes], outputs, name=f"{input_name}:split", axis=1)
        )
        model.metadata_props.add(key=input_columns_key(input_name), value=json.dumps(names))
    kept = [value for value in graph.input if value.name not in internal]
    graph.ClearField("input")
    graph.input.extend([*packed, *kept])
    nodes = [*splits, *graph.node]
    graph.ClearField("node")
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def check_size(model: bytes, limit: int = MAX_COMPRESSED_MODEL_BYTES) -> int:
    """The graph's deflated size; raise if it would not fit the function zip."""
    size = len(zlib.compress(model, 9))
    if size > limit:
        msg = f"the ONNX graph deflates to {size:,} bytes, over the {limit:,} the function zip allows"
        raise OnnxExportError(msg)
    return size


def onnx_inputs(
    frame: pd.DataFrame, numeric: list[str], categorical: list[str], *, packed: bool = True
) -> dict[str, np.ndarray]:
    """Feeds for an ONNX session from a prepared frame: the two matrices, or one column each."""
    if not packed:  # a graph exported with one [N, 1] input per feature
        feeds = {name: frame[[name]].to_numpy(dtype=np.float32) for name in numeric}
        feeds.update({name: frame[[name]].to_numpy(dtype=object).astype(str) for name in categorical})
        return feeds
    feeds = {}
    if numeric:
        feeds[NUMERIC_INPUT] = frame[numeric].to_numpy(dtype=np.float32)
    if categorical:
        feeds[CATEGORICAL_INPUT] = frame[categorical].to_numpy(dtype=object).astype(str)
    return feeds


def takes_packed_inputs(session: onnxruntime.InferenceSession) -> bool:
    """Whether a graph takes the numeric and categorical matrices (its metadata lists their columns)."""
    return packed_columns(session.get_modelmeta().custom_metadata_map) is not None


def create_session(model: bytes) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session for a serialized model."""
    return onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])


def onnx_scores(
    session: onnxruntime.InferenceSession,
    frame: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    task: TaskType,
) -> np.ndarray:
    """Predictions (regression) or positive-class probabilities (classification)."""
    feeds = onnx_inputs(frame, numeric, categorical, packed=takes_packed_inputs(session))
    outputs = session.run(None, feeds)
    if task == "regression":
        return np.asarray(outputs[0], dtype="float64").ravel()
    return np.asarray(outputs[1], dtype="float64")[:, 1]


def pipeline_scores(pipeline: Pipeline, frame: pd.DataFrame, task: TaskType) -> np.ndarray:
    """The same scores as `onnx_scores`, from the scikit-learn pipeline."""
    if task == "regression":
        return np.asarray(pipeline.predict(frame), dtype="float64")
    return np.asarray(pipeline.predict_proba(frame), dtype="float64")[:, 1]


def check_parity(expected: np.ndarray, actual: np.ndarray, tolerance: float) -> Parity:
    """Compare scores; raise unless every one is within `tolerance`, relative or absolute."""
    absolute = np.abs(actual - expected)
    relative = absolute / np.maximum(np.abs(expected), 1.0)
    parity = Parity(float(absolute.max(initial=0.0)), float(relative.max(initial=0.0)), len(expected))
    if not np.all(np.isfinite(actual)) or parity.max_rel_error > tolerance:
        msg = (
            f"ONNX scores differ from the pipeline's by up to {parity.max_rel_error:.2e} "
            f"(relative), over the tolerance {tolerance:.0e}"
        )
        raise OnnxExportError(msg)
    return parity
