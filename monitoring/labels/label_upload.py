"""Upload labels: check each one, match it to its logged prediction, store it in that prediction's hour.

Memory stays bounded whatever the file's size. The CSV is read in blocks; the labels that pass
the rules, and the (request_id, row) pairs logged in the lookback, are spooled to local files
in buckets by a hash of the request id; each bucket is matched on its own; matched labels are
gathered per prediction hour on local disk and written out one partition at a time. Nothing
reaches storage before the whole file is read and matched, so a file that turns out unreadable
half-way stores nothing.

Policy: a label that breaks a rule, names a (request_id, row) never logged in the lookback, or
is repeated later in the same file (the last one counts) is refused; the others are stored,
and the refusals are counted by reason with a sample under `quarantine/`. With
`all_or_nothing`, any refusal stores nothing.
"""

from __future__ import annotations

import json
import math
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from deployments.lambda_handler.contract import (
    LABEL_UPLOAD_TIME,
    LABELS_PREFIX,
    ServingSchema,
    label_partition,
)
from monitoring.labels.label_csv import LabelError, header_columns, label_blocks
from monitoring.labels.label_rules import (
    LabelRules,
    actuals_from_text,
    bucket_of,
    refusal_reasons,
    rows_from_text,
)
from monitoring.logs.logged_ids import logged_ids
from monitoring.logs.reader import LogReader
from monitoring.logs.window import HOUR, Window
from tasks.core.storage import join_url, write_bytes

DEFAULT_SINCE_HOURS = 7 * 24
CSV_BLOCK_BYTES = 4 << 20
BUCKET_BYTES = 16 << 20  # file bytes per bucket: what one bucket's match holds in memory
MAX_BUCKETS = 64
REFUSED_SAMPLES = 100
DUPLICATE = "repeated later in the file (the last one is stored)"


def unknown_reason(since_hours: int) -> str:
    """The reason for a label whose (request_id, row) was not logged in the lookback."""
    return f"request_id and row not logged in the last {since_hours} hours"


@dataclass
class Refusals:
    """Refused labels: counts and first line by reason, and a sample to look at."""

    counts: dict[str, int] = field(default_factory=dict)
    first_line: dict[str, int] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)

    def add(self, refused: pa.Table) -> None:
        """Count a table of refused labels (columns line, reason, request_id, row, actual)."""
        if not refused.num_rows:
            return
        for item in refused.group_by("reason").aggregate([("line", "count"), ("line", "min")]).to_pylist():
            reason = item["reason"]
            self.counts[reason] = self.counts.get(reason, 0) + item["line_count"]
            self.first_line[reason] = min(self.first_line.get(reason, item["line_min"]), item["line_min"])
        room = REFUSED_SAMPLES - len(self.sample)
        if room > 0:
            self.sample += refused.slice(0, room).to_pylist()

    @property
    def total(self) -> int:
        """How many labels were refused."""
        return sum(self.counts.values())

    def text(self) -> str:
        """`2 request_id and row not logged … (first at line 3); 1 …`, largest first."""
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))
        return "; ".join(
            f"{count} {reason} (first at line {self.first_line[reason]})" for reason, count in ordered
        )


@dataclass(frozen=True)
class LabelUpload:
    """What an upload stored and refused, and where the stored labels went."""

    rows: int
    stored: int
    refused: Refusals
    partitions: list[str]
    location: str
    refused_sample_url: str | None


class _Spool:
    """Arrow files on local disk, one per bucket, appended to block by block."""

    def __init__(self, folder: Path, name: str, schema: pa.Schema, buckets: int) -> None:
        self.paths = [folder / f"{name}-{index}.arrow" for index in range(buckets)]
        self.schema = schema
        self.writers = [pa.ipc.new_stream(str(path), schema) for path in self.paths]

    def add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        buckets = bucket_of(table.column("request_id").combine_chunks(), len(self.paths))
        order = np.argsort(buckets, kind="stable")
        counts = np.bincount(buckets, minlength=len(self.paths))
        ordered = table.take(pa.array(order)).cast(self.schema)
        start = 0
        for index, count in enumerate(counts):
            if count:
                self.writers[index].write_table(ordered.slice(start, int(count)))
            start += int(count)

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    def read(self, index: int) -> pa.Table:
        with pa.ipc.open_stream(str(self.paths[index])) as reader:
            return reader.read_all()


def _check_block(batch: pa.RecordBatch, first_line: int, rules: LabelRules) -> tuple[pa.Table, pa.Table]:
    """A CSV block's labels typed and checked: (valid ones, refused ones with their reason)."""
    count = batch.num_rows
    request_id = batch.column("request_id")
    row_text = batch.column("row") if "row" in batch.schema.names else pa.array(["0"] * count)
    rows = rows_from_text(row_text)
    actual = actuals_from_text(batch.column("actual"), rules)
    lines = pa.array(np.arange(first_line, first_line + count, dtype=np.int64))
    reasons = refusal_reasons(request_id, rows, actual, rules)
    valid = pc.is_null(reasons)
    typed = pa.table({"request_id": request_id, "row": rows, "actual": actual, "line": lines})
    refused = pa.table(
        {
            "line": lines,
            "reason": reasons,
            "request_id": request_id,
            "row": row_text,
            "actual": batch.column("actual"),
        }
    )
    return typed.filter(valid), refused.filter(pc.invert(valid))


