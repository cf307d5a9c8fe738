"""The Lambda handler in process: routes, validation, predictions and prediction logs."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from deployments.lambda_package.function_process import http_event
from tests.support.handler import load_handler, logged_files


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("predictions")


@pytest.fixture(scope="module")
def app(ames_bundle: Path, storage: Path) -> ModuleType:
    return load_handler(ames_bundle, storage, MAX_BATCH_ROWS="50")


@pytest.fixture(scope="module")
def example(ames_bundle: Path) -> dict:
    return json.loads((ames_bundle / "schema.json").read_text())["example"]


def _post(app: ModuleType, body: object, request_id: str | None = None) -> tuple[int, dict]:
    text = body if isinstance(body, str) else json.dumps(body)
    response = app.handler(http_event("POST", "/predict", text, request_id=request_id))
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def test_health_and_schema(app: ModuleType, example: dict) -> None:
    health = json.loads(app.handler(http_event("GET", "/health"))["body"])
    assert (health["status"], health["model_name"], health["model_version"]) == ("ok", "ames-test", "1")
    schema = json.loads(app.handler(http_event("GET", "/schema"))["body"])
    assert schema["example"] == example
    assert len(schema["features"]) == 79


def test_single_instance_prediction_is_logged_before_answering(
    app: ModuleType, example: dict, storage: Path
) -> None:
    status, body = _post(app, example, request_id="req-single")
    assert status == 200
    assert body["request_id"] == "req-single"
    assert body["model_version"] == "1"
    assert 30_000 < body["predictions"][0] < 800_000
    [path] = [p for p in logged_files(storage) if p.name == "req-single.jsonl"]
    assert path.parent.name.startswith("hour=")
    assert path.parent.parent.name.startswith("dt=")
    assert path.parent.parent.parent.name == "ames-test"
    [record] = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["request_id"] == "req-single"
    assert record["row"] == 0
    assert record["prediction"] == body["predictions"][0]
    assert record["model_version"] == "1"
    assert record["timestamp"].endswith("Z")
    assert record["features"]["gr_liv_area"] == example["gr_liv_area"]
    assert record["unknown_categories"] == []


def test_batch_with_unknown_category_and_missing_optional_field(
    app: ModuleType, example: dict, storage: Path
) -> None:
    unseen = {**example, "neighborhood": "Atlantis"}
    missing_optional = {k: v for k, v in example.items() if k != "lot_frontage"}
    status, body = _post(app, {"instances": [example, unseen, missing_optional]}, request_id="req-batch")
    assert status == 200
    assert len(body["predictions"]) == 3
    # The answer says what the log record says: which inputs were imputed, which categories unknown.
    assert body["imputed_fields"] == [[], [], ["lot_frontage"]]
    assert body["unknown_categories"] == [[], ["neighborhood"], []]
    records = [json.loads(line) for line in (next(storage.rglob("req-batch.jsonl"))).read_text().splitlines()]
    assert [r["row"] for r in records] == [0, 1, 2]
    assert records[1]["unknown_categories"] == ["neighborhood"]
    assert records[2]["features"]["lot_frontage"] is None
    assert [r["missing_fields"] for r in records] == [[], [], ["lot_frontage"]]


def test_numbers_outside_the_training_range_are_named_in_the_answer_the_log_and_the_metrics(
    app: ModuleType, example: dict, storage: Path, capsys: pytest.CaptureFixture
) -> None:
    """A house bigger than any trained on is priced and flagged; the sale's year (excluded) is not."""
    schema = json.loads(app.handler(http_event("GET", "/schema"))["body"])
    ranges = {feature["name"]: feature for feature in schema["features"]}
    assert "yr_sold" in schema["monitor_exclude"]
    largest = ranges["gr_liv_area"]["maximum"]
    assert largest <= 4000  # the spec's row bound
    huge = {**example, "gr_liv_area": largest + 1500, "lot_area": ranges["lot_area"]["minimum"] - 1}
    later = {**example, "yr_sold": ranges["yr_sold"]["maximum"] + 3}
    edge = {**example, "gr_liv_area": largest}
    capsys.readouterr()
    status, body = _post(app, {"instances": [example, huge, later, edge]}, request_id="req-outside")
    assert status == 200
    assert body["outside_training"] == [[], ["lot_area", "gr_liv_area"], [], []]
    assert len(body["predictions"]) == 4
    assert all(value > 0 for value in body["predictions"])  # answered all the same
    records = [json.loads(line) for line in next(storage.rglob("req-outside.jsonl")).read_text().splitlines()]
    assert [record["outside_training"] for record in records] == body["outside_training"]
    [line] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (line["request_id"], line["OutsideTraining"]) == ("req-outside", 2)


