"""The prediction-log record contract, as an Arrow schema derived from the model schema."""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from deployments.lambda_handler.contract import (
    PREDICTION,
    PROBABILITIES,
    RECORD_FIELDS,
    REQUIRED_FIELDS,
    SOURCE,
    ServingSchema,
)

INT64_MAX = 2**63 - 1
SIMPLE_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "strings": pa.list_(pa.string()),
}
NON_FINITE = "a number is not finite (NaN or Infinity)"
TOO_DEEP = "not valid JSON: nested too deeply for the JSON parser"


class BadRecordError(ValueError):
    """A log line that is not a valid prediction record."""


def feature_types(schema: ServingSchema) -> dict[str, pa.DataType]:
    """Arrow type of every model input: float64 for numbers, string for categories."""
    return {feature.name: pa.float64() if feature.is_number else pa.string() for feature in schema.features}


def field_type(kind: str, schema: ServingSchema) -> pa.DataType | None:
    """The Arrow type of a record field of the given kind (`RECORD_FIELDS`); None if the model has none."""
    if kind == "features":
        return pa.struct(list(feature_types(schema).items()))
    if kind == "prediction":
        return pa.float64() if schema.task == "regression" else pa.string()
    if kind == "probabilities":
        if schema.task != "classification":
            return None
        return pa.struct([(name, pa.float64()) for name in schema.classes])
    return SIMPLE_TYPES[kind]


def record_schema(schema: ServingSchema) -> pa.Schema:
    """The Arrow schema of one JSON Lines record for this model, from the contract's `RECORD_FIELDS`."""
    types = {name: field_type(kind, schema) for name, kind in RECORD_FIELDS.items()}
    return pa.schema([(name, kind) for name, kind in types.items() if kind is not None])


def non_finite_rows(table: pa.Table) -> pa.Array | None:
    """Which rows hold a NaN or an infinity in any float column (nested ones too); None if none do.

    Arrow's JSON reader takes `NaN` and `Infinity` as numbers, and older compacted hours may
    hold them, so every parse checks its float columns here.
    """
    flat = table
    while any(pa.types.is_struct(column.type) for column in flat.columns):
        flat = flat.flatten()
    bad: pa.Array | None = None
    for column in flat.columns:
        if not pa.types.is_floating(column.type):
            continue
        column_bad = pc.fill_null(pc.invert(pc.is_finite(column)), fill_value=False)
        if pc.any(column_bad).as_py():
            bad = column_bad if bad is None else pc.or_(bad, column_bad)
    return None if bad is None else pa.array(bad.to_numpy(zero_copy_only=False))


def finite_number(value: Any) -> bool:
    """A JSON number (not a boolean) that is finite, however large the integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _check_feature(name: str, value: Any, kind: pa.DataType) -> None:
    if value is None:
        return
    if kind == pa.float64():
        if not finite_number(value):
            msg = f"feature {name!r} is not a finite number"
            raise BadRecordError(msg)
    elif not isinstance(value, str):
        msg = f"feature {name!r} is not a string"
        raise BadRecordError(msg)


def _check_prediction(record: dict[str, Any], schema: ServingSchema) -> None:
    prediction = record[PREDICTION]
    if schema.task == "regression":
        if not finite_number(prediction):
            msg = "prediction must be a finite number"
            raise BadRecordError(msg)
        return
    if not isinstance(prediction, str):
        msg = "prediction must be a class label"
        raise BadRecordError(msg)
    probabilities = record.get(PROBABILITIES)
    if probabilities is None:
        return
    if not isinstance(probabilities, dict):
        msg = "probabilities must be an object"
        raise BadRecordError(msg)
    for name in schema.classes:
        value = probabilities.get(name)
        if value is not None and not finite_number(value):
            msg = f"probability of {name!r} is not a finite number"
            raise BadRecordError(msg)


def _check_optional(record: dict[str, Any]) -> None:
    for key in ("model_name", SOURCE):
        if record.get(key) is not None and not isinstance(record[key], str):
            msg = f"{key} must be a string"
            raise BadRecordError(msg)
    for name, kind in RECORD_FIELDS.items():
        values = record.get(name)
        if (
            kind == "strings"
            and values is not None
            and not (isinstance(values, list) and all(isinstance(value, str) for value in values))
        ):
            msg = f"{name} must be a list of strings"
            raise BadRecordError(msg)
    latency = record.get("latency_ms")
    if latency is not None and not finite_number(latency):
        msg = "latency_ms must be a finite number"
        raise BadRecordError(msg)


def parse_line(line: bytes, schema: ServingSchema, types: dict[str, pa.DataType]) -> dict[str, Any]:
    """Parse and check one line; raise BadRecordError saying what is wrong."""
    try:
        record = json.loads(line)
    except RecursionError:
        raise BadRecordError(TOO_DEEP) from None
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
    row = record["row"]
    if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row <= INT64_MAX:
        msg = "row must be a non-negative integer"
        raise BadRecordError(msg)
    _check_prediction(record, schema)
    _check_optional(record)
    if not isinstance(record["features"], dict):
        msg = "features must be an object"
        raise BadRecordError(msg)
    for name, kind in types.items():
        _check_feature(name, record["features"].get(name), kind)
    record["model_version"] = str(record["model_version"])
    return record
