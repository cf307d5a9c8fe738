"""Convert a fitted pipeline to ONNX and check that it predicts what the pipeline predicts."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import onnxruntime
import pandas as pd
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

import tasks.onnx_converters  # noqa: F401 - registers the LightGBM and log-target converters
from tasks.dataset import TaskType

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
    """The pipeline as a serialized ONNX model with one `[N, 1]` input per feature column."""
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
    return model.SerializeToString()


def check_size(model: bytes, limit: int = MAX_COMPRESSED_MODEL_BYTES) -> int:
    """The graph's deflated size; raise if it would not fit the function zip."""
    size = len(zlib.compress(model, 9))
    if size > limit:
        msg = f"the ONNX graph deflates to {size:,} bytes, over the {limit:,} the function zip allows"
        raise OnnxExportError(msg)
    return size


def onnx_inputs(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> dict[str, np.ndarray]:
    """Feed arrays for an ONNX session from a prepared frame."""
    feeds = {name: frame[[name]].to_numpy(dtype=np.float32) for name in numeric}
    feeds.update({name: frame[[name]].to_numpy(dtype=object).astype(str) for name in categorical})
    return feeds


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
    outputs = session.run(None, onnx_inputs(frame, numeric, categorical))
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
