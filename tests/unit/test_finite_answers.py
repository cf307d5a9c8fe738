"""Answers are finite, text is valid Unicode, routes are exact and logs are never overwritten."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from deployments.lambda_handler.contract import ServingSchema
from deployments.lambda_handler.sinks import DuplicateRecordError, FileSink
from deployments.lambda_handler.validation import (
    RANGE_WIDTHS,
    RequestError,
    ValidatedBatch,
    refuse_non_finite,
    rules_from_schema,
)
from deployments.lambda_package.function_process import http_event
from deployments.local.live_function import RestartBudget
from tests.support.handler import load_handler, logged_files


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("finite")


@pytest.fixture(scope="module")
def app(ames_bundle: Path, storage: Path) -> ModuleType:
    return load_handler(ames_bundle, storage)


@pytest.fixture(scope="module")
def example(ames_bundle: Path) -> dict:
    return json.loads((ames_bundle / "schema.json").read_text())["example"]


def _answer(app: ModuleType, event: dict) -> tuple[int, dict]:
    response = app.handler(event)
    return response["statusCode"], json.loads(response["body"])


def test_a_number_far_outside_training_is_refused_and_one_near_it_is_served(
    app: ModuleType, example: dict, ames_bundle: Path
) -> None:
    [area] = [f for f in ServingSchema.load(ames_bundle).features if f.name == "gr_liv_area"]
    assert area.minimum is not None
    assert area.maximum is not None
    near = area.maximum * 1.3  # the demo's shift: bigger than any house sold, still served
    status, body = _answer(app, http_event("POST", "/predict", json.dumps({**example, "gr_liv_area": near})))
    assert status == 200
    assert math.isfinite(body["predictions"][0])
    far = area.maximum + (RANGE_WIDTHS + 1) * (area.maximum - area.minimum)
    status, body = _answer(app, http_event("POST", "/predict", json.dumps({**example, "gr_liv_area": far})))
    assert (status, body["field"]) == (400, "gr_liv_area")
    assert f"training range {area.minimum:g} to {area.maximum:g}" in body["error"]


def test_a_non_finite_output_names_the_input_that_caused_it(ames_bundle: Path) -> None:
    rules = rules_from_schema(ServingSchema.load(ames_bundle))
    inside = {rule.name: rule.minimum for rule in rules if rule.is_number and rule.minimum is not None}
    instance = inside | {"gr_liv_area": 9e5, "lot_area": 3e6}
    batch = ValidatedBatch({}, [instance])
    refuse_non_finite([123.0], None, batch, rules)  # finite: nothing to refuse
    with pytest.raises(RequestError) as refused:
        refuse_non_finite([math.inf], None, batch, rules)
    assert refused.value.status == 422
    assert refused.value.field in {"gr_liv_area", "lot_area"}
    assert "output is not finite" in str(refused.value)
    with pytest.raises(RequestError):
        refuse_non_finite(["Yes"], [{"No": math.nan, "Yes": math.nan}], batch, rules)
    with pytest.raises(ArithmeticError):  # every input in range: the model's fault, a 5xx
        refuse_non_finite([math.nan], None, ValidatedBatch({}, [inside]), rules)


def test_lone_surrogates_are_a_400_never_a_500(app: ModuleType, example: dict, storage: Path) -> None:
    before = logged_files(storage)
    status, body = _answer(app, http_event("POST", "/predict", '{"ms_zoning": "\\ud800"}'))
    assert (status, body["field"]) == (400, "ms_zoning")
    status, body = _answer(app, http_event("POST", "/predict", '{"\\ud800": 1}'))
    assert status == 400
    assert json.dumps(body)  # the error itself is valid JSON
    direct = {"instances": [{**example, "ms_zoning": "\ud800"}]}
    assert app.handler(direct)["statusCode"] == 400
    assert logged_files(storage) == before


def test_routes_are_exact_and_the_stage_prefix_is_the_gateways(app: ModuleType, example: dict) -> None:
    body = json.dumps(example)
    assert _answer(app, http_event("POST", "/etc/passwd/predict", body))[0] == 404
    assert _answer(app, http_event("POST", "/predict/", body))[0] == 404
    staged = {**http_event("POST", "/prod/predict", body), "routeKey": "POST /predict"}
    assert _answer(app, staged)[0] == 200


def test_the_body_limit_counts_bytes(ames_bundle: Path, tmp_path: Path) -> None:
    app = load_handler(ames_bundle, tmp_path, MAX_BODY_BYTES="1000")
    text = json.dumps({"ms_zoning": "é" * 600}, ensure_ascii=False)
    assert len(text) < 1000 < len(text.encode())
    status, body = _answer(app, http_event("POST", "/predict", text))
    assert status == 413
    assert "1000 bytes" in body["error"]


def test_a_log_object_is_never_replaced(tmp_path: Path) -> None:
    sink = FileSink(tmp_path.as_uri())
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    first = sink.write([{"row": 0}], "m", "same", at)
    with pytest.raises(DuplicateRecordError):
        sink.write([{"row": 1}], "m", "same", at)
    assert Path(first.removeprefix("file://")).read_text() == '{"row":0}\n'
    names = [path.name for path in tmp_path.rglob("*")]
    assert names == ["predictions", "m", "dt=2026-12-01", "hour=10", "same.jsonl"]  # no leftovers


def test_restarts_are_bounded_per_period() -> None:
    budget = RestartBudget(limit=2, period_seconds=60)
    assert [budget.take() for _ in range(3)] == [True, True, False]
    later = RestartBudget(limit=1, period_seconds=0.0)
    assert later.take()
    assert later.take()  # the period has passed at once
