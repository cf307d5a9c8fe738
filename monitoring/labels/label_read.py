"""Read a window's labels back: only its hours' partitions (and older-layout objects), each label checked.

A stored label object may be anything by the time the monitor reads it (written by hand, cut
short, a link). Each object is parsed on its own, each label checked against the same rules as
at upload, and whatever fails is counted by reason and skipped; the monitor run goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from deployments.lambda_handler.contract import LABEL_FIELDS, LABELS_PREFIX, label_partition
from monitoring.labels.label_rules import LabelRules, count_reasons, refusal_reasons
from monitoring.logs.listing import list_partition
from monitoring.logs.read_stats import QUARANTINE_SAMPLES, QUARANTINE_TEXT_CHARS, BadLine
from monitoring.logs.records import INT64_MAX
from monitoring.logs.window import HOUR, Window
from tasks.core.storage import filesystem, join_url, to_url, write_bytes

FETCH_OBJECTS = 64
FILTER_ROWS = 1_000_000  # label rows parsed before they are filtered to the window's ids at once
NOT_JSON = "not valid JSON"
TOO_DEEP = "not valid JSON: nested too deeply for the JSON parser"
NOT_A_LABEL = "not a label record (request_id text, row integer, actual number or text)"


@dataclass
class LabelReadStats:
    """What a label read saw: objects, valid labels, and what it set aside by reason."""

    objects: int = 0
    labels: int = 0
    set_aside: dict[str, int] = field(default_factory=dict)
    samples: list[BadLine] = field(default_factory=list)

    def add(self, reason: str, count: int = 1, sample: BadLine | None = None) -> None:
        """Count labels (or objects) set aside for one reason."""
        self.set_aside[reason] = self.set_aside.get(reason, 0) + count
        if sample is not None and len(self.samples) < QUARANTINE_SAMPLES:
            self.samples.append(sample)


def _no_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {"request_id": pd.Series(dtype=object), "row": pd.Series(dtype="int64"), "actual": []}
    )


def _days(window: Window, now: datetime) -> list[datetime]:
    day = window.start.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = []
    while day <= now:
        days.append(day)
        day += timedelta(days=1)
    return days


def label_objects(
    storage_url: str, model_name: str, window: Window, now: datetime, hour_before: bool = False
) -> tuple[list[str], list[tuple[str, str]]]:
    """The label objects a window reads, in upload order, and the entries set aside unread.

    `hour_before` adds the labels of the hour before the window: a Firehose delivery placed in
    that hour can hold records of the window's first hour, and their labels are stored there.
    """
    fs, root = filesystem(storage_url)
    keyed: list[tuple[str, str]] = []  # (upload time and name, path)
    set_aside: dict[str, str] = {}
    hours = window.hours()
    for hour in [hours[0] - HOUR, *hours] if hour_before and hours else hours:
        listing = list_partition(fs, root, label_partition(model_name, hour), ".jsonl")
        keyed += [(path.rsplit("/", 1)[-1], path) for path in listing.files]
        set_aside.update(listing.set_aside)
    for day in _days(window, now):  # the older layout: by upload day, labels arrive after predictions
        listing = list_partition(fs, root, f"{LABELS_PREFIX}/{model_name}/dt={day:%Y-%m-%d}", ".jsonl")
        keyed += [(f"{day:%Y%m%d}T{path.rsplit('/', 1)[-1]}", path) for path in listing.files]
        set_aside.update(listing.set_aside)
    return [path for _, path in sorted(set(keyed))], sorted(set_aside.items())


def _typed(records: list[dict[str, Any]], rules: LabelRules) -> pa.Table:
    actual_type = pa.string() if rules.task is None else rules.actual_type
    actual = [record["actual"] for record in records]
    if rules.task is None:
        actual = [str(value) if value is not None else None for value in actual]
    return pa.table(
        {
            "request_id": pa.array([record["request_id"] for record in records], pa.string()),
            "row": pa.array([record["row"] for record in records], pa.int64()),
            "actual": pa.array(actual, actual_type),
        }
    )


def _actual(value: Any, rules: LabelRules) -> Any:
    """A stored `actual` as the rules check it; None where its type is wrong (the rules name why)."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if rules.task == "regression":
        if not number:
            return None
        try:
            return float(value)
        except OverflowError:
            return float("nan")
    if isinstance(value, str):
        return value
    return str(value) if rules.task is None and number else None


def _line_record(line: bytes, rules: LabelRules) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    except ValueError:
        raise ValueError(NOT_JSON) from None
    if not isinstance(record, dict):
        raise TypeError(NOT_A_LABEL)
    request_id, row = record.get("request_id"), record.get("row", 0)
    if (
        not isinstance(request_id, str)
        or isinstance(row, bool)
        or not isinstance(row, int)
        or abs(row) > INT64_MAX
    ):
        raise TypeError(NOT_A_LABEL)
    checked = {"request_id": request_id, "row": row, "actual": _actual(record.get("actual"), rules)}
    _typed([checked], rules)  # Arrow must take it (a lone surrogate escape, say, it cannot)
    return checked


