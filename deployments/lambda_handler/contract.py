"""The serving contract: what the function writes and everything else reads. Standard library only.

It ships inside the function zip, and the monitor, batch scoring, training and the deployers
import it, so the prediction-log record, its key layout, the bundle's file names, the alias
names and the schema reader have one definition that cannot drift apart.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

# --- the model bundle ---------------------------------------------------------------------
MODEL_FILE = "model.onnx"
SCHEMA_FILE = "schema.json"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.parquet"  # training rows with the model's predictions: the drift baseline
HOLDOUT_FILE = "holdout.parquet"  # holdout rows with out-of-sample predictions: the quality baseline
IMPORTANCE_FILE = "importance.json"  # each input's permutation importance on the holdout, summing to 1
SERVING_FILES = (MODEL_FILE, SCHEMA_FILE, METADATA_FILE)  # what goes into the function zip
PAGE_FILE = "page.html"  # the prediction page, generated from the bundle into the function zip
# The ONNX graph's inputs: float32 [N, numeric features] and string [N, categorical features],
# columns in the schema's order (graphs exported before this take one [N, 1] input per feature).
NUMERIC_INPUT = "numeric"
CATEGORICAL_INPUT = "categorical"


def input_columns_key(input_name: str) -> str:
    """The ONNX metadata key whose value lists a packed input's columns (a JSON array)."""
    return f"{input_name}_columns"


def packed_columns(metadata: dict[str, str]) -> dict[str, list[str]] | None:
    """Each packed input's columns as a graph's metadata lists them; None for a per-feature graph."""
    listed = {name: metadata.get(input_columns_key(name)) for name in (NUMERIC_INPUT, CATEGORICAL_INPUT)}
    if all(columns is None for columns in listed.values()):
        return None
    return {name: json.loads(columns or "[]") for name, columns in listed.items()}


# --- aliases and names --------------------------------------------------------------------
CHAMPION_ALIAS = "champion"  # MLflow registry alias of the model that should serve
LIVE_ALIAS = "live"  # function alias (Lambda or local) that does serve
SMOKE_PREFIX = "smoke-"  # request ids of deploy smoke tests; the monitor leaves them out
MISSING_CATEGORY = ""  # how a missing categorical value reaches the model

# --- the HTTP API (the same routes on API Gateway and on the local server) ------------------
PREDICT_ROUTE = "POST /predict"
SCHEMA_ROUTE = "GET /schema"
HEALTH_ROUTE = "GET /health"
PAGE_ROUTE = "GET /"  # the prediction page; its own authorization setting on the HTTP API
ROUTE_KEYS = (PREDICT_ROUTE, SCHEMA_ROUTE, HEALTH_ROUTE, PAGE_ROUTE)
# What an answer of `POST /predict` lists per instance, beside `predictions` (and `probabilities`):
# the fields left out (or null) that the model's pipeline filled in, and `UNKNOWN_CATEGORIES`.
IMPUTED_FIELDS = "imputed_fields"
CORS_ALLOW_METHODS = ("GET", "POST", "OPTIONS")
CORS_EXPOSE_HEADERS = ("x-request-id",)
# What a browser may send: JSON, a bearer token, or the headers of a SigV4 signature.
CORS_ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-security-token",
)
CORS_MAX_AGE_SECONDS = 600


def route_paths() -> frozenset[str]:
    """The paths of the API's routes (`/predict`, …)."""
    return frozenset(key.split(" ", 1)[1] for key in ROUTE_KEYS)


# --- CloudWatch metrics (Embedded Metric Format lines the function writes per request) --------
METRICS_NAMESPACE = "LoopML/Serving"
MODEL_NAME_DIMENSION = "ModelName"
MODEL_VERSION_DIMENSION = "ModelVersion"
LATENCY_METRIC = "Latency"  # milliseconds, from the event's arrival to the answer
REQUESTS_METRIC = "Requests"  # every answered or refused request
PREDICTIONS_METRIC = "Predictions"  # predicted rows
CLIENT_ERRORS_METRIC = "ClientErrors"  # 4xx answers
SERVER_ERRORS_METRIC = "ServerErrors"  # 5xx answers
UNKNOWN_CATEGORIES_METRIC = "UnknownCategories"  # categorical values training never saw
MISSING_FIELDS_METRIC = "MissingFields"  # fields left out of predicted rows
OUTSIDE_TRAINING_METRIC = "OutsideTraining"  # numbers outside the training range

