"""Read a window of prediction logs fast, with bounded memory, setting bad lines aside.

Objects are listed per hour partition of the window only, fetched concurrently in chunks
(`fs.cat` on many paths: concurrent requests on S3), and each chunk is parsed in one pass
by Arrow's JSON reader against the model's record schema. A chunk that fails that pass
is parsed object by object, then line by line, so one bad line costs only its own object.
Above the row cap, the rows with the smallest hash of (request id, row) are kept: the same
window always gives the same sample, whatever order the objects arrive in.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from deployments.lambda_handler.contract import (
    BATCH,
    COMPACTED_PREFIX,
    PROBABILITIES,
    PROBABILITY,
    REQUIRED_FIELDS,
    SMOKE_PREFIX,
    SOURCE,
    ServingSchema,
    compacted_key,
    hour_partition,
)
from monitoring.records import BadRecordError, feature_types, parse_line, record_schema
from monitoring.window import Window
from tasks.storage import filesystem, join_url, s3_client, to_url, write_bytes

CHUNK_OBJECTS = 256
S3_FETCH_THREADS = 16
UTC_TIME = pa.timestamp("us", tz="UTC")
QUARANTINE_SAMPLES = 100
QUARANTINE_TEXT_CHARS = 2000


@dataclass
class BadLine:
    """A line set aside, with where it came from and why."""

    object_key: str
    line: int
    reason: str
    text: str


@dataclass
class ReadStats:
    """What a read saw: objects, rows, and what was set aside."""

    objects: int = 0
    rows: int = 0
    bad_lines: int = 0
    bad_objects: int = 0
    compacted_hours: int = 0
    rows_before_sampling: int = 0
    batch_rows: int = 0
    samples: list[BadLine] = field(default_factory=list)

    @property
    def sampled(self) -> bool:
        """Whether the row cap cut the window down."""
        return self.rows_before_sampling > self.rows

    def add_bad(self, bad: list[BadLine]) -> None:
        """Count bad lines and keep the first ones as samples."""
        self.bad_lines += len(bad)
        room = QUARANTINE_SAMPLES - len(self.samples)
        self.samples.extend(bad[: max(room, 0)])


@dataclass
class PredictionLogs:
    """The rows of a window as an Arrow table (features flattened into columns) and the read stats."""

    table: pa.Table
    stats: ReadStats
    quarantine_url: str | None = None
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a pandas frame (converted once, on first use)."""
        if self._frame is None:
            self._frame = self.table.to_pandas()
        return self._frame


def raw_partition(root: str, model: str, hour: datetime) -> str:
    """Where the handler writes one hour of a model's prediction logs."""
    return join_url(root, hour_partition(model, hour))


def compacted_object(root: str, model: str, hour: datetime) -> str:
    """Where a closed hour's compacted Parquet copy lives (a prefix of its own, for lifecycle rules)."""
    return join_url(root, compacted_key(model, hour))