def test_a_category_with_spaces_around_it_is_the_category_training_saw(
    app: ModuleType, example: dict, storage: Path
) -> None:
    padded = {**example, "neighborhood": f" {example['neighborhood']}  "}
    status, body = _post(app, {"instances": [example, padded]}, request_id="req-padded")
    assert status == 200
    assert body["unknown_categories"] == [[], []]
    assert body["predictions"][0] == body["predictions"][1]
    records = [json.loads(line) for line in next(storage.rglob("req-padded.jsonl")).read_text().splitlines()]
    assert records[1]["features"]["neighborhood"] == example["neighborhood"]  # logged as training saw it


def test_direct_invocation_and_base64_body(app: ModuleType, example: dict) -> None:
    direct = app.handler({"instances": [example]})
    assert direct["statusCode"] == 200
    event = http_event("POST", "/predict", base64.b64encode(json.dumps(example).encode()).decode())
    event["isBase64Encoded"] = True
    assert app.handler(event)["statusCode"] == 200


@pytest.mark.parametrize(
    ("change", "status", "message", "field"),
    [
        (
            {"gr_liv_area": "big"},
            400,
            "instance 0: field 'gr_liv_area' must be a number, got string",
            "gr_liv_area",
        ),
        ({"gr_liv_area": True}, 400, "must be a number, got boolean", "gr_liv_area"),
        ({"neighborhood": 3.5}, 400, "field 'neighborhood' must be a string, got number", "neighborhood"),
        ({"colour": "red"}, 400, "instance 0: unknown field 'colour'", "colour"),
        ({"gr_liv_area": 1e39}, 400, "must be a finite number within float32 range", "gr_liv_area"),
        ({"gr_liv_area": 10**400}, 400, "must be a finite number", "gr_liv_area"),
    ],
)
def test_bad_instances_name_field_and_index(
    app: ModuleType, example: dict, storage: Path, change: dict, status: int, message: str, field: str
) -> None:
    before = logged_files(storage)
    code, body = _post(app, {"instances": [example, {**example, **change}]})
    assert code == status
    assert message.replace("instance 0", "instance 1") in body["error"]
    assert body["field"] == field
    assert body["instance"] == 1
    assert logged_files(storage) == before


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ("{not json", 400, "body is not valid JSON"),
        ('{"instances": [{"gr_liv_area": NaN}]}', 400, "NaN is not a valid JSON number"),
        ('{"instances": [{"gr_liv_area": Infinity}]}', 400, "Infinity is not a valid JSON number"),
        ("[1, 2]", 400, "body must be a JSON object"),
        ('{"instances": []}', 400, "'instances' is empty"),
        ('{"instances": {"a": 1}}', 400, "'instances' must be a list"),
        ('{"instances": [1]}', 400, "instance 0 must be a JSON object, got number"),
        (json.dumps({"instances": [{}] * 51}), 413, "batch of 51 instances is over the limit of 50"),
    ],
)
def test_bad_bodies_are_4xx(app: ModuleType, storage: Path, body: str, status: int, message: str) -> None:
    before = logged_files(storage)
    code, answer = _post(app, body)
    assert code == status
    assert message in answer["error"]
    assert logged_files(storage) == before


def test_routes_and_methods(app: ModuleType) -> None:
    assert app.handler(http_event("GET", "/predict"))["statusCode"] == 405
    assert app.handler(http_event("POST", "/", "{}"))["statusCode"] == 405
    assert app.handler(http_event("DELETE", "/health"))["statusCode"] == 405
    assert app.handler(http_event("GET", "/admin"))["statusCode"] == 404
    assert app.handler(http_event("POST", "/predict", None))["statusCode"] == 400
    assert app.handler("not an event")["statusCode"] == 400