# --- prediction-log records (JSON Lines, one object per predicted row) ---------------------
PREDICTION = "prediction"
PROBABILITY = "prediction_probability"  # positive-class probability column in tables
PROBABILITIES = "probabilities"  # per-class probabilities in records
SOURCE = "source"  # where a row came from; absent in older records (= online)
ONLINE = "online"
BATCH = "batch"
SOURCES = (ONLINE, BATCH)
UNKNOWN_CATEGORIES = "unknown_categories"  # categorical values of the row that training never saw
MISSING_FIELDS = "missing_fields"  # the row's fields that the request left out (imputed)
OUTSIDE_TRAINING = "outside_training"  # the row's numbers outside the training range; absent in older records
# Every field of a record, in the order it is written, with its JSON kind. The handler builds
# records with `prediction_record`; the monitor's Arrow schema (and so compaction) derives from
# this table, so a field added here is written, read and kept everywhere.
RECORD_FIELDS: dict[str, str] = {
    "request_id": "string",
    "row": "integer",
    "timestamp": "string",  # ISO 8601, UTC, `Z`
    "model_name": "string",
    "model_version": "string",
    "features": "features",  # the validated inputs, one key per schema feature
    PREDICTION: "prediction",  # a number (regression) or a class label (classification)
    "latency_ms": "number",
    UNKNOWN_CATEGORIES: "strings",
    MISSING_FIELDS: "strings",
    OUTSIDE_TRAINING: "strings",
    SOURCE: "string",
    PROBABILITIES: "probabilities",  # classification only: class label -> probability
}
REQUIRED_FIELDS = ("request_id", "row", "timestamp", "model_version", PREDICTION, "features")


def prediction_record(
    *,
    request_id: str,
    row: int,
    timestamp: str,
    model_name: str,
    model_version: str,
    features: dict[str, Any],
    prediction: float | str,
    latency_ms: float,
    unknown_categories: list[str],
    missing_fields: list[str],
    outside_training: list[str],
    source: str,
    probabilities: dict[str, float] | None = None,
) -> dict[str, Any]:
    """One prediction-log record, with the fields of `RECORD_FIELDS` in their order."""
    values: dict[str, Any] = {
        "request_id": request_id,
        "row": row,
        "timestamp": timestamp,
        "model_name": model_name,
        "model_version": model_version,
        "features": features,
        PREDICTION: prediction,
        "latency_ms": latency_ms,
        UNKNOWN_CATEGORIES: unknown_categories,
        MISSING_FIELDS: missing_fields,
        OUTSIDE_TRAINING: outside_training,
        SOURCE: source,
        PROBABILITIES: probabilities,
    }
    return {name: values[name] for name in RECORD_FIELDS if values[name] is not None}


# --- ground truth (labels/<model>/dt=<prediction day>/hour=<HH>/<upload>.jsonl) -------------
# Each label sits in the hour partition of the prediction it belongs to, so a window reads only
# the labels of its own requests. Objects of the older layout, `labels/<model>/dt=<upload
# day>/<upload>.jsonl`, are still read. Upload names start with the upload time, so names in one
# partition sort in upload order (a later label for the same request row replaces an earlier one).
LABEL_FIELDS = ("request_id", "row", "actual")
ACTUAL = "actual"  # the true value of a logged row, joined onto it by (request_id, row)
LABEL_UPLOAD_TIME = "%Y%m%dT%H%M%S%fZ"  # how an upload's object name starts

# --- storage layout under the storage root ------------------------------------------------
PREDICTIONS_PREFIX = "predictions"
COMPACTED_PREFIX = "predictions-compacted"
LABELS_PREFIX = "labels"
_KEY = re.compile(
    rf"^{PREDICTIONS_PREFIX}/(?P<model>[^/]+)/dt=(?P<day>\d{{4}}-\d{{2}}-\d{{2}})/hour=(?P<hour>\d{{2}})/"
    r"(?P<request_id>[^/]+)\.jsonl$"
)

Task = Literal["regression", "classification"]


def hour_partition(model_name: str, hour: datetime) -> str:
    """`predictions/<model>/dt=YYYY-MM-DD/hour=HH`: where one hour of a model's records go."""
    return f"{PREDICTIONS_PREFIX}/{model_name}/dt={hour:%Y-%m-%d}/hour={hour:%H}"


def prediction_key(model_name: str, request_id: str, at: datetime) -> str:
    """`predictions/<model>/dt=YYYY-MM-DD/hour=HH/<request-id>.jsonl` under the storage root."""
    return f"{hour_partition(model_name, at)}/{request_id}.jsonl"


def label_partition(model_name: str, hour: datetime) -> str:
    """`labels/<model>/dt=YYYY-MM-DD/hour=HH`: the labels of the predictions logged in that hour."""
    return f"{LABELS_PREFIX}/{model_name}/dt={hour:%Y-%m-%d}/hour={hour:%H}"


def compacted_key(model_name: str, hour: datetime) -> str:
    """Where a closed hour's compacted Parquet copy lives (a prefix of its own, for lifecycle rules)."""
    return f"{COMPACTED_PREFIX}/{model_name}/dt={hour:%Y-%m-%d}/hour={hour:%H}.parquet"


@dataclass(frozen=True)
class PredictionKey:
    """The parts of a prediction-log key."""

    model_name: str
    hour: datetime
    request_id: str


