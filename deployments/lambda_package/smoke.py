"""Smoke test of a published function version before any traffic is moved to it."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from typing import Any

from deployments.lambda_handler.contract import SMOKE_PREFIX
from deployments.lambda_package.function_process import http_event

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


class SmokeTestError(RuntimeError):
    """The new version did not answer as a healthy model should; traffic stays where it was."""


def _call(invoke: Invoke, event: dict[str, Any]) -> dict[str, Any]:
    try:
        response = invoke(event)
    except Exception as error:
        msg = f"{event['routeKey']} failed: {error}"
        raise SmokeTestError(msg) from error
    status = response.get("statusCode")
    try:
        body = json.loads(response.get("body") or "")
    except (TypeError, ValueError):
        body = {}
    if status != 200:  # noqa: PLR2004
        msg = f"{event['routeKey']} answered {status}: {body.get('error', response.get('body'))}"
        raise SmokeTestError(msg)
    return body


def smoke_test(invoke: Invoke, example: dict[str, Any], model_version: str) -> dict[str, Any]:
    """Ask for health and one prediction of the schema's example; fail on any wrong answer.

    The prediction request id starts with `smoke-` so the monitor can leave it out.
    """
    health = _call(invoke, http_event("GET", "/health"))
    if str(health.get("model_version")) != str(model_version):
        msg = f"health reports model version {health.get('model_version')}, expected {model_version}"
        raise SmokeTestError(msg)
    request_id = f"{SMOKE_PREFIX}{uuid.uuid4().hex}"
    body = json.dumps({"instances": [example]})
    answer = _call(invoke, http_event("POST", "/predict", body, request_id=request_id))
    predictions = answer.get("predictions") or []
    if len(predictions) != 1:
        msg = f"expected one prediction, got {predictions!r}"
        raise SmokeTestError(msg)
    if isinstance(predictions[0], float) and not math.isfinite(predictions[0]):
        msg = f"prediction is not finite: {predictions[0]!r}"
        raise SmokeTestError(msg)
    return answer


def smoke_test_version(invoke: Invoke) -> dict[str, Any]:
    """Smoke-test a published version with the example and model version of its own schema.

    A rollback has no bundle at hand: the version's `GET /schema` says what it serves.
    """
    schema = _call(invoke, http_event("GET", "/schema"))
    return smoke_test(invoke, schema.get("example") or {}, str(schema.get("model_version")))