def _refused(table: pa.Table, reason: str) -> pa.Table:
    return pa.table(
        {
            "line": table.column("line"),
            "reason": pa.array([reason] * table.num_rows, pa.string()),
            "request_id": table.column("request_id"),
            "row": pc.cast(table.column("row"), pa.string()),
            "actual": pc.cast(table.column("actual"), pa.string()),
        }
    )


def _match(labels: pa.Table, logged: pa.Table, refusals: Refusals, since_hours: int) -> pa.Table:
    """One bucket's labels with the hour each was logged in; duplicates and unknown pairs refused."""
    last = labels.group_by(["request_id", "row"]).aggregate([("line", "max")])
    is_last = pc.is_in(labels.column("line"), value_set=last.column("line_max"))
    refusals.add(_refused(labels.filter(pc.invert(is_last)), DUPLICATE))
    labels = labels.filter(is_last)
    hours = logged.group_by(["request_id", "row"]).aggregate([("hour", "max")])
    joined = labels.join(hours, keys=["request_id", "row"], join_type="left outer")
    known = pc.is_valid(joined.column("hour_max"))
    refusals.add(_refused(joined.filter(pc.invert(known)), unknown_reason(since_hours)))
    return joined.filter(known)


def _gather_by_hour(matched: pa.Table, folder: Path) -> None:
    """Append matched labels to one local JSON Lines file per prediction hour."""
    matched = matched.sort_by([("hour_max", "ascending"), ("line", "ascending")])
    hours = matched.column("hour_max").to_numpy()
    starts: list[int] = np.flatnonzero(np.r_[True, hours[1:] != hours[:-1]]).tolist() if len(hours) else []
    for position, start in enumerate(starts):
        end = starts[position + 1] if position + 1 < len(starts) else len(hours)
        part = matched.slice(int(start), int(end - start)).select(["request_id", "row", "actual"])
        text = part.to_pandas().to_json(orient="records", lines=True, double_precision=15)
        with (folder / f"{int(hours[start])}.jsonl").open("a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")


def store_labels(
    csv_path: Path,
    storage_url: str,
    model_name: str,
    schema: ServingSchema,
    *,
    since_hours: int = DEFAULT_SINCE_HOURS,
    now: datetime | None = None,
    all_or_nothing: bool = False,
) -> LabelUpload:
    """Check, match and store a labels CSV; LabelError (nothing stored) when the file is unusable."""
    at = (now or datetime.now(UTC)).astimezone(UTC)
    rules = LabelRules.for_schema(schema)
    columns = header_columns(csv_path)
    buckets = min(MAX_BUCKETS, max(1, math.ceil(csv_path.stat().st_size / BUCKET_BYTES)))
    label_schema = pa.schema(
        [
            ("request_id", pa.string()),
            ("row", pa.int64()),
            ("actual", rules.actual_type),
            ("line", pa.int64()),
        ]
    )
    id_schema = pa.schema([("request_id", pa.string()), ("row", pa.int64()), ("hour", pa.int64())])
    refusals = Refusals()
    rows = 0
    with tempfile.TemporaryDirectory(prefix="labels-") as temporary:
        folder = Path(temporary)
        labels = _Spool(folder, "labels", label_schema, buckets)
        for batch in label_blocks(csv_path, columns, CSV_BLOCK_BYTES):
            valid, refused = _check_block(batch, rows + 2, rules)  # line 1 is the header
            rows += batch.num_rows
            labels.add(valid)
            refusals.add(refused)
        labels.close()
        if not rows:
            msg = f"{csv_path} has a header but no labels"
            raise LabelError(msg)
        logged = _Spool(folder, "logged", id_schema, buckets)
        reader = LogReader(storage_url, model_name, schema)
        window = Window(at - timedelta(hours=since_hours), at + HOUR)
        compacted, _ = reader.compacted_hours(window)
        for hour in window.hours():
            ids = logged_ids(reader, hour, compacted.get(hour))
            index = int(hour.timestamp()) // 3600
            logged.add(ids.append_column("hour", pa.array(np.full(ids.num_rows, index, dtype=np.int64))))
        logged.close()
        gathered = folder / "hours"
        gathered.mkdir()
        for bucket in range(buckets):
            _gather_by_hour(_match(labels.read(bucket), logged.read(bucket), refusals, since_hours), gathered)
        stored = rows - refusals.total
        if not stored or (all_or_nothing and refusals.total):
            msg = f"no labels stored: {refusals.total} of {rows} refused: {refusals.text()}"
            raise LabelError(msg)
        name = f"{at:{LABEL_UPLOAD_TIME}}-{uuid.uuid4().hex[:8]}.jsonl"
        partitions = []
        for path in sorted(gathered.iterdir(), key=lambda item: int(item.stem)):
            hour = datetime.fromtimestamp(int(path.stem) * 3600, UTC)
            partitions.append(label_partition(model_name, hour))
            write_bytes(join_url(storage_url, partitions[-1], name), path.read_bytes())
    sample_url = None
    if refusals.total:
        lines = "".join(json.dumps(record) + "\n" for record in refusals.sample)
        sample_url = write_bytes(
            join_url(storage_url, "quarantine", model_name, f"labels-{name}"), lines.encode()
        )
    location = join_url(storage_url, LABELS_PREFIX, model_name)
    return LabelUpload(rows, stored, refusals, partitions, location, sample_url)
