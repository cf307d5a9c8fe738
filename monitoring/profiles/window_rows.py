"""A window's rows, hour by hour: every row profiled, a bounded sample kept, stored digests reused.

Hours whose digest is stored are not read again; other hours are read (only the part inside
the window), digested, and stored when they are closed and whole inside the window. The
window's profile is the sum of its hours'; its sample is the `sample_rows` rows with the
smallest hashes among the hours' samples (each hour keeps that many), so it is the same
whatever order the hours come in, and it is exactly the window's smallest hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from monitoring.logs.compaction import DEFAULT_GRACE
from monitoring.logs.firehose_objects import neighbour_hours
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
    bins: ReferenceBins | None = None  # what the profile counted against
    keys: pa.Table | None = None
    stored_hours: int = 0  # hours taken from stored digests, not read again
    digests_written: list[str] = field(default_factory=list)
    digests_set_aside: list[tuple[str, str]] = field(default_factory=list)  # unreadable: the hour was read


def _closed(hour: datetime, now: datetime) -> bool:
    return hour + HOUR + DEFAULT_GRACE <= now


def read_window_rows(
    reader: LogReader, window: Window, bins: ReferenceBins, version: str, now: datetime, sample_rows: int
) -> WindowRows:
    """Every row of the window profiled; at most `sample_rows` of them kept whole.

    Rows are placed in their hour by their own time, and a partition can hold records of the
    hours beside it (Firehose), so a partition is read unless it and both its neighbours are
    stored; an hour is digested once the partition after it has been read.
    """
    tag = "with-batch" if reader.include_batch else "online"
    stats, result = ReadStats(), WindowRows(pa.table({}), ReadStats())
    hours = window.hours()
    folders = {hour: digest_folder(reader.root, reader.model, version, bins, hour, tag) for hour in hours}
    storable = {hour for hour in hours if window.covers_whole(hour) and _closed(hour, now)}
    digests = {hour: digest for hour in sorted(storable) if (digest := _stored(folders[hour], bins, result))}
    result.stored_hours = len(digests)
    pending: dict[datetime, list[pa.Table]] = {hour: [] for hour in hours if hour not in digests}
    pending_stats: dict[datetime, ReadStats] = {hour: ReadStats() for hour in pending}
    needed = {hour + shift for hour in pending for shift in (-HOUR, timedelta(0), HOUR)}
    skip = [hour for hour in {*hours, *neighbour_hours(window)} if hour not in needed]

    def finish(hour: datetime) -> None:
        parts = pending.pop(hour)
        table = _concat(parts) if parts else reader.empty_table()
        digest = digest_rows(table, pending_stats.pop(hour), bins, sample_rows)
        if hour in storable:
            store_digest(folders[hour], digest)
            result.digests_written.append(folders[hour])
        digests[hour] = digest

    for partition, table, part in reader.partitions(window, stats, skip):
        # what reading a partition saw is stored with its hour's digest (a stored one holds it already)
        if partition in pending_stats:
            pending_stats[partition].merge(part)
        elif partition not in digests:
            stats.merge(part)
        for hour, rows in _by_hour(table):
            if hour in pending:
                pending[hour].append(rows)
        for hour in [hour for hour in pending if hour + HOUR <= partition]:
            finish(hour)
    for hour in list(pending):
        finish(hour)
    return _assembled(result, [digests[hour] for hour in hours], stats, bins, sample_rows)


def _assembled(
    result: WindowRows, digests: list[HourDigest], stats: ReadStats, bins: ReferenceBins, sample_rows: int
) -> WindowRows:
    """The window from its hours' digests: summed profile, merged sample, every row's keys."""
    samples: list[pa.Table] = []
    result.profile, result.bins = Profile(bins.fingerprint), bins
    for digest in digests:
        stats.merge(digest.stats)
        result.profile.add(digest.profile)
        samples.append(digest.sample)
        if sum(table.num_rows for table in samples) > 2 * sample_rows:
            samples = [smallest_hashes(_concat(samples), sample_rows)]
    result.table = smallest_hashes(_concat(samples), sample_rows)
    result.keys = _concat([digest.keys for digest in digests])
    result.stats = stats
    stats.rows = stats.rows_before_sampling = result.profile.rows
    return result


def _by_hour(table: pa.Table) -> list[tuple[datetime, pa.Table]]:
    """The table's rows grouped by the hour of their own time."""
    if table.num_rows == 0:
        return []
    hour_of = pc.floor_temporal(table.column("timestamp"), unit="hour")
    starts = pc.unique(hour_of).to_pylist()
    return [(start.astimezone(UTC), table.filter(pc.equal(hour_of, start))) for start in starts]


def _stored(folder: str, bins: ReferenceBins, result: WindowRows) -> HourDigest | None:
    """The stored digest, or None; an unreadable one is noted, and its hour read and digested again."""
    try:
        return load_digest(folder, bins)
    except Exception as error:  # noqa: BLE001 - a corrupt digest costs a re-read of its hour
        result.digests_set_aside.append((folder, str(error)[:200]))
        return None


def _concat(tables: list[pa.Table]) -> pa.Table:
    return pa.concat_tables(tables, promote_options="default")
