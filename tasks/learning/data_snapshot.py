"""Immutable, content-addressed snapshots of the data a model was trained on."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

import pandas as pd

from tasks.core.dataset_spec import DatasetSpecError
from tasks.core.settings import check_name
from tasks.core.storage import join_url, write_bytes_once


@dataclass(frozen=True)
class Snapshot:
    """Where a training table was stored and the digest that names it."""

    url: str
    digest: str
    rows: int
    created: bool


def content_digest(frame: pd.DataFrame) -> str:
    """A sha256 of the table's values, column names and types, independent of file format."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(f"{name}:{dtype}" for name, dtype in frame.dtypes.items()).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def write_snapshot(frame: pd.DataFrame, storage_url: str, dataset_name: str) -> Snapshot:
    """Store the table as Parquet under `snapshots/<dataset>/<digest>.parquet`, once.

    The name is checked again here (specs check it too), as it is a folder under the storage root.
    """
    try:
        check_name(dataset_name)
    except ValueError as error:
        msg = f"dataset name {dataset_name!r}: {error}"
        raise DatasetSpecError(msg) from None
    digest = content_digest(frame)
    url = join_url(storage_url, "snapshots", dataset_name, f"{digest[:20]}.parquet")
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    created = write_bytes_once(url, buffer.getvalue())
    return Snapshot(url=url, digest=digest, rows=len(frame), created=created)