def test_the_page_is_served_at_the_root(ames_bundle: Path, tmp_path: Path) -> None:
    """The function serves the page its zip carries; a zip built before pages were made has none."""
    without = load_handler(ames_bundle, tmp_path)
    missing = without.handler(http_event("GET", "/"))
    assert missing["statusCode"] == 404
    assert "has no page; deploy it again" in json.loads(missing["body"])["error"]
    model_dir = Path(shutil.copytree(ames_bundle, tmp_path / "model"))
    (model_dir / "page.html").write_text("<!doctype html><title>the page</title>", encoding="utf-8")
    app = load_handler(model_dir, tmp_path)
    response = app.handler(http_event("GET", "/", request_id="req-page"))
    assert response["statusCode"] == 200
    assert response["body"] == "<!doctype html><title>the page</title>"
    headers = response["headers"]
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert (headers["x-request-id"], headers["x-frame-options"]) == ("req-page", "DENY")
    assert headers["content-security-policy"] == "frame-ancestors 'none'"


EMF_UNITS = {"Milliseconds", "Count", "Seconds", "Microseconds", "Bytes", "Percent", "None"}
REQUEST_LINE_FIELDS = {"level", "request_id", "status", "latency_ms", "_aws", "ModelName", "ModelVersion"}
METRICS = {
    "Latency",
    "Requests",
    "Predictions",
    "ClientErrors",
    "ServerErrors",
    "UnknownCategories",
    "MissingFields",
    "OutsideTraining",
}


def _valid_emf(line: dict) -> dict[str, float]:
    """Check one line against the EMF specification; return its metric values."""
    directive = line["_aws"]
    assert isinstance(directive["Timestamp"], int)
    assert directive["Timestamp"] > 1_600_000_000_000  # milliseconds since the epoch
    [metrics] = directive["CloudWatchMetrics"]
    assert 0 < len(metrics["Namespace"]) <= 255
    for dimension_set in metrics["Dimensions"]:
        assert 0 < len(dimension_set) <= 30
        assert all(isinstance(line[name], str) and line[name] for name in dimension_set)
    assert len(metrics["Metrics"]) <= 100
    values = {}
    for metric in metrics["Metrics"]:
        assert metric["Unit"] in EMF_UNITS
        value = line[metric["Name"]]
        assert type(value) in {int, float}
        values[metric["Name"]] = value
    return values


def test_cloudwatch_lines_are_emf_metrics_and_carry_no_payload(
    app: ModuleType, example: dict, capsys: pytest.CaptureFixture
) -> None:
    """Every answered or refused request writes one EMF line; no feature value ever reaches it."""
    two_rows = {"instances": [{**example, "neighborhood": "Atlantis"}, {"gr_liv_area": 1500}]}
    capsys.readouterr()
    _post(app, example, request_id="req-log")
    _post(app, two_rows, request_id="req-unknown")
    _post(app, {"instances": [{**example, "gr_liv_area": "secret-value"}]}, request_id="req-bad")
    app.handler(http_event("GET", "/health", request_id="req-health"))
    app.handler(http_event("GET", "/admin", request_id="req-404"))
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["request_id"], line["status"]) for line in lines] == [
        ("req-log", 200),
        ("req-unknown", 200),
        ("req-bad", 400),
        ("req-health", 200),
        ("req-404", 404),
    ]
    assert all(set(line) == REQUEST_LINE_FIELDS | METRICS for line in lines)
    assert all((line["ModelName"], line["ModelVersion"]) == ("ames-test", "1") for line in lines)
    values = {line["request_id"]: _valid_emf(line) for line in lines}
    assert set(values["req-log"]) == METRICS
    assert values["req-log"]["Latency"] == lines[0]["latency_ms"] > 0
    counts = ("Requests", "Predictions", "ClientErrors", "ServerErrors", "UnknownCategories")
    assert {name: values["req-log"][name] for name in counts} == {
        "Requests": 1,
        "Predictions": 1,
        "ClientErrors": 0,
        "ServerErrors": 0,
        "UnknownCategories": 0,
    }
    assert values["req-unknown"]["Predictions"] == 2
    assert values["req-unknown"]["UnknownCategories"] == 1
    assert values["req-unknown"]["MissingFields"] == len(example) - 1  # all but gr_liv_area
    assert (values["req-bad"]["ClientErrors"], values["req-bad"]["Predictions"]) == (1, 0)
    assert (values["req-404"]["ClientErrors"], values["req-health"]["Predictions"]) == (1, 0)
    text = "\n".join(json.dumps(line) for line in lines)
    assert "secret-value" not in text
    assert "Atlantis" not in text


