"""Lambda entry point: API Gateway HTTP API (payload 2.0) events and direct invocations.

Routes: `POST /predict`, `GET /schema`, `GET /health` and `GET /`, the prediction page
generated into the zip at deploy time. A direct invocation whose event is not an HTTP event is
treated as a prediction request body.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from .config import load_config
from .contract import (
    HEALTH_ROUTE,
    IMPUTED_FIELDS,
    ONLINE,
    OUTSIDE_TRAINING,
    PAGE_FILE,
    PAGE_ROUTE,
    PREDICT_ROUTE,
    SCHEMA_ROUTE,
    SOURCES,
    UNKNOWN_CATEGORIES,
    prediction_record,
    route_paths,
)
from .metrics import RequestCounts, metric_fields
from .model import Model
from .sinks import DuplicateRecordError, build_sink
from .validation import RequestError, instances_from_body, parse_json, refuse_non_finite, validate_instances

_SAFE_ID = re.compile(r"[^A-Za-z0-9._=-]|^\.+")  # a leading dot would make a hidden log object

CONFIG = load_config()
MODEL = Model(CONFIG.model_dir)
SINK = build_sink(CONFIG.storage_url, CONFIG.firehose_stream)
_PAGE_PATH = CONFIG.model_dir / PAGE_FILE
PAGE = _PAGE_PATH.read_text("utf-8") if _PAGE_PATH.is_file() else None  # zips built before have none
# The page carries its own content security policy (a meta tag); framing is refused here.
PAGE_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def _log(**fields: Any) -> None:
    """One JSON line for CloudWatch: ids, status, timing and EMF metrics, never payloads."""
    print(json.dumps({"level": "info", **fields}, separators=(",", ":")), file=sys.stderr, flush=True)  # noqa: T201


def _response(status: int, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json", "x-request-id": request_id},
        "body": json.dumps(body, separators=(",", ":"), allow_nan=False),
    }


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _request_id(event: dict[str, Any], context: Any) -> str:
    raw = _mapping(event.get("requestContext")).get("requestId") or getattr(context, "aws_request_id", None)
    return _SAFE_ID.sub("-", str(raw))[:128] if raw else uuid.uuid4().hex


def _route(event: dict[str, Any]) -> tuple[str, str]:
    """The method and route name of an HTTP event: exact routes only, as API Gateway matches them.

    The gateway's `routeKey` (`POST /predict`) is the route whatever the stage's path prefix;
    events without one (`$default`, hand-made events) are routed by their exact path.
    """
    http = _mapping(_mapping(event.get("requestContext")).get("http"))
    method = str(http.get("method", "POST")).upper()
    route_key = str(event.get("routeKey") or "")
    if " " in route_key:
        method, path = route_key.split(" ", 1)
    else:
        path = str(event.get("rawPath") or http.get("path") or "/predict")
    return method.upper(), path


def _body(event: dict[str, Any]) -> str | bytes:
    body = event.get("body")
    if body is None:
        msg = "request has no body"
        raise RequestError(msg)
    if not isinstance(body, str):
        msg = "body must be a JSON string"
        raise RequestError(msg)
    size = len(body) if body.isascii() else len(body.encode("utf-8", "surrogatepass"))
    if size > CONFIG.max_body_bytes:
        msg = f"body is over the limit of {CONFIG.max_body_bytes} bytes"
        raise RequestError(msg, status=413)
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            msg = "body is not valid base64"
            raise RequestError(msg) from None
    return body


def predict(
    body: Any, request_id: str, started: float, source: str = ONLINE
) -> tuple[dict[str, Any], RequestCounts]:
    """Validate, predict and log; the log is written before the answer is returned."""
    instances = instances_from_body(body, CONFIG.max_batch_rows)
    batch = validate_instances(instances, MODEL.rules, reject_missing=CONFIG.reject_missing)
    predictions = MODEL.predict(batch)
    refuse_non_finite(predictions.values, predictions.probabilities, batch, MODEL.rules)
    at = datetime.now(UTC)
    latency_ms = (time.perf_counter() - started) * 1000
    timestamp = at.isoformat().replace("+00:00", "Z")
    probabilities = predictions.probabilities
    records = [
        prediction_record(
            request_id=request_id,
            row=row,
            timestamp=timestamp,
            model_name=MODEL.name,
            model_version=MODEL.version,
            features=instance,
            prediction=predictions.values[row],
            latency_ms=round(latency_ms, 3),
            unknown_categories=batch.unknown_categories[row],
            missing_fields=batch.missing_fields[row],
            outside_training=batch.outside_training[row],
            source=source,
            probabilities=None if probabilities is None else probabilities[row],
        )
        for row, instance in enumerate(batch.instances)
    ]
    try:
        SINK.write(records, MODEL.name, request_id, at)
    except DuplicateRecordError:
        msg = f"request id {request_id!r} was already used; each request needs a new one"
        raise RequestError(msg, status=409) from None
    answer: dict[str, Any] = {
        "predictions": predictions.values,
        "model_name": MODEL.name,
        "model_version": MODEL.version,
        "request_id": request_id,
    }
    if predictions.probabilities is not None:
        answer["probabilities"] = predictions.probabilities
    answer[IMPUTED_FIELDS] = batch.missing_fields
    answer[UNKNOWN_CATEGORIES] = batch.unknown_categories
    answer[OUTSIDE_TRAINING] = batch.outside_training
    counts = RequestCounts(
        predictions=len(batch.instances),
        unknown_categories=sum(len(values) for values in batch.unknown_categories),
        missing_fields=sum(len(fields) for fields in batch.missing_fields),
        outside_training=sum(len(fields) for fields in batch.outside_training),
    )
    return answer, counts


def _direct_source(event: dict[str, Any]) -> str:
    """The `source` a direct invocation of `{"instances": [...]}` declares (default "online").

    HTTP API requests are always online; only a direct invocation (it needs
    lambda:InvokeFunction, which the API's clients do not have) may say "batch".
    """
    if "instances" not in event:
        return ONLINE
    source = event.get("source", ONLINE)
    if source not in SOURCES:
        msg = f"'source' must be one of {', '.join(SOURCES)}, got {source!r}"
        raise RequestError(msg, field="source")
    return str(source)


def _dispatch(event: Any, request_id: str, started: float) -> tuple[dict[str, Any], RequestCounts]:
    """The answer of a 200 and what it predicted; a refusal raises `RequestError`."""
    if not isinstance(event, dict):
        raise RequestError("event must be a JSON object")
    is_http = "requestContext" in event or "rawPath" in event
    method, path = _route(event) if is_http else ("POST", "/predict")
    route = f"{method} {path}"
    if route == HEALTH_ROUTE:
        health = {"status": "ok", "model_name": MODEL.name, "model_version": MODEL.version}
        return {**health, "function_version": CONFIG.function_version}, RequestCounts()
    if route == SCHEMA_ROUTE:
        return {"model_name": MODEL.name, "model_version": MODEL.version, **MODEL.schema}, RequestCounts()
    if route == PAGE_ROUTE:  # reached only without a page (see `handler`)
        raise RequestError("this function version has no page; deploy it again to add one", status=404)
    if route == PREDICT_ROUTE:
        if is_http:
            return predict(parse_json(_body(event)), request_id, started)
        return predict(event, request_id, started, _direct_source(event))
    if path in route_paths():
        raise RequestError(f"method {method} is not allowed on {path}", status=405)
    shown = path.encode("utf-8", "backslashreplace").decode("utf-8")[:200]
    raise RequestError(f"no route {shown}; use POST /predict, GET /schema, GET /health or GET /", status=404)


def _page_response(event: Any, request_id: str, started: float) -> dict[str, Any] | None:
    """The page's answer for an HTTP `GET /`, or None for any other event."""
    if PAGE is None or not isinstance(event, dict) or not ("requestContext" in event or "rawPath" in event):
        return None
    if " ".join(_route(event)) != PAGE_ROUTE:
        return None
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    metrics = metric_fields(MODEL.name, MODEL.version, 200, latency_ms, RequestCounts())
    _log(request_id=request_id, status=200, latency_ms=latency_ms, **metrics)
    return {"statusCode": 200, "headers": {**PAGE_HEADERS, "x-request-id": request_id}, "body": PAGE}


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Answer one event; client mistakes are 4xx, failures to predict or log are 5xx."""
    started = time.perf_counter()
    request_id = _request_id(_mapping(event), context)
    page = _page_response(event, request_id, started)
    if page is not None:
        return page
    counts = RequestCounts()
    try:
        body, counts = _dispatch(event, request_id, started)
        status = 200
    except RequestError as error:
        status, body = error.status, error.to_dict()
    except Exception as error:  # noqa: BLE001 - any other failure is the service's, reported as 5xx
        status, body = 500, {"error": "internal error; the prediction was not logged"}
        _log(level="error", request_id=request_id, error=type(error).__name__)
    body.setdefault("request_id", request_id)
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    metrics = metric_fields(MODEL.name, MODEL.version, status, latency_ms, counts)
    _log(request_id=request_id, status=status, latency_ms=latency_ms, **metrics)
    return _response(status, body, request_id)
