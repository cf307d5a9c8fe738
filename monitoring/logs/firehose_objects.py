"""Firehose deliveries of prediction records: where they lie, and how they are read.

Firehose writes many newline-ended records per object, GZIP-compressed or not, named
`<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>` (`.gz` with GZIP). With the deployer's
prefix they sit in the hour partitions of per-request objects, `dt=YYYY-MM-DD/hour=HH/`;
with Firehose's default prefix in `YYYY/MM/DD/HH/` under `predictions/<model>/` (also what
moto writes, as it expands no `!{timestamp:…}`). Firehose places an object by the arrival of
its oldest record, so an hour's partition can hold records of the hours beside it: a window
also reads the Firehose objects of the hour before and after it, and every row is kept by
its own timestamp. Objects are decompressed as a stream and parsed in pieces, so a large
delivery is never held whole; a corrupt GZIP object is set aside with the reason.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from datetime import datetime
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.spec import AbstractFileSystem

from deployments.lambda_handler.contract import PREDICTIONS_PREFIX, compacted_key, hour_partition
from monitoring.logs.listing import Listing, list_partition
from monitoring.logs.read_stats import BadLine, ReadStats
from monitoring.logs.window import HOUR, Window


class LogReader(Protocol):
    """What these functions use of `monitoring.logs.reader.LogReader` (which imports this module)."""

    fs: AbstractFileSystem
    root_path: str
    model: str

    def fetch(self, keys: list[str]) -> dict[str, bytes | Exception]:
        """Fetch objects; failures come back as exceptions."""

    def parse_objects(self, blobs: dict[str, bytes | Exception]) -> tuple[pa.Table, ReadStats]:
        """Parse fetched objects into one flat table."""

    def read_keys(self, keys: list[str]) -> tuple[pa.Table, ReadStats]:
        """Fetch and parse a list of objects."""

    def _read_compacted(self, path: str, stats: ReadStats) -> pa.Table | None:
        """A compacted hour's rows, or None when unusable."""


NAME = re.compile(
    r"^.+-\d+-\d{4}(?:-\d{2}){5}-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}(?:\.gz)?$"
)
GZIP_MAGIC = b"\x1f\x8b"
CHUNK_OBJECTS = 4  # objects fetched at once (Firehose objects are up to 128 MiB)
PIECE_BYTES = 32 << 20  # decompressed bytes parsed at once


def is_firehose_name(path: str) -> bool:
    """Whether an object's name is one Firehose gives its deliveries."""
    return NAME.match(path.rsplit("/", 1)[-1]) is not None


def firehose_partitions(model: str, hour: datetime) -> tuple[str, str]:
    """The two places one hour's deliveries lie: the deployer's partition, Firehose's default."""
    return hour_partition(model, hour), f"{PREDICTIONS_PREFIX}/{model}/{hour:%Y/%m/%d/%H}"


def firehose_listing(reader: LogReader, hour: datetime) -> Listing:
    """The Firehose objects of one hour in both layouts, and those set aside unread."""
    found = Listing()
    for relative in firehose_partitions(reader.model, hour):
        listing = list_partition(reader.fs, reader.root_path, relative, "")
        found.files += [path for path in listing.files if is_firehose_name(path)]
        found.set_aside += [(path, why) for path, why in listing.set_aside if is_firehose_name(path)]
    return found


def neighbour_hours(window: Window) -> list[datetime]:
    """The hours just outside the window whose deliveries may hold the window's records."""
    hours = window.hours()
    return [hours[0] - HOUR, hours[-1] + HOUR]


def pieces(blob: bytes) -> Iterator[bytes]:
    """The object's text in pieces that end at a line end (the last may not), decompressed if GZIP."""
    stream = gzip.GzipFile(fileobj=io.BytesIO(blob)) if blob.startswith(GZIP_MAGIC) else io.BytesIO(blob)
    rest = b""
    while piece := stream.read(PIECE_BYTES):
        piece = rest + piece
        cut = piece.rfind(b"\n") + 1
        if cut:
            yield piece[:cut]
            rest = piece[cut:]
        else:
            rest = piece
    if rest:
        yield rest


def read_firehose(reader: LogReader, keys: list[str]) -> tuple[pa.Table, ReadStats]:
    """Fetch, decompress and parse Firehose objects, a few at a time; bad lines cost only themselves."""
    total, tables = ReadStats(), []
    for start in range(0, len(keys), CHUNK_OBJECTS):
        for key, blob in reader.fetch(keys[start : start + CHUNK_OBJECTS]).items():
            if isinstance(blob, Exception):
                total.add_bad_objects([BadLine(key, 0, f"unreadable object: {blob}", "")])
                continue
            total.objects += 1
            lines = 0
            try:
                for piece in pieces(blob):
                    table, stats = reader.parse_objects({key: piece})
                    for item in stats.samples:
                        item.line += lines if item.line else 0
                    lines += piece.count(b"\n")
                    stats.objects = 0
                    total.merge(stats)
                    tables.append(table)
            except (OSError, EOFError, zlib.error) as error:  # a corrupt or cut GZIP stream
                total.bad_objects += 1
                total.keep_samples([BadLine(key, 0, f"corrupt gzip object: {error}", "")])
    table = pa.concat_tables(tables) if tables else reader.read_keys([])[0]
    return table, total


def read_partition(reader: LogReader, hour: datetime, stats: ReadStats) -> pa.Table:
    """The rows of one hour's Firehose objects (both layouts)."""
    listing = firehose_listing(reader, hour)
    stats.add_bad_objects([BadLine(path, 0, reason, "") for path, reason in listing.set_aside])
    table, part = read_firehose(reader, listing.files)
    stats.merge(part)
    return table


def read_neighbour(reader: LogReader, hour: datetime, stats: ReadStats) -> pa.Table:
    """Deliveries of an hour beside the window: its compacted copy if it holds any, else its objects.

    Per-request objects of that hour hold only that hour's records, so they are not read.
    """
    fs, path = reader.fs, f"{reader.root_path.rstrip('/')}/{compacted_key(reader.model, hour)}"
    if not fs.exists(path):
        return read_partition(reader, hour, stats)
    try:
        with fs.open(path, "rb") as handle:
            metadata = pq.read_schema(handle).metadata or {}
        delivered = json.loads(metadata.get(b"loopml", b"{}")).get("firehose_objects", 0)
    except Exception:  # noqa: BLE001 - an unusable copy: the window's own read reports it
        return read_partition(reader, hour, stats)
    if not delivered:
        return reader.read_keys([])[0]
    # the same checked read of a copy; its hour's own counts belong to that hour's reads
    table = reader._read_compacted(path, ReadStats())  # noqa: SLF001
    return read_partition(reader, hour, stats) if table is None else table