def test_a_failed_log_write_is_a_server_error_metric(
    ames_bundle: Path, example: dict, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the log folder should be", encoding="utf-8")
    app = load_handler(ames_bundle, blocked)
    capsys.readouterr()
    status, body = _post(app, example, request_id="req-500")
    assert (status, body["error"]) == (500, "internal error; the prediction was not logged")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    [request_line] = [line for line in lines if "status" in line]
    values = _valid_emf(request_line)
    assert (values["ServerErrors"], values["ClientErrors"], values["Predictions"]) == (1, 0, 0)


def test_classifier_returns_labels_and_probabilities(cancer_bundle: Path, tmp_path: Path) -> None:
    app = load_handler(cancer_bundle, tmp_path)
    example = json.loads((cancer_bundle / "schema.json").read_text())["example"]
    code, body = _post(app, {"instances": [example]}, request_id="req-cls")
    assert code == 200
    assert body["predictions"][0] in {"benign", "malignant"}
    probabilities = body["probabilities"][0]
    assert set(probabilities) == {"benign", "malignant"}
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    [record] = [json.loads(line) for line in next(tmp_path.rglob("req-cls.jsonl")).read_text().splitlines()]
    assert record["probabilities"] == probabilities


def test_missing_model_fails_the_cold_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"does not contain model\.onnx") as failure:
        load_handler(tmp_path, tmp_path)
    assert type(failure.value).__name__ == "ConfigurationError"


def test_rows_are_logged_with_their_source(app: ModuleType, example: dict, storage: Path) -> None:
    """API requests are online whatever they claim; a direct invocation may declare batch rows."""
    code, _ = _post(app, {"instances": [example], "source": "batch"}, request_id="req-claims-batch")
    assert code == 200
    direct = app.handler({"instances": [example, example], "source": "batch"}, None)
    assert direct["statusCode"] == 200
    batch_id = json.loads(direct["body"])["request_id"]
    refused = app.handler({"instances": [example], "source": "nightly"}, None)
    assert refused["statusCode"] == 400
    assert json.loads(refused["body"])["field"] == "source"

    def sources(request_id: str) -> list[str]:
        path = next(storage.rglob(f"{request_id}.jsonl"))
        return [json.loads(line)["source"] for line in path.read_text().splitlines()]

    assert sources("req-claims-batch") == ["online"]
    assert sources(batch_id) == ["batch", "batch"]


def test_missing_fields_are_imputed_predicted_and_listed(
    app: ModuleType, example: dict, storage: Path
) -> None:
    """A field training never saw missing is imputed by the pipeline, not refused (MISSING_FIELDS=impute)."""
    required = {k: v for k, v in example.items() if k not in {"gr_liv_area", "overall_qual"}}
    code, body = _post(
        app, {"instances": [required, {**example, "bsmt_qual": None}]}, request_id="req-missing"
    )
    assert code == 200
    assert all(30_000 < price < 800_000 for price in body["predictions"])
    records = [json.loads(line) for line in next(storage.rglob("req-missing.jsonl")).read_text().splitlines()]
    assert [r["missing_fields"] for r in records] == [["overall_qual", "gr_liv_area"], ["bsmt_qual"]]
    assert records[0]["features"]["gr_liv_area"] is None


