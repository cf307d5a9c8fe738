"""Firehose deliveries on file storage: GZIP objects of many records, in both key layouts."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from deployments.lambda_handler.contract import ServingSchema
from monitoring.labels.label_read import read_window_labels
from monitoring.labels.label_rules import LabelRules
from monitoring.labels.label_upload import store_labels
from monitoring.logs.compaction import compact_hour
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from tests.support.handler import load_handler, logged_files
from tests.support.traffic import instances_from_reference, send

MODEL = "ames-test"
HOUR = datetime(2026, 11, 20, 10, tzinfo=UTC)


@pytest.fixture
def records(ames_bundle: Path, tmp_path: Path) -> list[dict[str, Any]]:
    """Twenty records the real handler logged (its per-request objects removed)."""
    storage = tmp_path / "handler"
    send(load_handler(ames_bundle, storage), instances_from_reference(ames_bundle, 20), per_request=1)
    found = []
    for path in logged_files(storage):
        found += [json.loads(line) for line in path.read_text().splitlines()]
        path.unlink()
    return found


def _at(record: dict[str, Any], when: datetime) -> dict[str, Any]:
    return {**record, "timestamp": when.isoformat().replace("+00:00", "Z")}


def _deliver(root: Path, folder: str, lines: list[bytes], *, compress: bool = True) -> Path:
    """One Firehose object under `predictions/<model>/<folder>/`, named as Firehose names it."""
    name = f"ames-predictions-1-{HOUR:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}" + (".gz" if compress else "")
    path = root / "predictions" / MODEL / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    body = b"".join(lines)
    path.write_bytes(gzip.compress(body) if compress else body)
    return path


def _lines(records: list[dict[str, Any]]) -> list[bytes]:
    return [json.dumps(record).encode() + b"\n" for record in records]


def test_both_layouts_are_read_and_rows_count_by_their_own_time(
    records: list[dict[str, Any]], ames_bundle: Path, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    late = [_at(r, HOUR - timedelta(minutes=2)) for r in records[:3]]  # hour 9, delivered in hour 10
    inside = [_at(r, HOUR + timedelta(minutes=i)) for i, r in enumerate(records[3:13])]
    early = [_at(r, HOUR + timedelta(minutes=61)) for r in records[13:15]]  # hour 11
    _deliver(root, "dt=2026-11-20/hour=10", _lines(late + inside[:5] + early))
    _deliver(root, "2026/11/20/10", _lines(inside[5:]), compress=False)  # Firehose's default layout
    # delivered in hour 9's partition, records of hour 10 (the buffer spilled over the hour)
    spill = [_at(r, HOUR + timedelta(seconds=30)) for r in records[15:18]]
    _deliver(root, "dt=2026-11-20/hour=09", _lines(spill))
    reader = LogReader(root.as_uri(), MODEL, ServingSchema.load(ames_bundle))

    logs = reader.read(Window(HOUR, HOUR + timedelta(hours=1)))

    wanted = {(r["request_id"], r["row"]) for r in inside + spill}
    assert set(zip(logs.frame["request_id"], logs.frame["row"], strict=True)) == wanted
    assert (logs.stats.rows, logs.stats.bad_lines, logs.stats.bad_objects) == (13, 0, 0)
    earlier = reader.read(Window(HOUR - timedelta(hours=1), HOUR))
    assert set(earlier.frame["request_id"]) == {r["request_id"] for r in late}
    two_hours = reader.read(Window(HOUR - timedelta(hours=1), HOUR + timedelta(hours=2)))
    assert two_hours.stats.rows == len(late + inside + spill + early)  # every record exactly once


def test_a_bad_line_costs_itself_and_a_corrupt_gzip_object_is_set_aside(
    records: list[dict[str, Any]], ames_bundle: Path, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    good = [_at(r, HOUR + timedelta(minutes=i)) for i, r in enumerate(records[:8])]
    lines = _lines(good)
    _deliver(
        root, "dt=2026-11-20/hour=10", [*lines[:4], b'{"request_id": "x", "row": 0, "timest\n', *lines[4:]]
    )
    corrupt = _deliver(root, "dt=2026-11-20/hour=10", _lines(records[8:10]))
    corrupt.write_bytes(corrupt.read_bytes()[:-12] + b"not the end")
    reader = LogReader(root.as_uri(), MODEL, ServingSchema.load(ames_bundle))

    window = Window(HOUR, HOUR + timedelta(hours=1))
    logs = reader.read(window)

    assert set(logs.frame["request_id"]) == {r["request_id"] for r in good}
    assert (logs.stats.objects, logs.stats.bad_lines, logs.stats.bad_objects) == (2, 1, 1)
    reasons = {
        (Path(item.object_key).name, item.line, item.reason.split(":")[0]) for item in logs.stats.samples
    }
    assert (corrupt.name, 0, "corrupt gzip object") in reasons
    assert any(line == 5 for _, line, _ in reasons)  # the bad line, numbered in the decompressed text
    quarantine = reader.quarantine(logs.stats, window)
    assert b"corrupt gzip object" in Path(quarantine.removeprefix("file://")).read_bytes()


def test_a_closed_hour_of_deliveries_is_compacted_and_read_back_the_same(
    records: list[dict[str, Any]], ames_bundle: Path, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    inside = [_at(r, HOUR + timedelta(minutes=i)) for i, r in enumerate(records[:10])]
    spill = [_at(r, HOUR + timedelta(minutes=60, seconds=5)) for r in records[10:12]]
    _deliver(root, "dt=2026-11-20/hour=10", _lines(inside + spill))
    reader = LogReader(root.as_uri(), MODEL, ServingSchema.load(ames_bundle))
    next_hour = Window(HOUR + timedelta(hours=1), HOUR + timedelta(hours=2))
    before = reader.read(Window(HOUR, HOUR + timedelta(hours=1)))

    done = compact_hour(reader, HOUR, delete_originals=True)

    assert done is not None
    assert (done.rows, done.objects) == (12, 1)  # kept whole: rows are placed by their time on read
    after = reader.read(Window(HOUR, HOUR + timedelta(hours=1)))
    assert after.stats.compacted_hours == 1
    assert list(after.frame["request_id"]) == list(before.frame["request_id"])
    assert set(reader.read(next_hour).frame["request_id"]) == {r["request_id"] for r in spill}


def test_labels_match_delivered_records_and_join_in_the_window_of_their_time(
    records: list[dict[str, Any]], ames_bundle: Path, tmp_path: Path
) -> None:
    root = tmp_path / "storage"
    inside = [_at(r, HOUR + timedelta(minutes=i)) for i, r in enumerate(records[:6])]
    spill = [_at(r, HOUR + timedelta(seconds=20)) for r in records[6:9]]  # hour 10, delivered in hour 9
    _deliver(root, "dt=2026-11-20/hour=10", _lines(inside))
    _deliver(root, "2026/11/20/09", _lines(spill))
    corrupt = _deliver(root, "dt=2026-11-20/hour=10", _lines(records[9:11]))
    corrupt.write_bytes(corrupt.read_bytes()[:20])
    schema = ServingSchema.load(ames_bundle)
    labelled = inside + spill
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "request_id,row,actual\n"
        + "".join(f"{r['request_id']},{r['row']},{100000 + i}\n" for i, r in enumerate(labelled))
    )

    upload = store_labels(csv, root.as_uri(), MODEL, schema, now=HOUR + timedelta(hours=2))

    assert (upload.rows, upload.stored) == (9, 9)
    window = Window(HOUR, HOUR + timedelta(hours=1))
    logs = LogReader(root.as_uri(), MODEL, schema).read(window)
    ids = logs.frame["request_id"].astype(str)
    labels, _ = read_window_labels(
        root.as_uri(),
        MODEL,
        window,
        LabelRules.for_schema(schema),
        now=HOUR + timedelta(hours=2),
        request_ids=pa.array(ids.unique()),
    )
    assert set(zip(labels["request_id"], labels["row"], strict=True)) == {
        (r["request_id"], r["row"]) for r in labelled
    }