def parse_prediction_key(key: str) -> PredictionKey:
    """Split a key written by `prediction_key`; ValueError for anything else."""
    match = _KEY.match(key)
    if match is None:
        msg = f"{key!r} is not a prediction-log key ({PREDICTIONS_PREFIX}/<model>/dt=…/hour=…/<id>.jsonl)"
        raise ValueError(msg)
    hour = datetime.strptime(f"{match['day']} {match['hour']}", "%Y-%m-%d %H").replace(tzinfo=UTC)
    return PredictionKey(match["model"], hour, match["request_id"])


# --- the model schema (schema.json) -------------------------------------------------------
@dataclass(frozen=True)
class Feature:
    """One model input as training saw it."""

    name: str
    kind: Literal["number", "category"]
    nullable: bool
    null_rate: float = 0.0
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()

    @property
    def is_number(self) -> bool:
        """Whether the input is numeric (float32 in the ONNX graph)."""
        return self.kind == "number"


DEFAULT_METRICS = {"regression": "rmse", "classification": "roc_auc"}  # of bundles that name none


@dataclass(frozen=True)
class ServingSchema:
    """What the model takes and returns, read from `schema.json`."""

    task: Task
    target: str
    features: tuple[Feature, ...]
    classes: tuple[str, ...] = ()
    example: dict[str, Any] | None = None
    monitor_exclude: tuple[str, ...] = ()  # inputs left out of the drift verdict
    metric: str = ""  # what ranks and gates the model; older bundles: rmse or roc_auc by task
    row_bounds: tuple[tuple[str, float | None, float | None], ...] = ()  # (input, low, high): rows trained on

    @property
    def names(self) -> list[str]:
        """Every input, in the model's order."""
        return [feature.name for feature in self.features]

    @property
    def numeric(self) -> list[str]:
        """Numeric inputs, in the model's order."""
        return [feature.name for feature in self.features if feature.is_number]

    @property
    def categorical(self) -> list[str]:
        """Categorical inputs, in the model's order."""
        return [feature.name for feature in self.features if not feature.is_number]

    @property
    def positive_class(self) -> str | None:
        """The class whose probability is the score (classification only)."""
        return self.classes[1] if self.task == "classification" else None

    @property
    def score_column(self) -> str:
        """The column monitored for prediction drift: the prediction, or the positive probability."""
        return PREDICTION if self.task == "regression" else PROBABILITY

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServingSchema:
        """Read the JSON form; KeyError or ValueError names what is wrong."""
        task = data["task"]
        if task not in {"regression", "classification"}:
            msg = f"schema task must be regression or classification, got {task!r}"
            raise ValueError(msg)
        features = tuple(
            Feature(
                name=str(item["name"]),
                kind="number" if item["type"] == "number" else "category",
                nullable=bool(item["nullable"]),
                null_rate=float(item.get("null_rate") or 0.0),
                minimum=item.get("minimum"),
                maximum=item.get("maximum"),
                categories=tuple(item.get("categories") or ()),
            )
            for item in data["features"]
        )
        return cls(
            task,
            str(data["target"]),
            features,
            tuple(data.get("classes") or ()),
            data.get("example"),
            tuple(data.get("monitor_exclude") or ()),
            str(data.get("metric") or DEFAULT_METRICS[task]),
            _row_bounds(data.get("row_bounds") or {}),
        )

    @classmethod
    def load(cls, folder: Path) -> ServingSchema:
        """Read `schema.json` from a bundle (or the function's model) folder."""
        return cls.from_dict(json.loads((folder / SCHEMA_FILE).read_text("utf-8")))


def _row_bounds(bounds: Any) -> tuple[tuple[str, float | None, float | None], ...]:
    """`row_bounds` from `schema.json`: each input's [low, high], numbers (or numeric text) or null."""
    if not isinstance(bounds, dict):
        msg = f"schema row_bounds must be an object of input: [low, high], got {type(bounds).__name__}"
        raise ValueError(msg)  # noqa: TRY004 - callers report a bad schema as ValueError
    read = []
    for name, pair in bounds.items():
        if not isinstance(pair, list | tuple) or len(pair) != 2:  # noqa: PLR2004
            raise ValueError(_bad_bounds(name, pair))
        low, high = (_bound(side, name, pair) for side in pair)
        read.append((str(name), low, high))
    return tuple(read)


def _bound(side: Any, name: str, pair: Any) -> float | None:
    """One side of an input's bounds: a finite number, or None for an open side."""
    if side is None:
        return None
    number = math.nan
    if isinstance(side, int | float | str) and not isinstance(side, bool):
        with contextlib.suppress(ValueError, OverflowError):
            number = float(side)
    if not math.isfinite(number):
        raise ValueError(_bad_bounds(name, pair))
    return number


def _bad_bounds(name: str, pair: Any) -> str:
    return f"schema row_bounds of {name!r} must be [low, high], numbers or null, got {pair!r}"
