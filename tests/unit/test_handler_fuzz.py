"""A fuzzed stream of malformed requests: every answer is a 4xx JSON error and nothing is logged."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployments.lambda_package.function_process import http_event
from tests.support.handler import load_handler, logged_files

MAX_ROWS = 20
EXAMPLES = 1500


@pytest.fixture(scope="module")
def fuzz_target(ames_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, dict, Path]:
    storage = tmp_path_factory.mktemp("fuzz-logs")
    # strict about missing fields, so leaving a required field out is one of the malformed kinds
    app = load_handler(ames_bundle, storage, MAX_BATCH_ROWS=str(MAX_ROWS), MISSING_FIELDS="reject")
    schema = json.loads((ames_bundle / "schema.json").read_text())
    return app, schema, storage


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
not_a_number = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)
not_a_category = st.one_of(
    st.floats(allow_nan=False).filter(lambda x: not float(x).is_integer()),
    st.booleans(),
    st.lists(scalars, max_size=2),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)


@st.composite
def malformed_bodies(draw: st.DrawFn, schema: dict) -> str:
    example = schema["example"]
    features = {f["name"]: f for f in schema["features"]}
    kind = draw(
        st.sampled_from(
            [
                "not-json",
                "not-object",
                "instances-not-list",
                "instances-empty",
                "too-many",
                "instance-not-object",
                "wrong-type",
                "unknown-field",
                "missing-required",
                "non-finite",
            ]
        )
    )
    if kind == "not-json":
        return draw(st.text(max_size=40).filter(_not_json))
    if kind == "not-object":
        return json.dumps(draw(st.one_of(scalars, st.lists(json_values, max_size=3))))
    if kind == "instances-not-list":
        return json.dumps(
            {"instances": draw(st.one_of(scalars, st.dictionaries(st.text(max_size=4), scalars, max_size=2)))}
        )
    if kind == "instances-empty":
        return json.dumps({"instances": []})
    if kind == "too-many":
        return json.dumps({"instances": [example] * draw(st.integers(MAX_ROWS + 1, MAX_ROWS * 3))})
    if kind == "instance-not-object":
        position = draw(st.integers(0, 3))
        bad = draw(st.one_of(scalars, st.lists(scalars, max_size=2)))
        return json.dumps({"instances": [example] * position + [bad]})
    if kind == "wrong-type":
        name = draw(st.sampled_from(sorted(example)))
        value = draw(not_a_number if features[name]["type"] == "number" else not_a_category)
        return json.dumps({"instances": [example, {**example, name: value}]})
    if kind == "unknown-field":
        name = draw(st.text(min_size=1, max_size=12).filter(lambda n: n not in features))
        return json.dumps({"instances": [{**example, name: draw(scalars)}]})
    if kind == "missing-required":
        required = sorted(name for name, feature in features.items() if not feature["nullable"])
        name = draw(st.sampled_from(required))
        instance = {k: v for k, v in example.items() if k != name}
        if draw(st.booleans()):
            instance[name] = None
        return json.dumps({"instances": [instance]})
    number = sorted(name for name, feature in features.items() if feature["type"] == "number")
    name = draw(st.sampled_from(number))
    literal = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]))
    return json.dumps({"instances": [{**example, name: 0}]}).replace(f'"{name}": 0', f'"{name}": {literal}')


def test_malformed_requests_get_4xx_and_leave_no_log(fuzz_target: tuple[ModuleType, dict, Path]) -> None:
    app, schema, storage = fuzz_target
    seen: list[int] = []

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(body=malformed_bodies(schema))
    def check(body: str) -> None:
        response = app.handler(http_event("POST", "/predict", body))
        seen.append(response["statusCode"])
        assert 400 <= response["statusCode"] < 500, (response, body[:300])
        answer = json.loads(response["body"])
        assert isinstance(answer["error"], str)
        assert answer["error"]

    check()
    assert len(seen) >= 1000
    assert logged_files(storage) == []
    # The same function does log a valid request there, so the empty folder above means something.
    assert app.handler(http_event("POST", "/predict", json.dumps(schema["example"])))["statusCode"] == 200
    assert len(logged_files(storage)) == 1
