"""Read a labels CSV in blocks, or refuse the whole file with one line saying what to fix.

The file is checked before anything is read in earnest (it exists, is a file, is not empty,
is UTF-8 text and has the columns), then streamed in blocks with every cell as text, so the
rules see exactly what was written ("1" is the text of a 0/1 class, "1e20" is no row index).
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv

from tasks.core.errors import UsageError, UserError

REQUIRED_COLUMNS = ("request_id", "actual")
OPTIONAL_COLUMNS = ("row",)
HEAD_BYTES = 64 * 1024
WIDE_BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}
CSV_FORMAT = "a labels CSV is UTF-8 text with the header request_id,row,actual (row optional)"


class LabelError(UserError, ValueError):
    """A labels file that cannot be used; nothing was uploaded."""


def _head(path: Path) -> bytes:
    if not path.exists():
        msg = f"no such labels file: {path}"
        raise UsageError(msg)
    if path.is_dir():
        msg = f"{path} is a folder, not a labels file ({CSV_FORMAT})"
        raise LabelError(msg)
    try:
        with path.open("rb") as handle:
            return handle.read(HEAD_BYTES)
    except OSError as error:
        msg = f"cannot read {path}: {error.strerror or error}"
        raise LabelError(msg) from None


def header_columns(path: Path) -> list[str]:
    """The label columns the file has; LabelError when it is no usable labels CSV."""
    head = _head(path)
    if not head.strip():
        msg = f"{path} is empty ({CSV_FORMAT})"
        raise LabelError(msg)
    for bom, name in WIDE_BOMS.items():
        if head.startswith(bom):
            msg = f"{path} is {name} text: save it as UTF-8 ({CSV_FORMAT})"
            raise LabelError(msg)
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        msg = f"{path} is not UTF-8 text (binary data?) ({CSV_FORMAT})"
        raise LabelError(msg)
    lines = text.removeprefix("\ufeff").splitlines()
    if len(head) < HEAD_BYTES and not "".join(lines[1:]).strip():
        msg = f"{path} has a header but no labels"
        raise LabelError(msg)
    first_line = lines[0] if lines else ""
    names = next(csv.reader([first_line]), [])
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        msg = f"labels need columns request_id, actual (and optionally row); missing: {', '.join(missing)}"
        raise LabelError(msg)
    return [name for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if name in names]


def _first_ragged_line(path: Path) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first row whose width differs from the header's."""
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
            reader = csv.reader(handle)
            width = len(next(reader, []))
            for fields in reader:
                if fields and len(fields) != width:
                    return reader.line_num, len(fields), width
    except csv.Error:
        return None
    return None


def _error(path: Path, error: pa.ArrowInvalid) -> LabelError:
    text = str(error)
    if "UTF8" in text or "UTF-8" in text:
        return LabelError(f"{path} is not UTF-8 text (binary data?) ({CSV_FORMAT})")
    ragged = _first_ragged_line(path) if "Expected" in text and "columns" in text else None
    if ragged is not None:
        line, fields, width = ragged
        return LabelError(f"{path} line {line} has {fields} fields, the header has {width}")
    return LabelError(f"cannot read {path} as CSV: {text.splitlines()[0][:200]}")


def label_blocks(path: Path, columns: list[str], block_bytes: int) -> Iterator[pa.RecordBatch]:
    """The file's label columns as text, block by block; LabelError at the first unreadable block."""
    convert = pa_csv.ConvertOptions(column_types=dict.fromkeys(columns, pa.string()), include_columns=columns)
    try:
        reader = pa_csv.open_csv(
            path, read_options=pa_csv.ReadOptions(block_size=block_bytes), convert_options=convert
        )
        for batch in reader:
            if batch.num_rows:
                yield batch
    except pa.ArrowInvalid as error:
        raise _error(path, error) from None
