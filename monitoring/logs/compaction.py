"""Compact closed hours of prediction logs into one Parquet object each.

A compacted hour lives under `predictions-compacted/`, a prefix of its own, so an S3
lifecycle rule can expire the raw JSON Lines under `predictions/` while keeping the compact
copies. The originals are deleted here only when asked, and only after the written copy was
read back and matched.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq

from monitoring.logs.firehose_objects import firehose_listing, read_firehose
from monitoring.logs.reader import LogReader, compacted_object
from monitoring.logs.window import HOUR
from tasks.core.storage import filesystem

# Above the function timeout and Firehose's longest buffer interval (900 s): no late writes after it.
DEFAULT_GRACE = timedelta(minutes=30)


class CompactionError(RuntimeError):
    """The compacted copy did not match what was read; the originals were kept."""


@dataclass(frozen=True)
class CompactedHour:
    """One hour compacted: where, how many rows and source objects, and whether they were deleted."""

    hour: datetime
    url: str
    rows: int
    objects: int
    deleted_originals: bool


def closed_hours(now: datetime, lookback_hours: int, grace: timedelta = DEFAULT_GRACE) -> list[datetime]:
    """Hours that ended at least `grace` ago, newest `lookback_hours` of them."""
    last_closed = (now - grace).replace(minute=0, second=0, microsecond=0) - HOUR
    return [last_closed - HOUR * back for back in range(lookback_hours)]


def compact_hour(
    reader: LogReader, hour: datetime, *, delete_originals: bool = False
) -> CompactedHour | None:
    """Write one hour's valid rows as Parquet; None when the hour has no raw objects or is done."""
    url = compacted_object(reader.root, reader.model, hour)
    fs, path = filesystem(url)
    if fs.exists(path):
        return None
    listing = reader.raw_listing(hour)  # links and other odd entries are counted, never read
    delivered = firehose_listing(reader, hour)  # kept whole: rows are placed by time when read
    keys = listing.files + delivered.files
    if not keys:
        return None
    table, stats = reader.read_keys(listing.files)
    firehose_table, firehose_stats = read_firehose(reader, delivered.files)
    table = pa.concat_tables([table, firehose_table], promote_options="default")
    stats.merge(firehose_stats)
    bad_objects = stats.bad_objects + len(listing.set_aside) + len(delivered.set_aside)
    metadata = {
        "bad_lines": stats.bad_lines,
        "bad_objects": bad_objects,
        "objects": len(keys),
        "firehose_objects": len(delivered.files),
    }
    table = table.replace_schema_metadata({b"loopml": json.dumps(metadata).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, buffer.getvalue())
    with fs.open(path, "rb") as handle:
        written = pq.read_table(handle)
    if written.num_rows != table.num_rows or not written.equals(table):
        fs.rm(path)
        msg = f"compacted copy of {hour:%Y-%m-%d %H}h does not match its {len(keys)} source objects"
        raise CompactionError(msg)
    if delete_originals:
        reader.fs.rm(keys)
    return CompactedHour(hour, fs.unstrip_protocol(path), table.num_rows, len(keys), delete_originals)


def compact_closed_hours(
    reader: LogReader, now: datetime, lookback_hours: int = 48, *, delete_originals: bool = False
) -> list[CompactedHour]:
    """Compact every closed hour in the lookback that is not compacted yet."""
    done = []
    for hour in closed_hours(now, lookback_hours):
        result = compact_hour(reader, hour, delete_originals=delete_originals)
        if result is not None:
            done.append(result)
    return done
