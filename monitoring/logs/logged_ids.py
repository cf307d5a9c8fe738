"""Which (request_id, row) pairs were logged in an hour: what uploaded labels are matched against.

Only the two key fields are read, so a record counts as logged whatever model version or
feature set wrote it (a label stays valid across a champion change). The same care as the
window read applies: links are not followed, a corrupt compacted copy falls back to the raw
objects, and a line the JSON parser cannot take (nested too deeply, not JSON) is skipped.
An hour's objects are its per-request objects and the Firehose deliveries in its partition
(both layouts, GZIP or not); a delivery can hold records of the next hour, so the label read
of a window also reads the labels of the hour before it.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from monitoring.logs.firehose_objects import CHUNK_OBJECTS as FIREHOSE_CHUNK
from monitoring.logs.firehose_objects import firehose_listing, pieces
from monitoring.logs.reader import CHUNK_OBJECTS, LogReader
from monitoring.logs.records import INT64_MAX

ID_SCHEMA = pa.schema([("request_id", pa.string()), ("row", pa.int64())])


def _fast_ids(payload: bytes) -> pa.Table:
    table = pa_json.read_json(
        pa.py_buffer(payload),
        read_options=pa_json.ReadOptions(block_size=1 << 24),
        parse_options=pa_json.ParseOptions(explicit_schema=ID_SCHEMA, unexpected_field_behavior="ignore"),
    )
    if table.column("request_id").null_count or table.column("row").null_count:
        msg = "a record has no request_id or row"
        raise ValueError(msg)
    return table


def _line_ids(blob: bytes) -> pa.Table:
    """The ids of the lines that are records with a string request id and a usable row."""
    request_ids: list[str] = []
    rows: list[int] = []
    for line in blob.split(b"\n"):
        try:
            record = json.loads(line) if line.strip() else None
        except (ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        request_id, row = record.get("request_id"), record.get("row")
        if not isinstance(request_id, str) or isinstance(row, bool) or not isinstance(row, int):
            continue
        try:
            request_id.encode("utf-8")  # a lone surrogate escape is no id Arrow can hold
        except UnicodeEncodeError:
            continue
        if 0 <= row <= INT64_MAX:
            request_ids.append(request_id)
            rows.append(row)
    return pa.table({"request_id": pa.array(request_ids, pa.string()), "row": pa.array(rows, pa.int64())})


def _object_ids(blobs: dict[str, bytes | Exception]) -> pa.Table:
    good = [
        blob if blob.endswith(b"\n") else blob + b"\n" for blob in blobs.values() if isinstance(blob, bytes)
    ]
    try:
        return _fast_ids(b"".join(good))
    except (pa.ArrowInvalid, ValueError):
        pass
    tables = []
    for blob in good:
        try:
            tables.append(_fast_ids(blob))
        except (pa.ArrowInvalid, ValueError):
            tables.append(_line_ids(blob))
    return pa.concat_tables(tables) if tables else ID_SCHEMA.empty_table()


def _compacted_ids(reader: LogReader, path: str) -> pa.Table | None:
    try:
        with reader.fs.open(path, "rb") as handle:
            table = pq.read_table(handle, columns=["request_id", "row"])
        return table.cast(ID_SCHEMA).filter(
            pc.and_(pc.is_valid(table["request_id"]), pc.is_valid(table["row"]))
        )
    except Exception:  # noqa: BLE001 - a corrupt copy costs only itself: the raw objects are read
        return None


def logged_ids(reader: LogReader, hour: datetime, compacted: str | None) -> pa.Table:
    """The (request_id, row) pairs logged in one hour: from its compacted copy, else its raw objects."""
    table = None if compacted is None else _compacted_ids(reader, compacted)
    if table is not None:
        return table
    keys = reader.raw_listing(hour).files
    tables = [
        _object_ids(reader.fetch(keys[start : start + CHUNK_OBJECTS]))
        for start in range(0, len(keys), CHUNK_OBJECTS)
    ]
    tables += _delivered_ids(reader, hour)
    return pa.concat_tables(tables) if tables else ID_SCHEMA.empty_table()


def _delivered_ids(reader: LogReader, hour: datetime) -> list[pa.Table]:
    """The ids in the Firehose deliveries of one hour's partition, decompressed piece by piece."""
    keys = firehose_listing(reader, hour).files
    tables = []
    for start in range(0, len(keys), FIREHOSE_CHUNK):
        for key, blob in reader.fetch(keys[start : start + FIREHOSE_CHUNK]).items():
            if isinstance(blob, Exception):
                continue
            try:
                tables += [_object_ids({key: piece}) for piece in pieces(blob)]
            except (OSError, EOFError, zlib.error):  # a corrupt delivery: its readable pieces count
                continue
    return tables
