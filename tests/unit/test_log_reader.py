"""Reading prediction logs the handler wrote: windows, bad objects, sampling, compaction."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from deployments.lambda_handler.contract import (
    MISSING_FIELDS,
    OUTSIDE_TRAINING,
    PROBABILITIES,
    RECORD_FIELDS,
    UNKNOWN_CATEGORIES,
    ServingSchema,
)
from monitoring.logs.compaction import compact_closed_hours, compact_hour
from monitoring.logs.reader import LogReader, compacted_object, raw_partition
from monitoring.logs.window import Window
from tests.support.handler import load_handler, logged_files
from tests.support.traffic import instances_from_reference, send

MODEL = "ames-test"


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def app(ames_bundle: Path, storage: Path) -> ModuleType:
    return load_handler(ames_bundle, storage)


@pytest.fixture
def schema(ames_bundle: Path) -> ServingSchema:
    return ServingSchema.load(ames_bundle)


def _reader(storage: Path, schema: ServingSchema, row_cap: int = 50_000) -> LogReader:
    return LogReader(storage.as_uri(), MODEL, schema, row_cap=row_cap)


def _move_to_hour(storage: Path, hour: datetime) -> None:
    """Replay every logged record as if it had been written during `hour`."""
    for path in logged_files(storage):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for index, record in enumerate(records):
            record["timestamp"] = (hour + timedelta(seconds=index)).isoformat().replace("+00:00", "Z")
        target = Path(raw_partition(storage.as_uri(), MODEL, hour).removeprefix("file://")) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(json.dumps(record) + "\n" for record in records))
        path.unlink()


def test_window_without_logs_reads_nothing(storage: Path, schema: ServingSchema) -> None:
    logs = _reader(storage, schema).read(Window.last(24))
    assert logs.frame.empty
    assert (logs.stats.rows, logs.stats.objects, logs.stats.bad_lines) == (0, 0, 0)


def test_handler_logs_come_back_typed(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    answers = send(app, instances_from_reference(ames_bundle, 60), per_request=3)
    logs = _reader(storage, schema).read(Window.last(1))
    assert logs.stats.objects == 20
    assert len(logs.frame) == 60
    assert set(logs.frame["request_id"]) == {answer["request_id"] for answer in answers}
    assert logs.frame["gr_liv_area"].dtype == "float64"
    assert logs.frame["neighborhood"].map(type).eq(str).all()
    assert isinstance(logs.frame["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(logs.frame["timestamp"].dtype.tz) == "UTC"
    predictions = sorted(p for answer in answers for p in answer["predictions"])
    assert sorted(logs.frame["prediction"]) == pytest.approx(predictions)


def test_bad_lines_and_objects_are_counted_and_quarantined(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 20), per_request=2)
    folder = logged_files(storage)[0].parent
    good = [json.loads(line) for line in logged_files(storage)[0].read_text().splitlines()]
    record = good[0]
    lines = [
        json.dumps({**record, "request_id": "mixed", "row": 0}),
        "this is not json",
        json.dumps(
            {k: v for k, v in record.items() if k != "prediction"} | {"request_id": "mixed", "row": 2}
        ),
        json.dumps(
            {
                **record,
                "request_id": "mixed",
                "row": 3,
                "features": {**record["features"], "gr_liv_area": "big"},
            }
        ),
        json.dumps({**record, "request_id": "mixed", "row": 4}),
    ]
    (folder / "mixed.jsonl").write_text("\n".join(lines) + "\n")
    truncated = (
        json.dumps({**record, "request_id": "cut", "row": 0})
        + "\n"
        + json.dumps({**record, "request_id": "cut", "row": 1})
    )
    (folder / "cut.jsonl").write_text(truncated[: len(truncated) - 40])
    (folder / "empty.jsonl").write_text("")
    (folder / ".inflight.jsonl.1.partial").write_text("half a rec")

    reader = _reader(storage, schema)
    window = Window.last(1)
    logs = reader.read(window)
    assert logs.stats.objects == 13  # 10 good + mixed + cut + empty; the .partial file is not an object
    assert (
        len(logs.frame) == 20 + 2 + 1
    )  # good rows, the two valid lines of "mixed", the intact line of "cut"
    assert logs.stats.bad_lines == 5  # not json, missing key, wrong type, truncated, empty object
    assert logs.stats.bad_objects == 2  # truncated and empty
    url = reader.quarantine(logs.stats, window)
    quarantined = [json.loads(line) for line in Path(url.removeprefix("file://")).read_text().splitlines()]
    reasons = {item["reason"] for item in quarantined}
    assert "not valid JSON" in reasons
    assert "missing required keys: prediction" in reasons
    assert "feature 'gr_liv_area' is not a finite number" in reasons
    assert "truncated object" in reasons
    assert "empty object" in reasons
    assert any(item["text"] == "this is not json" for item in quarantined)


def test_row_cap_sample_is_deterministic(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 120), per_request=4)
    first = _reader(storage, schema, row_cap=100).read(Window.last(1))
    second = _reader(storage, schema, row_cap=100).read(Window.last(1))
    assert len(first.frame) == 100
    assert first.stats.sampled
    assert first.stats.rows_before_sampling == 120
    pd.testing.assert_frame_equal(first.frame, second.frame)


def test_partial_hours_are_filtered_to_the_window(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 10), per_request=1)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    _move_to_hour(storage, hour)  # each object's record lands at hour + 0 s
    reader = _reader(storage, schema)
    assert len(reader.read(Window(hour, hour + timedelta(hours=1))).frame) == 10
    assert len(reader.read(Window(hour + timedelta(minutes=30), hour + timedelta(hours=2))).frame) == 0
    assert len(reader.read(Window(hour - timedelta(hours=1), hour)).frame) == 0


def test_closed_hours_are_compacted_and_reread_in_one_object(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 30), per_request=3)
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    _move_to_hour(storage, hour)
    reader = _reader(storage, schema)
    window = Window(hour, hour + timedelta(hours=1))
    before = reader.read(window)

    [done] = compact_closed_hours(reader, now)
    assert (done.hour, done.rows, done.objects, done.deleted_originals) == (hour, 30, 10, False)
    assert Path(compacted_object(storage.as_uri(), MODEL, hour).removeprefix("file://")).is_file()
    assert len(reader.raw_objects(hour)) == 10  # originals kept by default
    after = reader.read(window)
    assert after.stats.compacted_hours == 1
    assert after.stats.objects == 0  # no JSON object was read: the Parquet copy answered
    pd.testing.assert_frame_equal(before.frame, after.frame)
    assert compact_closed_hours(reader, now) == []  # idempotent


def test_compaction_can_delete_verified_originals(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 8), per_request=2)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    _move_to_hour(storage, hour)
    reader = _reader(storage, schema)
    done = compact_hour(reader, hour, delete_originals=True)
    assert done is not None
    assert done.deleted_originals
    assert reader.raw_objects(hour) == []
    assert len(reader.read(Window(hour, hour + timedelta(hours=1))).frame) == 8


def test_open_hours_are_not_compacted(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 4), per_request=2)
    assert compact_closed_hours(_reader(storage, schema), datetime.now(UTC)) == []


def test_batch_rows_are_counted_apart_and_left_out_unless_included(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    instances = instances_from_reference(ames_bundle, 10)
    answers = send(app, instances[:6], per_request=2)
    assert app.handler({"instances": instances[6:], "source": "batch"}, None)["statusCode"] == 200
    # an online request logged before records carried a source still counts as online traffic
    [older] = [path for path in logged_files(storage) if path.stem == answers[0]["request_id"]]
    records = [json.loads(line) for line in older.read_text().splitlines()]
    without_source = [{key: value for key, value in r.items() if key != "source"} for r in records]
    older.write_text("".join(json.dumps(record) + "\n" for record in without_source))
    now = datetime.now(UTC)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    _move_to_hour(storage, hour)
    window = Window(hour, hour + timedelta(hours=1))

    for compacted in (False, True):
        if compacted:
            assert compact_hour(_reader(storage, schema), hour) is not None
        online = _reader(storage, schema).read(window)
        assert (len(online.frame), online.stats.batch_rows, online.stats.compacted_hours) == (6, 4, compacted)
        assert set(online.frame["source"].fillna("online")) == {"online"}
        everything = LogReader(storage.as_uri(), MODEL, schema, include_batch=True).read(window)
        assert (len(everything.frame), everything.stats.batch_rows) == (10, 4)
        assert (everything.frame["source"] == "batch").sum() == 4


def _hostile_lines(record: dict) -> dict[str, str]:
    """Lines the handler never writes, each with the reason the reader must give."""
    return {
        "[" * 100_000 + "]" * 100_000: "not valid JSON",
        json.dumps(
            {**record, "request_id": "inf", "prediction": float("inf")}
        ): "prediction must be a finite number",
        json.dumps(
            {**record, "request_id": "nan", "features": {**record["features"], "gr_liv_area": float("nan")}}
        ): ("feature 'gr_liv_area' is not a finite number"),
        json.dumps(
            {**record, "request_id": "lat", "latency_ms": float("-inf")}
        ): "latency_ms must be a finite number",
        json.dumps({**record, "request_id": "big", "row": 10**30}): "row must be a non-negative integer",
        json.dumps({**record, "request_id": "name", "model_name": 5}): "model_name must be a string",
        json.dumps(
            {**record, "request_id": "outside", "outside_training": "gr_liv_area"}
        ): "outside_training must be a list of strings",
        json.dumps(
            {**record, "request_id": "outside-numbers", "outside_training": [1]}
        ): "outside_training must be a list of strings",
        json.dumps({**record, "request_id": "\ud800"}): "a value does not fit the record schema",
    }


@pytest.mark.parametrize("alone", [True, False], ids=["one object per hostile line", "all in one object"])
def test_hostile_lines_cost_only_themselves_on_both_parse_paths(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema, *, alone: bool
) -> None:
    send(app, instances_from_reference(ames_bundle, 10), per_request=1)
    folder = logged_files(storage)[0].parent
    record = json.loads(logged_files(storage)[0].read_text().splitlines()[0])
    hostile = _hostile_lines(record)
    if alone:  # each object fails the chunk's fast pass on its own
        for number, line in enumerate(hostile):
            (folder / f"hostile-{number}.jsonl").write_text(line + "\n")
    else:
        (folder / "hostile.jsonl").write_text("".join(line + "\n" for line in hostile))
    reader = _reader(storage, schema)
    logs = reader.read(Window.last(1))
    assert (len(logs.frame), logs.stats.bad_lines) == (10, len(hostile))
    reasons = sorted(item.reason for item in logs.stats.samples)
    assert [reason.split(":")[0] for reason in reasons] == sorted(
        reason.split(":")[0] for reason in hostile.values()
    )
    assert logs.frame["prediction"].abs().max() < 1e7


def test_non_finite_numbers_never_pass_the_fast_path(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 5), per_request=1)
    for path in logged_files(storage):  # every object alike: the fast pass would take the whole chunk
        records = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**item, "prediction": float("inf")}) + "\n" for item in records))
    logs = _reader(storage, schema).read(Window.last(1))
    assert (len(logs.frame), logs.stats.bad_lines) == (0, 5)
    assert {item.reason for item in logs.stats.samples} == {"prediction must be a finite number"}


def test_links_and_odd_entries_are_set_aside_unread(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema, tmp_path: Path
) -> None:
    send(app, instances_from_reference(ames_bundle, 4), per_request=1)
    folder = logged_files(storage)[0].parent
    secret = tmp_path / "secret.jsonl"
    secret.write_text(logged_files(storage)[0].read_text().replace('"row": 0', '"row": 7'))
    (folder / "link.jsonl").symlink_to(secret)
    (folder / "folder.jsonl").mkdir()
    os.mkfifo(folder / "fifo.jsonl")  # a read would block forever
    reader = _reader(storage, schema)
    window = Window.last(1)
    logs = reader.read(window)
    assert (len(logs.frame), logs.stats.bad_objects, logs.stats.objects) == (4, 3, 7)
    assert 7 not in set(logs.frame["row"])
    reasons = {Path(item.object_key).name: item.reason for item in logs.stats.samples}
    assert reasons == {
        "link.jsonl": "symbolic link, not followed",
        "folder.jsonl": "not a regular file",
        "fifo.jsonl": "not a regular file",
    }
    quarantined = Path(reader.quarantine(logs.stats, window).removeprefix("file://")).read_text()
    assert secret.read_text()[:40] not in quarantined
    # a linked hour folder is one bad object, and nothing behind it is read
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    linked = Path(raw_partition(storage.as_uri(), MODEL, hour).removeprefix("file://"))
    linked.parent.mkdir(parents=True, exist_ok=True)
    linked.symlink_to(folder)
    logs = reader.read(Window.last(2))
    assert (len(logs.frame), logs.stats.bad_objects) == (4, 4)


def test_a_corrupt_compacted_copy_falls_back_to_the_raw_hour(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    send(app, instances_from_reference(ames_bundle, 6), per_request=1)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    _move_to_hour(storage, hour)
    reader = _reader(storage, schema)
    compact_hour(reader, hour)
    copy = Path(compacted_object(storage.as_uri(), MODEL, hour).removeprefix("file://"))
    copy.write_bytes(b"PAR1 not parquet at all PAR1")
    logs = reader.read(Window.last(4))
    assert (len(logs.frame), logs.stats.bad_objects, logs.stats.compacted_hours) == (6, 1, 0)
    assert logs.stats.samples[0].reason.startswith("unreadable compacted object")


def test_every_record_field_survives_compaction_with_the_originals_deleted(
    app: ModuleType, ames_bundle: Path, storage: Path, schema: ServingSchema
) -> None:
    """`unknown_categories`, `missing_fields` and `outside_training` survive writing and compaction."""
    instances = instances_from_reference(ames_bundle, 4)
    category = next(feature.name for feature in schema.features if not feature.is_number)
    left_out = next(feature.name for feature in schema.features if feature.is_number)
    area = next(feature for feature in schema.features if feature.name == "gr_liv_area")
    instances[1][category] = "never seen in training"
    del instances[1][left_out]
    instances[1][area.name] = area.maximum + 1
    send(app, instances, per_request=2)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    _move_to_hour(storage, hour)
    reader = _reader(storage, schema)
    window = Window(hour, hour + timedelta(hours=1))
    before = reader.read(window).frame
    done = compact_hour(reader, hour, delete_originals=True)
    assert done is not None
    assert reader.raw_objects(hour) == []
    after = reader.read(window)
    assert after.stats.compacted_hours == 1
    written = {name for name in RECORD_FIELDS if name not in {"features", PROBABILITIES}}
    assert written <= set(after.frame.columns)

    def lists(frame: pd.DataFrame) -> dict[tuple[str, int], tuple[list[str], list[str], list[str]]]:
        return {
            (request_id, row): (list(unknown), list(missing), list(outside))
            for request_id, row, unknown, missing, outside in zip(
                frame["request_id"],
                frame["row"],
                frame[UNKNOWN_CATEGORIES],
                frame[MISSING_FIELDS],
                frame[OUTSIDE_TRAINING],
                strict=True,
            )
        }

    compacted = lists(after.frame)
    assert compacted == lists(before)
    [(unknown, missing, outside)] = [values for values in compacted.values() if values[0]]
    assert unknown == [category]
    assert left_out in missing
    assert outside == [area.name]
