"""Read a window of prediction logs fast, with bounded memory, setting bad lines aside.

Objects are listed per hour partition of the window only, fetched concurrently in chunks
(`fs.cat` on many paths: concurrent requests on S3), and each chunk is parsed in one pass
by Arrow's JSON reader against the model's record schema. A chunk that fails that pass (a
line Arrow cannot parse against the schema, a record without a required field, NaN or
Infinity in any number) is parsed object by object, then line by line, so one bad line costs
only itself; both passes refuse the same lines. Links and other entries that are not regular
files are set aside unread (`monitoring.logs.listing`).
Above the row cap, the rows with the smallest hash of (request id, row) are kept: the same
window always gives the same sample, whatever order the objects arrive in.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from deployments.lambda_handler.contract import (
    COMPACTED_PREFIX,
    PREDICTION,
    PROBABILITIES,
    PROBABILITY,
    REQUIRED_FIELDS,
    ServingSchema,
    compacted_key,
    hour_partition,
)
from monitoring.logs.firehose_objects import neighbour_hours, read_neighbour, read_partition
from monitoring.logs.listing import Listing, list_partition
from monitoring.logs.log_tables import (
    batch_rows,
    drop_smoke_tests,
    smallest_hashes,
    stats_from_metadata,
    with_valid_times,
    within,
)
from monitoring.logs.read_stats import QUARANTINE_TEXT_CHARS, BadLine, ReadStats
from monitoring.logs.records import (
    NON_FINITE,
    TOO_DEEP,
    BadRecordError,
    feature_types,
    non_finite_rows,
    parse_line,
    record_schema,
)
from monitoring.logs.window import Window
from tasks.core.storage import filesystem, join_url, s3_client, to_url, write_bytes

CHUNK_OBJECTS = 256
S3_FETCH_THREADS = 16
FLAT_REQUIRED = ("request_id", "row", "timestamp", "model_version", PREDICTION)
__all__ = ["BadLine", "LogReader", "PredictionLogs", "ReadStats"]


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
        self.fs, self.root_path = filesystem(self.root)
        self._s3 = s3_client() if self.root.startswith("s3://") else None
        self.positive_class = schema.positive_class

    # listing -----------------------------------------------------------------------------

    def raw_listing(self, hour: datetime) -> Listing:
        """One hour's JSON Lines objects (`.partial` files excluded), and the entries set aside unread."""
        return list_partition(self.fs, self.root_path, hour_partition(self.model, hour), ".jsonl")

    def raw_objects(self, hour: datetime) -> list[str]:
        """The complete JSON Lines objects of one hour (temporary `.partial` files excluded)."""
        return self.raw_listing(hour).files

    def compacted_hours(self, window: Window) -> tuple[dict[datetime, str], list[BadLine]]:
        """Compacted hours of the window's days (one listing per day), and entries set aside unread."""
        found: dict[datetime, str] = {}
        set_aside: list[BadLine] = []
        wanted = set(window.hours())
        for day in window.days():
            relative = f"{COMPACTED_PREFIX}/{self.model}/dt={day:%Y-%m-%d}"
            listing = list_partition(self.fs, self.root_path, relative, ".parquet")
            set_aside += [BadLine(path, 0, reason, "") for path, reason in listing.set_aside]
            for path in listing.files:
                name = path.rsplit("/", 1)[-1]
                if name.startswith("hour=") and name[5:7].isdigit() and int(name[5:7]) < 24:  # noqa: PLR2004
                    hour = day.replace(hour=int(name[5:7]))
                    if hour in wanted:
                        found[hour] = path
        return found, set_aside

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
        if non_finite_rows(table) is not None:
            raise BadRecordError(NON_FINITE)
        return table

    def _parse_object(self, key: str, blob: bytes) -> tuple[list[pa.Table], list[BadLine]]:
        """Line by line: the valid records of one object as tables, and its bad lines."""
        records: list[tuple[int, bytes, dict[str, Any]]] = []
        tables: list[pa.Table] = []
        bad: list[BadLine] = []
        lines = blob.split(b"\n")
        truncated = not blob.endswith(b"\n")
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append((number, line, parse_line(line, self.schema, self.types)))
                continue
            except BadRecordError as error:
                reason = str(error)
            if reason == TOO_DEEP:  # Arrow's parser takes deeper nesting: give the fast path's verdict
                try:
                    tables.append(self._fast_parse(line + b"\n"))
                    continue
                except (pa.ArrowInvalid, BadRecordError):
                    pass
            reason = "truncated object" if truncated and number == len(lines) else reason
            bad.append(BadLine(key, number, reason, _text(line)))
        tables += self._records_table(key, records, bad)
        return tables, bad

    def _records_table(
        self, key: str, records: list[tuple[int, bytes, dict[str, Any]]], bad: list[BadLine]
    ) -> list[pa.Table]:
        """Checked records as Arrow; a record Arrow still cannot take (say, a lone surrogate) is set aside."""
        if not records:
            return []
        try:
            return [pa.Table.from_pylist([record for _, _, record in records], schema=self.arrow_schema)]
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            pass
        tables = []
        for number, line, record in records:
            try:
                tables.append(pa.Table.from_pylist([record], schema=self.arrow_schema))
            except (pa.ArrowException, ValueError, TypeError, OverflowError) as error:
                reason = f"a value does not fit the record schema: {str(error)[:200]}"
                bad.append(BadLine(key, number, reason, _text(line)))
        return tables

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
            parsed, bad = self._parse_object(key, blob)
            if bad:
                stats.bad_objects += int(any(item.reason == "truncated object" for item in bad))
                stats.add_bad(bad)
            tables += parsed
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
            total.merge(stats)
        table = pa.concat_tables(tables) if tables else self._flatten(self.arrow_schema.empty_table())
        return table, total

    def partitions(
        self, window: Window, stats: ReadStats, skip: Collection[datetime] = ()
    ) -> Iterator[tuple[datetime, pa.Table, ReadStats]]:
        """Each partition's valid rows in the window, in time order, and what its read saw.

        The window's hours and those beside it (a Firehose delivery beside the window may hold
        some of its records); rows are kept by their own time; `skip` partitions are not read.
        """
        compacted, set_aside = self.compacted_hours(window)
        stats.add_bad_objects(set_aside)
        hours = window.hours()
        for hour in sorted({*hours, *neighbour_hours(window)} - set(skip)):
            part = ReadStats()
            table = self._read_compacted(compacted[hour], part) if hour in compacted else None
            if hour not in hours:
                table = read_neighbour(self, hour, part)
            elif table is None:
                table = self._read_raw(hour, part)
            else:
                part.compacted_hours += 1
            table = within(with_valid_times(table, part), window)  # each row by its own time
            table = drop_smoke_tests(table)
            batch = batch_rows(table)
            part.batch_rows += int(pc.sum(batch).as_py() or 0)
            if not self.include_batch:
                table = table.filter(pc.invert(batch))
            part.rows_before_sampling += table.num_rows
            yield hour, table, part

    def empty_table(self) -> pa.Table:
        """A table of no rows with the columns of a read."""
        return with_valid_times(self._flatten(self.arrow_schema.empty_table()), ReadStats())

    def read(self, window: Window) -> PredictionLogs:
        """Every valid row logged in the window (capped), plus what was set aside."""
        stats = ReadStats()
        kept: pa.Table | None = None
        for _, table, part in self.partitions(window, stats):
            stats.merge(part)
            # older objects and compacted hours may lack newer optional fields (`source`)
            kept = table if kept is None else pa.concat_tables([kept, table], promote_options="default")
            if kept.num_rows > 2 * self.row_cap:
                kept = self._cap(kept)
        kept = self._cap(self.empty_table() if kept is None else kept)
        stats.rows = kept.num_rows
        return PredictionLogs(kept, stats)  # in hour, then object-key order: the same on every read

    def _read_raw(self, hour: datetime, stats: ReadStats) -> pa.Table:
        listing = self.raw_listing(hour)
        stats.add_bad_objects([BadLine(path, 0, reason, "") for path, reason in listing.set_aside])
        table, hour_stats = self.read_keys(listing.files)
        stats.merge(hour_stats)
        delivered = read_partition(self, hour, stats)  # Firehose objects of the hour, both layouts
        return pa.concat_tables([table, delivered], promote_options="default")

    def _read_compacted(self, path: str, stats: ReadStats) -> pa.Table | None:
        """A compacted hour's rows; None (the raw hour is read instead) when the copy is unusable."""
        try:
            with self.fs.open(path, "rb") as handle:
                table = pq.read_table(handle)
            part = stats_from_metadata(table)
            self._check_compacted(table)
        except Exception as error:  # noqa: BLE001 - a corrupt or foreign copy costs only itself
            reason = f"unreadable compacted object: {str(error)[:200]}"
            stats.add_bad_objects([BadLine(path, 0, reason, "")])
            return None
        stats.merge(part)
        bad = non_finite_rows(table)  # copies compacted before every parse checked for NaN and Infinity
        if bad is None:
            return table
        rows = table.filter(bad).select(["request_id", "row"]).to_pylist()
        stats.add_bad([BadLine(path, 0, NON_FINITE, json.dumps(row)) for row in rows])
        return table.filter(pc.invert(bad))

    def _check_compacted(self, table: pa.Table) -> None:
        """A compacted copy must hold the record columns with their types (timestamps may be parsed)."""
        expected = self._flatten(self.arrow_schema.empty_table()).schema
        missing = [name for name in FLAT_REQUIRED if name not in table.column_names]
        if missing:
            msg = f"no column {missing[0]}"
            raise ValueError(msg)
        for name in set(expected.names) & set(table.column_names):
            kind = table.schema.field(name).type
            if kind != expected.field(name).type and not (
                name == "timestamp" and pa.types.is_timestamp(kind)
            ):
                msg = f"column {name} is {kind}, not {expected.field(name).type}"
                raise ValueError(msg)

    def _cap(self, table: pa.Table) -> pa.Table:
        return smallest_hashes(table, self.row_cap)

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


def _text(line: bytes) -> str:
    return line[:QUARANTINE_TEXT_CHARS].decode("utf-8", "replace")
