"""Table steps of a window read: parsed times, the window's bounds, batch rows, smoke tests."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deployments.lambda_handler.contract import BATCH, SMOKE_PREFIX, SOURCE
from monitoring.logs.read_stats import BadLine, ReadStats
from monitoring.logs.window import Window

UTC_TIME = pa.timestamp("us", tz="UTC")


def stats_from_metadata(table: pa.Table) -> ReadStats:
    """The counts a compacted copy recorded of its hour's raw objects."""
    metadata = json.loads((table.schema.metadata or {}).get(b"loopml", b"{}"))
    return ReadStats(
        objects=0,
        bad_lines=int(metadata.get("bad_lines", 0)),
        bad_objects=int(metadata.get("bad_objects", 0)),
    )


def with_valid_times(table: pa.Table, stats: ReadStats) -> pa.Table:
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


def within(table: pa.Table, window: Window) -> pa.Table:
    """The rows whose time lies in the window."""
    times = table.column("timestamp")
    start = pa.scalar(window.start, type=UTC_TIME)
    end = pa.scalar(window.end, type=UTC_TIME)
    return table.filter(pc.and_(pc.greater_equal(times, start), pc.less(times, end)))


def batch_rows(table: pa.Table) -> pa.ChunkedArray:
    """Which rows batch scoring logged (records without a `source` are online traffic)."""
    if SOURCE not in table.column_names:
        return pa.chunked_array([pa.array(np.zeros(table.num_rows, dtype=bool))])
    return pc.fill_null(pc.equal(table.column(SOURCE), BATCH), fill_value=False)


def drop_smoke_tests(table: pa.Table) -> pa.Table:
    """Leave out the requests of deploy smoke tests."""
    smoke = pc.starts_with(table.column("request_id"), SMOKE_PREFIX)
    return table.filter(pc.invert(smoke)) if pc.any(smoke).as_py() else table


def row_hashes(table: pa.Table) -> np.ndarray:
    """A hash of each row's (request id, row): the order samples are drawn in, the same on every read."""
    keys = (
        pd.Series(table.column("request_id").to_numpy(zero_copy_only=False))
        + ":"
        + pd.Series(table.column("row").to_numpy()).astype(str)
    )
    hashes: np.ndarray = pd.util.hash_array(keys.to_numpy(dtype=object))
    return hashes


def smallest_hashes(table: pa.Table, rows: int) -> pa.Table:
    """The `rows` rows with the smallest hashes, in their table order (all of them when fewer)."""
    if table.num_rows <= rows:
        return table
    chosen = np.sort(np.argpartition(row_hashes(table), rows - 1)[:rows])
    return table.take(pa.array(chosen))