def _parse_object(key: str, blob: bytes, rules: LabelRules, stats: LabelReadStats) -> pa.Table:
    """One stored object's labels; what cannot be read is counted and skipped."""
    if rules.task is not None:
        schema = pa.schema([("request_id", pa.string()), ("row", pa.int64()), ("actual", rules.actual_type)])
        try:
            table = pa_json.read_json(
                pa.py_buffer(blob if blob.endswith(b"\n") else blob + b"\n"),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=schema, unexpected_field_behavior="ignore"
                ),
            )
            return table.set_column(1, "row", pc.fill_null(table.column("row"), 0))
        except pa.ArrowInvalid:
            pass
    records = []
    for number, line in enumerate(blob.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            records.append(_line_record(line, rules))
        except (ValueError, TypeError, OverflowError, pa.ArrowException) as error:
            reason = str(error) if str(error) in {NOT_JSON, TOO_DEEP, NOT_A_LABEL} else NOT_A_LABEL
            stats.add(
                reason,
                sample=BadLine(key, number, reason, line[:QUARANTINE_TEXT_CHARS].decode("utf-8", "replace")),
            )
    return _typed(records, rules)


def _checked(
    table: pa.Table, rules: LabelRules, stats: LabelReadStats, request_ids: pa.Array | None
) -> pa.Table:
    """The labels of `table` for `request_ids` (all, without) that pass the checks; the rest counted."""
    if request_ids is not None:
        # the labels' ids are hashed and the window's probed: a week of ids is never one hash set
        ids = table.column("request_id")
        present = request_ids.filter(pc.is_in(request_ids, value_set=ids))
        table = table.filter(pc.is_in(ids, value_set=present))
    reasons = refusal_reasons(table.column("request_id"), table.column("row"), table.column("actual"), rules)
    for reason, count in count_reasons(reasons).items():
        stats.add(reason, count)
    return table.filter(pc.is_null(reasons))


def read_window_labels(
    storage_url: str,
    model_name: str,
    window: Window,
    rules: LabelRules,
    now: datetime | None = None,
    request_ids: pa.Array | None = None,
) -> tuple[pd.DataFrame, LabelReadStats]:
    """The window's valid labels (later uploads winning) and what was set aside.

    With `request_ids` (the window's logged ids) only their labels are kept as objects are read,
    so memory follows the window, also for older-layout objects that hold a whole upload; the
    labels of the hour before the window are read too (see `label_objects`).
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    stats = LabelReadStats()
    keys, set_aside = label_objects(storage_url, model_name, window, now, hour_before=request_ids is not None)
    for path, reason in set_aside:
        stats.objects += 1
        stats.add(reason, sample=BadLine(path, 0, reason, ""))
    fs, _ = filesystem(storage_url)
    tables: list[pa.Table] = []
    pending: list[pa.Table] = []  # parsed, not yet filtered to the window's ids

    def keep_pending() -> None:
        # one hash set of the window's ids per batch of label rows, not one per object
        if pending:
            tables.append(_checked(pa.concat_tables(pending), rules, stats, request_ids))
            pending.clear()

    for start in range(0, len(keys), FETCH_OBJECTS):
        chunk = keys[start : start + FETCH_OBJECTS]
        blobs = fs.cat(chunk, on_error="return")
        for key in chunk:  # upload order: later uploads win
            stats.objects += 1
            blob = blobs.get(key)
            if not isinstance(blob, bytes):
                reason = "unreadable label object"
                stats.add(reason, sample=BadLine(key, 0, f"{reason}: {blob}", ""))
                continue
            pending.append(_parse_object(key, blob, rules, stats))
            if sum(table.num_rows for table in pending) >= FILTER_ROWS:
                keep_pending()
    keep_pending()
    if not tables:
        return _no_labels(), stats
    labels = pa.concat_tables(tables).to_pandas()
    labels = labels.drop_duplicates(subset=["request_id", "row"], keep="last")[list(LABEL_FIELDS)]
    stats.labels = len(labels)
    return labels.reset_index(drop=True), stats


def quarantine_labels(storage_url: str, model_name: str, window: Window, stats: LabelReadStats) -> str | None:
    """Write the sample of labels set aside under `quarantine/<model>/<window>-labels.jsonl`."""
    if not stats.samples:
        return None
    fs, _ = filesystem(storage_url)
    lines = "".join(
        json.dumps(
            {
                "object": to_url(fs, item.object_key),
                "line": item.line,
                "reason": item.reason,
                "text": item.text,
            }
        )
        + "\n"
        for item in stats.samples
    )
    return write_bytes(
        join_url(storage_url, "quarantine", model_name, f"{window.name}-labels.jsonl"), lines.encode()
    )
