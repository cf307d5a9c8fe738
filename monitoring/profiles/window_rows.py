"""A window's rows, hour by hour: every row profiled, a bounded sample kept, stored digests reused.

Hours whose digest is stored are not read again; other hours are read (only the part inside
the window), digested, and stored when they are closed and whole inside the window. The
window's profile is the sum of its hours'; its sample is the `sample_rows` rows with the
smallest hashes among the hours' samples (each hour keeps that many), so it is the same
whatever order the hours come in, and it is exactly the window's smallest hashes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from monitoring.logs.compaction import DEFAULT_GRACE
from monitoring.logs.log_tables import smallest_hashes
from monitoring.logs.read_stats import ReadStats
from monitoring.logs.reader import LogReader, PredictionLogs
from monitoring.logs.window import HOUR, Window
from monitoring.profiles.bins import ReferenceBins
from monitoring.profiles.hour_digest import HourDigest, digest_folder, digest_rows, load_digest, store_digest
from monitoring.profiles.profile import Profile


@dataclass
class WindowRows(PredictionLogs):
    """The window's sample (`table`), the profile and key columns of every row, and the read stats."""

    profile: Profile | None = None
    keys: pa.Table | None = None
    stored_hours: int = 0  # hours taken from stored digests, not read again
    digests_written: list[str] = field(default_factory=list)
    digests_set_aside: list[tuple[str, str]] = field(default_factory=list)  # unreadable: the hour was read


def _closed(hour: datetime, now: datetime) -> bool:
    return hour + HOUR + DEFAULT_GRACE <= now


def read_window_rows(
    reader: LogReader, window: Window, bins: ReferenceBins, version: str, now: datetime, sample_rows: int
) -> WindowRows:
    """Every row of the window profiled; at most `sample_rows` of them kept whole."""
    unlimited = LogReader(
        reader.root, reader.model, reader.schema, row_cap=sys.maxsize, include_batch=reader.include_batch
    )
    tag = "with-batch" if reader.include_batch else "online"
    stats, profile = ReadStats(), Profile(bins.fingerprint)
    samples: list[pa.Table] = []
    keys: list[pa.Table] = []
    result = WindowRows(pa.table({}), stats)
    for hour in window.hours():
        folder = digest_folder(reader.root, reader.model, version, bins, hour, tag)
        storable = window.covers_whole(hour) and _closed(hour, now)
        digest = _stored(folder, bins, result) if storable else None
        if digest is None:
            part = unlimited.read(Window(max(window.start, hour), min(window.end, hour + HOUR)))
            digest = digest_rows(part.table, part.stats, bins, sample_rows)
            if storable:
                store_digest(folder, digest)
                result.digests_written.append(folder)
        else:
            result.stored_hours += 1
        stats.merge(digest.stats)
        stats.compacted_hours += digest.stats.compacted_hours
        stats.batch_rows += digest.stats.batch_rows
        profile.add(digest.profile)
        samples.append(digest.sample)
        keys.append(digest.keys)
        if sum(table.num_rows for table in samples) > 2 * sample_rows:
            samples = [smallest_hashes(_concat(samples), sample_rows)]
    result.table = smallest_hashes(_concat(samples), sample_rows)
    result.keys = _concat(keys)
    result.profile = profile
    stats.rows = profile.rows
    stats.rows_before_sampling = profile.rows
    return result


def _stored(folder: str, bins: ReferenceBins, result: WindowRows) -> HourDigest | None:
    """The stored digest, or None; an unreadable one is noted, and its hour read and digested again."""
    try:
        return load_digest(folder, bins)
    except Exception as error:  # noqa: BLE001 - a corrupt digest costs a re-read of its hour
        result.digests_set_aside.append((folder, str(error)[:200]))
        return None


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="default")