def test_missing_fields_can_be_refused(ames_bundle: Path, example: dict, tmp_path: Path) -> None:
    strict = load_handler(ames_bundle, tmp_path, MISSING_FIELDS="reject")
    code, body = _post(strict, {"instances": [example, {**example, "gr_liv_area": None}]})
    assert code == 400
    assert body["error"] == "instance 1: field 'gr_liv_area' is required (MISSING_FIELDS=reject)"
    assert (body["field"], body["instance"]) == ("gr_liv_area", 1)
    assert not list(tmp_path.rglob("*.jsonl"))
    optional = {k: v for k, v in example.items() if k != "lot_frontage"}  # nullable in training
    assert _post(strict, optional)[0] == 200
    with pytest.raises(RuntimeError, match="MISSING_FIELDS must be one of impute, reject, got 'drop'"):
        load_handler(ames_bundle, tmp_path, MISSING_FIELDS="drop")


def _per_feature_graph(packed: Path, target: Path) -> None:
    """The same graph with one `[N, 1]` input per feature, as bundles were exported before packing."""
    import onnx

    model = onnx.load(packed)
    graph = model.graph
    splits = [
        node for node in graph.node if node.op_type == "Split" and node.input[0] in {"numeric", "categorical"}
    ]
    originals = {value.name: value for value in graph.input}
    per_feature = []
    for split in splits:
        element = originals[split.input[0]].type.tensor_type.elem_type
        for output in split.output:
            name = output.removeprefix("column:")
            per_feature.append(onnx.helper.make_tensor_value_info(name, element, [None, 1]))
    renamed = {output: output.removeprefix("column:") for split in splits for output in split.output}
    kept = [node for node in graph.node if node not in splits]
    for node in kept:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    graph.ClearField("node")
    graph.node.extend(kept)
    graph.ClearField("input")
    graph.input.extend(per_feature)
    model.ClearField("metadata_props")
    onnx.checker.check_model(model)
    onnx.save(model, target)


def test_a_bundle_exported_with_one_input_per_feature_still_serves(
    ames_bundle: Path, app: ModuleType, example: dict, tmp_path: Path
) -> None:
    """Redeploying an older champion (per-feature graph) with this handler predicts the same."""
    legacy = tmp_path / "bundle"
    shutil.copytree(ames_bundle, legacy)
    _per_feature_graph(ames_bundle / "model.onnx", legacy / "model.onnx")
    old = load_handler(legacy, tmp_path / "logs")
    assert app.MODEL.packed
    assert not old.MODEL.packed
    instances = [example, {**example, "gr_liv_area": None, "bsmt_qual": None}]
    code, body = _post(old, {"instances": instances})
    assert code == 200
    assert body["predictions"] == _post(app, {"instances": instances})[1]["predictions"]


def test_a_graph_and_schema_that_disagree_on_column_order_fail_the_cold_start(
    ames_bundle: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(ames_bundle, bundle)
    schema = json.loads((bundle / "schema.json").read_text())
    numeric = [index for index, feature in enumerate(schema["features"]) if feature["type"] == "number"]
    first, second = numeric[:2]
    features = schema["features"]
    features[first], features[second] = features[second], features[first]
    (bundle / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match=r"model\.onnx and schema\.json disagree on the numeric columns"):
        load_handler(bundle, tmp_path / "logs")


@pytest.mark.parametrize(
    "bounds",
    [
        {"gr_liv_area": [None, "4k"]},
        {"gr_liv_area": [None, True]},
        {"gr_liv_area": [None, "inf"]},
        {"gr_liv_area": 4000},
        ["gr_liv_area"],
    ],
)
def test_a_hand_edited_row_bound_that_is_not_a_number_fails_the_cold_start_naming_it(
    ames_bundle: Path, tmp_path: Path, bounds: object
) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(ames_bundle, bundle)
    schema = json.loads((bundle / "schema.json").read_text())
    schema["row_bounds"] = bounds
    (bundle / "schema.json").write_text(json.dumps(schema))
    with pytest.raises(ValueError, match=r"^schema row_bounds .*must be"):
        load_handler(bundle, tmp_path / "logs")
