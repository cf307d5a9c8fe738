"""Labels: each upload rule, the prediction-hour layout, later uploads winning, and the checked read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pandas as pd
import pyarrow as pa
import pytest

from deployments.lambda_handler.contract import ServingSchema, label_partition
from monitoring.labels import label_read
from monitoring.labels.commands import join_labels, labelled_rows, read_labels, upload_labels
from monitoring.labels.label_csv import LabelError, header_columns
from monitoring.labels.label_read import read_window_labels
from monitoring.labels.label_rules import (
    BAD_ROW,
    EMPTY_ID,
    NOT_FINITE,
    LabelRules,
    actuals_from_text,
    not_a_class,
    refusal_reasons,
    rows_from_text,
)
from monitoring.labels.label_upload import DUPLICATE, store_labels, unknown_reason
from monitoring.logs.window import Window
from tests.support.handler import load_handler
from tests.support.traffic import instances_from_reference, send

MODEL = "ames-test"
REGRESSION = LabelRules("regression")
ZERO_ONE = LabelRules("classification", ("0", "1"))


def _reasons(
    ids: list[str | None], rows: list[str], actuals: list[str], rules: LabelRules
) -> list[str | None]:
    typed = actuals_from_text(pa.array(actuals, pa.string()), rules)
    return refusal_reasons(
        pa.array(ids, pa.string()), rows_from_text(pa.array(rows)), typed, rules
    ).to_pylist()


def test_rows_must_be_plain_integers_below_the_largest_batch() -> None:
    rows = ["0", "999", "1000", "-1", "1.5", "1e20", "", "abc", "99999999999999999999"]
    assert rows_from_text(pa.array(rows)).to_pylist() == [0, 999, 1000, None, None, None, None, None, None]
    reasons = _reasons(["a"] * len(rows), rows, ["1.0"] * len(rows), REGRESSION)
    assert reasons == [None, None] + [BAD_ROW] * (len(rows) - 2)


def test_regression_actuals_must_be_finite_numbers() -> None:
    actuals = ["187000", "1.5e5", "inf", "-Infinity", "nan", "cheap", ""]
    assert _reasons(["a"] * 7, ["0"] * 7, actuals, REGRESSION) == [None, None] + [NOT_FINITE] * 5


def test_classification_actuals_are_compared_as_text_with_the_classes() -> None:
    actuals = ["1", "0", "yes", "1.0", " 1", "True"]
    reasons = _reasons(["a"] * 6, ["0"] * 6, actuals, ZERO_ONE)
    assert reasons == [None, None] + [not_a_class(("0", "1"))] * 4
    assert not_a_class(("0", "1")) == "actual is not one of the classes 0, 1"


def test_an_empty_request_id_is_refused_first() -> None:
    assert _reasons(["", None, "a"], ["x", "0", "0"], ["1", "1", "1"], ZERO_ONE) == [EMPTY_ID, EMPTY_ID, None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"   \n", "is empty"),
        ("request_id,row,actual\na,0,1\n".encode("utf-16"), "is UTF-16 text: save it as UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "is not UTF-8 text"),
        (b"request_id,actual\xff\xfe\n", "is not UTF-8 text"),
        (b"id,actual\na,1\n", "missing: request_id"),
        (b"request_id,row\na,1\n", "missing: actual"),
    ],
)
def test_files_that_are_no_labels_csv_are_refused_whole(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(content)
    with pytest.raises(LabelError, match=message):
        header_columns(path)


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"\xef\xbb\xbfrequest_id,actual\na,1\n")
    assert header_columns(path) == ["request_id", "actual"]


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def app(ames_bundle: Path, storage: Path) -> ModuleType:
    return load_handler(ames_bundle, storage)


@pytest.fixture
def schema(ames_bundle: Path) -> ServingSchema:
    return ServingSchema.load(ames_bundle)


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


def test_upload_stores_the_good_labels_by_prediction_hour_and_reports_the_rest(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema, tmp_path: Path
) -> None:
    answers = send(app, instances_from_reference(ames_bundle, 6), per_request=2)
    first, second, third = (answer["request_id"] for answer in answers)
    lines = [
        "request_id,row,actual",
        f"{first},0,100000",  # line 2
        f"{first},1,110000",
        f"{second},0,120000",
        f"{second},0,125000",  # a later line for the same row: it is stored, line 4 is the duplicate
        f" {third},0,130000",  # stray space: an id nobody logged
        f"{third},2,140000",  # the request had rows 0 and 1
        f"{third},1,1e999",
        f"{third},1000,1",
        "never-logged,0,1",
        f"{third},0,150000",
    ]
    upload = store_labels(_csv(tmp_path, "\n".join(lines) + "\n"), storage.as_uri(), MODEL, schema)
    unknown = unknown_reason(168)
    assert (upload.rows, upload.stored) == (10, 4)
    assert upload.refused.counts == {DUPLICATE: 1, unknown: 3, NOT_FINITE: 1, BAD_ROW: 1}
    assert upload.refused.first_line == {DUPLICATE: 4, unknown: 6, NOT_FINITE: 8, BAD_ROW: 9}
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    assert upload.partitions == [label_partition(MODEL, hour)]
    stored = list((storage / label_partition(MODEL, hour)).glob("*.jsonl"))
    assert len(stored) == 1
    records = [json.loads(line) for line in stored[0].read_text().splitlines()]
    assert {(r["request_id"], r["row"], r["actual"]) for r in records} == {
        (first, 0, 100000.0),
        (first, 1, 110000.0),
        (second, 0, 125000.0),
        (third, 0, 150000.0),
    }
    sample = Path(upload.refused_sample_url.removeprefix("file://")).read_text().splitlines()
    assert {json.loads(line)["line"] for line in sample} == {4, 6, 7, 8, 9, 10}


def test_a_file_with_nothing_to_store_stores_nothing(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema, tmp_path: Path
) -> None:
    send(app, instances_from_reference(ames_bundle, 1))
    with pytest.raises(
        LabelError, match=r"no labels stored: 2 of 2 refused: 2 request_id and row not logged"
    ):
        store_labels(_csv(tmp_path, "request_id,actual\nx,1\ny,2\n"), storage.as_uri(), MODEL, schema)
    with pytest.raises(LabelError, match="has a header but no labels"):
        store_labels(_csv(tmp_path, "request_id,actual\n"), storage.as_uri(), MODEL, schema)
    with pytest.raises(LabelError, match="line 3 has 2 fields, the header has 3"):
        store_labels(_csv(tmp_path, "request_id,row,actual\na,0,1\nb,1\n"), storage.as_uri(), MODEL, schema)
    assert not (storage / "labels").exists()


def test_later_uploads_win_and_the_window_reads_only_its_hours(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    answers = send(app, instances_from_reference(ames_bundle, 3))
    ids = [answer["request_id"] for answer in answers]
    root = storage.as_uri()
    upload_labels(pd.DataFrame({"request_id": ids, "actual": [1.0, 2.0, 3.0]}), root, MODEL, schema)
    upload_labels(
        pd.DataFrame({"request_id": ids[:1], "row": [0], "actual": [9.0]}), root, MODEL, "regression"
    )
    labels = read_labels(root, MODEL, Window.last(1), schema=schema)
    assert labels.set_index("request_id")["actual"].to_dict() == {ids[0]: 9.0, ids[1]: 2.0, ids[2]: 3.0}
    earlier = Window(datetime.now(UTC) - timedelta(hours=5), datetime.now(UTC) - timedelta(hours=2))
    assert read_labels(root, MODEL, earlier, schema=schema).empty
    logs = pd.DataFrame({"request_id": [*ids, "other"], "row": [0, 0, 0, 0]})
    assert join_labels(logs, labels)["actual"].tolist()[:3] == [9.0, 2.0, 3.0]
    with pytest.raises(LabelError, match="no labels stored: 1 of 2 refused"):
        upload_labels(pd.DataFrame({"request_id": [ids[0], "x"], "actual": [1.0, 2.0]}), root, MODEL, schema)


def test_labels_filtered_in_batches_keep_the_later_upload_and_only_the_windows_requests(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = send(app, instances_from_reference(ames_bundle, 4))
    ids = [answer["request_id"] for answer in answers]
    root = storage.as_uri()
    upload_labels(pd.DataFrame({"request_id": ids, "actual": [1.0, 2.0, 3.0, 4.0]}), root, MODEL, schema)
    upload_labels(pd.DataFrame({"request_id": ids[1:2], "actual": [8.0]}), root, MODEL, schema)
    monkeypatch.setattr(label_read, "FILTER_ROWS", 1)  # every object filtered on its own
    window_ids = pa.array([ids[0], ids[1], ids[2], "unlabelled"])  # the window did not log ids[3]
    labels, stats = read_window_labels(
        root, MODEL, Window.last(1), LabelRules.for_schema(schema), request_ids=window_ids
    )
    assert labels.set_index("request_id")["actual"].to_dict() == {ids[0]: 1.0, ids[1]: 8.0, ids[2]: 3.0}
    assert stats.objects == 2
    keys = pa.table({"request_id": window_ids, "row": pa.array([0, 0, 0, 0], pa.int64())})
    joined = labelled_rows(keys, labels)
    assert joined.set_index("request_id")["actual"].to_dict() == {ids[0]: 1.0, ids[1]: 8.0, ids[2]: 3.0}
    assert labelled_rows(keys, labels.iloc[0:0]).empty


def test_old_layout_labels_are_still_read(storage: Path, schema: ServingSchema) -> None:
    old = storage / "labels" / MODEL / f"dt={datetime.now(UTC):%Y-%m-%d}"
    old.mkdir(parents=True)
    (old / "083000000000-aaaaaaaa.jsonl").write_text('{"request_id": "r1", "row": 0, "actual": 5.0}\n')
    (old / "093000000000-bbbbbbbb.jsonl").write_text('{"request_id": "r1", "row": 0, "actual": 6.0}\n')
    labels = read_labels(storage.as_uri(), MODEL, Window.last(1), schema=schema)
    assert labels.to_dict("records") == [{"request_id": "r1", "row": 0, "actual": 6.0}]


def test_planted_label_objects_are_counted_and_skipped(storage: Path, tmp_path: Path) -> None:
    classes = ServingSchema.from_dict(
        {"task": "classification", "target": "y", "classes": ["0", "1"], "features": []}
    )
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    folder = storage / label_partition(MODEL, hour)
    folder.mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text('{"request_id": "s", "row": 0, "actual": "1"}\n')
    (folder / "a-link.jsonl").symlink_to(secret)
    (folder / "b-planted.jsonl").write_text(
        '{"request_id": "r1", "row": 0, "actual": "1"}\n'
        '{"request_id": "r2", "row": 0, "actual": "yes"}\n'
        '{"request_id": "r3", "row": "abc", "actual": "1"}\n'
        '{"request_id": "r4", "row": 100000000000000000000, "actual": "1"}\n'
        + "[" * 100_000
        + "]" * 100_000
        + "\nnot json\n"
    )
    labels, stats = read_window_labels(
        storage.as_uri(), MODEL, Window.last(1), LabelRules.for_schema(classes)
    )
    assert labels.to_dict("records") == [{"request_id": "r1", "row": 0, "actual": "1"}]
    assert stats.set_aside == {
        "symbolic link, not followed": 1,
        "not valid JSON: nested too deeply for the JSON parser": 1,
        "not valid JSON": 1,
        "not a label record (request_id text, row integer, actual number or text)": 2,
        not_a_class(("0", "1")): 1,
    }
    assert all("secret" not in item.text and item.text != secret.read_text() for item in stats.samples)
