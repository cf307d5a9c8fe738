"""The prediction-log record contract, as an Arrow schema derived from the model schema."""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa

from deployments.lambda_handler.contract import (
    PREDICTION,
    PROBABILITIES,
    REQUIRED_FIELDS,
    SOURCE,
    ServingSchema,
)


class BadRecordError(ValueError):
    """A log line that is not a valid prediction record."""


def feature_types(schema: ServingSchema) -> dict[str, pa.DataType]:
    """Arrow type of every model input: float64 for numbers, string for categories."""
    return {feature.name: pa.float64() if feature.is_number else pa.string() for feature in schema.features}


def record_schema(schema: ServingSchema) -> pa.Schema:
    """The Arrow schema of one JSON Lines record for this model."""
    prediction_type = pa.float64() if schema.task == "regression" else pa.string()
    fields = [
        ("request_id", pa.string()),
        ("row", pa.int64()),
        ("timestamp", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("latency_ms", pa.float64()),
        (PREDICTION, prediction_type),
        (SOURCE, pa.string()),
        ("features", pa.struct(list(feature_types(schema).items()))),
    ]
    if schema.task == "classification":
        fields.append((PROBABILITIES, pa.struct([(name, pa.float64()) for name in schema.classes])))
    return pa.schema(fields)


def _check_feature(name: str, value: Any, kind: pa.DataType) -> None:
    if value is None:
        return
    if kind == pa.float64():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            msg = f"feature {name!r} is not a finite number"
            raise BadRecordError(msg)
    elif not isinstance(value, str):
        msg = f"feature {name!r} is not a string"
        raise BadRecordError(msg)


def _check_prediction(prediction: Any, task: str) -> None:
    if task != "regression":
        if not isinstance(prediction, str):
            msg = "prediction must be a class label"
            raise BadRecordError(msg)
        return
    if (
        isinstance(prediction, bool)
        or not isinstance(prediction, int | float)
        or not math.isfinite(prediction)
    ):
        msg = "prediction must be a finite number"
        raise BadRecordError(msg)


def parse_line(line: bytes, schema: ServingSchema, types: dict[str, pa.DataType]) -> dict[str, Any]:
    """Parse and check one line; raise BadRecordError saying what is wrong."""
    try:
        record = json.loads(line)
    except ValueError:
        msg = "not valid JSON"
        raise BadRecordError(msg) from None
    if not isinstance(record, dict):
        msg = "not a JSON object"
        raise BadRecordError(msg)
    missing = [key for key in REQUIRED_FIELDS if record.get(key) is None]
    if missing:
        msg = f"missing required keys: {', '.join(missing)}"
        raise BadRecordError(msg)
    if not isinstance(record["request_id"], str) or not isinstance(record["timestamp"], str):
        msg = "request_id and timestamp must be strings"
        raise BadRecordError(msg)
    if isinstance(record["row"], bool) or not isinstance(record["row"], int):
        msg = "row must be an integer"
        raise BadRecordError(msg)
    _check_prediction(record[PREDICTION], schema.task)
    if not isinstance(record["features"], dict):
        msg = "features must be an object"
        raise BadRecordError(msg)
    for name, kind in types.items():
        _check_feature(name, record["features"].get(name), kind)
    record["model_version"] = str(record["model_version"])
    return record