class LogReader:
    """Reads one model's prediction logs from a storage root (file:// or s3://)."""

    def __init__(
        self,
        storage_url: str,
        model_name: str,
        schema: ServingSchema,
        row_cap: int = 50_000,
        *,
        include_batch: bool = False,
    ) -> None:
        self.root = storage_url.rstrip("/")
        self.model = model_name
        self.schema = schema
        self.row_cap = row_cap
        self.include_batch = include_batch
        self.types = feature_types(schema)
        self.arrow_schema = record_schema(schema)
        self.fs, _ = filesystem(self.root)
        self._s3 = s3_client() if self.root.startswith("s3://") else None
        self.positive_class = schema.positive_class

    # listing -----------------------------------------------------------------------------

    def _ls(self, url: str) -> list[str]:
        _, path = filesystem(url)
        try:
            return sorted(self.fs.ls(path, detail=False))
        except FileNotFoundError:
            return []

    def raw_objects(self, hour: datetime) -> list[str]:
        """The complete JSON Lines objects of one hour (temporary `.partial` files excluded)."""
        return [
            path
            for path in self._ls(raw_partition(self.root, self.model, hour))
            if path.endswith(".jsonl") and not path.rsplit("/", 1)[-1].startswith(".")
        ]

    def compacted_hours(self, window: Window) -> dict[datetime, str]:
        """Compacted hours of the window's days (one listing per day)."""
        found: dict[datetime, str] = {}
        wanted = set(window.hours())
        for day in window.days():
            prefix = join_url(self.root, COMPACTED_PREFIX, self.model, f"dt={day:%Y-%m-%d}")
            for path in self._ls(prefix):
                name = path.rsplit("/", 1)[-1]
                if name.startswith("hour=") and name.endswith(".parquet"):
                    hour = day.replace(hour=int(name[5:7]))
                    if hour in wanted:
                        found[hour] = path
        return found

    # parsing -----------------------------------------------------------------------------

    def _fast_parse(self, payload: bytes) -> pa.Table:
        table = pa_json.read_json(
            pa.py_buffer(payload),
            read_options=pa_json.ReadOptions(block_size=1 << 24),
            parse_options=pa_json.ParseOptions(
                explicit_schema=self.arrow_schema, unexpected_field_behavior="ignore"
            ),
        )
        for key in REQUIRED_FIELDS:
            if table.column(key).null_count:
                msg = f"a record has no {key}"
                raise BadRecordError(msg)
        return table

    def _parse_object(self, key: str, blob: bytes) -> tuple[list[dict[str, Any]], list[BadLine]]:
        records, bad = [], []
        lines = blob.split(b"\n")
        truncated = not blob.endswith(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(parse_line(line, self.schema, self.types))
            except BadRecordError as error:
                last = number == len(lines)
                reason = "truncated object" if truncated and last else str(error)
                text = line[:QUARANTINE_TEXT_CHARS].decode("utf-8", "replace")
                bad.append(BadLine(key, number, reason, text))
        return records, bad

    def parse_objects(self, blobs: dict[str, bytes | Exception]) -> tuple[pa.Table, ReadStats]:
        """Parse fetched objects into one flat table; set unreadable objects and bad lines aside."""
        stats = ReadStats(objects=len(blobs))
        good: dict[str, bytes] = {}
        for key, blob in blobs.items():
            if isinstance(blob, Exception) or not blob.strip():
                stats.bad_objects += 1
                reason = f"unreadable object: {blob}" if isinstance(blob, Exception) else "empty object"
                stats.add_bad([BadLine(key, 0, reason, "")])
            else:
                good[key] = blob
        try:
            table = self._fast_parse(b"".join(b if b.endswith(b"\n") else b + b"\n" for b in good.values()))
            return self._flatten(table), stats
        except (pa.ArrowInvalid, BadRecordError):
            pass
        tables = []
        for key, blob in good.items():
            try:
                tables.append(self._fast_parse(blob if blob.endswith(b"\n") else blob + b"\n"))
                continue
            except (pa.ArrowInvalid, BadRecordError):
                pass
            records, bad = self._parse_object(key, blob)
            if bad:
                stats.bad_objects += int(any(item.reason == "truncated object" for item in bad))
                stats.add_bad(bad)
            if records:
                tables.append(pa.Table.from_pylist(records, schema=self.arrow_schema))
        table = pa.concat_tables(tables) if tables else self.arrow_schema.empty_table()
        return self._flatten(table), stats

    def _flatten(self, table: pa.Table) -> pa.Table:
        """Feature fields become top-level columns (chunk by chunk, no copy)."""
        flat = table.flatten()
        columns = {}
        for name, column in zip(flat.column_names, flat.columns, strict=True):
            if name.startswith("features."):
                columns[name.removeprefix("features.")] = column
            elif name == f"{PROBABILITIES}.{self.positive_class}":
                columns[PROBABILITY] = column
            elif not name.startswith(f"{PROBABILITIES}."):
                columns[name] = column
        return pa.table(columns)

    # reading ------------------------------------------------------------------------------

    def fetch(self, keys: list[str]) -> dict[str, bytes | Exception]:
        """Fetch objects; failures come back as exceptions, one per object.

        On S3, boto3 GETs from a bounded thread pool: with one request per small object,
        the requests are the cost, and they overlap. Locally one batched `cat` is enough.
        """
        if not keys:
            return {}
        if self._s3 is None:
            fetched = self.fs.cat(keys, on_error="return")
            return {key: fetched.get(key, FileNotFoundError(key)) for key in keys}
        client = self._s3

        def get_object(path: str) -> tuple[str, bytes | Exception]:
            bucket, key = path.split("/", 1)
            try:
                return path, client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except Exception as error:  # noqa: BLE001 - any failure sets this one object aside
                return path, error

        with ThreadPoolExecutor(S3_FETCH_THREADS) as pool:
            return dict(pool.map(get_object, keys))

    def read_keys(self, keys: list[str]) -> tuple[pa.Table, ReadStats]:
        """Fetch and parse a list of objects, chunk by chunk."""
        total = ReadStats()
        tables = []
        for start in range(0, len(keys), CHUNK_OBJECTS):
            table, stats = self.parse_objects(self.fetch(keys[start : start + CHUNK_OBJECTS]))
            tables.append(table)
            _merge(total, stats)
        table = pa.concat_tables(tables) if tables else self._flatten(self.arrow_schema.empty_table())
        return table, total

    def read(self, window: Window) -> PredictionLogs:
        """Every valid row logged in the window (capped), plus what was set aside."""
        stats = ReadStats()
        kept: pa.Table | None = None
        compacted = self.compacted_hours(window)
        stats.compacted_hours = len(compacted)
        for hour in window.hours():
            if hour in compacted:
                with self.fs.open(compacted[hour], "rb") as handle:
                    parquet = pq.read_table(handle)
                table, hour_stats = parquet, _stats_from_metadata(parquet)
            else:
                table, hour_stats = self.read_keys(self.raw_objects(hour))
            _merge(stats, hour_stats)
            table = _with_valid_times(table, stats)
            if not window.covers_whole(hour):
                table = _within(table, window)
            table = _drop_smoke_tests(table)
            batch = _batch_rows(table)
            stats.batch_rows += int(pc.sum(batch).as_py() or 0)
            if not self.include_batch:
                table = table.filter(pc.invert(batch))
            stats.rows_before_sampling += table.num_rows
            # older objects and compacted hours may lack newer optional fields (`source`)
            kept = table if kept is None else pa.concat_tables([kept, table], promote_options="default")
            if kept.num_rows > 2 * self.row_cap:
                kept = self._cap(kept)
        if kept is None:
            kept = _with_valid_times(self._flatten(self.arrow_schema.empty_table()), stats)
        kept = self._cap(kept)
        stats.rows = kept.num_rows
        return PredictionLogs(kept, stats)  # in hour, then object-key order: the same on every read

    def _cap(self, table: pa.Table) -> pa.Table:
        if table.num_rows <= self.row_cap:
            return table
        keys = (
            pd.Series(table.column("request_id").to_numpy(zero_copy_only=False))
            + ":"
            + pd.Series(table.column("row").to_numpy()).astype(str)
        )
        hashes = pd.util.hash_array(keys.to_numpy(dtype=object))
        chosen = np.sort(np.argpartition(hashes, self.row_cap - 1)[: self.row_cap])
        return table.take(pa.array(chosen))

    def quarantine(self, stats: ReadStats, window: Window) -> str | None:
        """Write the sample of bad lines under `quarantine/<model>/<window>.jsonl`."""
        if not stats.samples:
            return None
        url = join_url(self.root, "quarantine", self.model, f"{window.name}.jsonl")
        lines = (
            json.dumps(
                {
                    "object": to_url(self.fs, item.object_key),
                    "line": item.line,
                    "reason": item.reason,
                    "text": item.text,
                }
            )
            for item in stats.samples
        )
        return write_bytes(url, ("\n".join(lines) + "\n").encode())


def _merge(total: ReadStats, part: ReadStats) -> None:
    total.objects += part.objects
    total.bad_objects += part.bad_objects
    total.bad_lines += part.bad_lines
    room = QUARANTINE_SAMPLES - len(total.samples)
    total.samples.extend(part.samples[: max(room, 0)])


def _stats_from_metadata(table: pa.Table) -> ReadStats:
    metadata = json.loads((table.schema.metadata or {}).get(b"loopml", b"{}"))
    return ReadStats(
        objects=0,
        bad_lines=int(metadata.get("bad_lines", 0)),
        bad_objects=int(metadata.get("bad_objects", 0)),
    )


def _with_valid_times(table: pa.Table, stats: ReadStats) -> pa.Table:
    """Turn the timestamp column into UTC times; rows whose time does not parse are set aside."""
    column = table.column("timestamp")
    if pa.types.is_timestamp(column.type):
        return table
    try:
        times = pc.cast(column, UTC_TIME)
    except pa.ArrowInvalid:  # some value is not ISO 8601: find which, row by row
        text = pd.Series(column.to_pylist(), dtype=object)
        parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        invalid = parsed.isna().to_numpy()
        rows = table.filter(pa.array(invalid)).select(["request_id", "row", "timestamp"]).to_pylist()
        reason = "timestamp is not ISO 8601"
        stats.add_bad([BadLine(row["request_id"], row["row"], reason, json.dumps(row)) for row in rows])
        table = table.filter(pa.array(~invalid))
        times = pa.array(parsed[~invalid], type=UTC_TIME)
    return table.set_column(table.schema.get_field_index("timestamp"), "timestamp", times)


def _within(table: pa.Table, window: Window) -> pa.Table:
    times = table.column("timestamp")
    start = pa.scalar(window.start, type=UTC_TIME)
    end = pa.scalar(window.end, type=UTC_TIME)
    return table.filter(pc.and_(pc.greater_equal(times, start), pc.less(times, end)))


def _batch_rows(table: pa.Table) -> pa.ChunkedArray:
    """Which rows batch scoring logged (records without a `source` are online traffic)."""
    if SOURCE not in table.column_names:
        return pa.chunked_array([pa.array(np.zeros(table.num_rows, dtype=bool))])
    return pc.fill_null(pc.equal(table.column(SOURCE), BATCH), fill_value=False)


def _drop_smoke_tests(table: pa.Table) -> pa.Table:
    smoke = pc.starts_with(table.column("request_id"), SMOKE_PREFIX)
    return table.filter(pc.invert(smoke)) if pc.any(smoke).as_py() else table
