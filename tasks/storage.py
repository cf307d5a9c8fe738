"""Paths under the storage root (a local folder or an S3 prefix) through fsspec."""

from __future__ import annotations

import fsspec
from fsspec.spec import AbstractFileSystem


def join_url(root: str, *parts: str) -> str:
    """Join URL parts with single slashes."""
    pieces = [root.rstrip("/"), *(part.strip("/") for part in parts if part)]
    return "/".join(pieces)


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for a URL and the path inside it."""
    return fsspec.core.url_to_fs(url)


def write_bytes_once(url: str, payload: bytes) -> bool:
    """Write an object unless it already exists; True when this call wrote it.

    Objects written this way are immutable: a second writer with the same key leaves the
    first copy as it was, which is what content-addressed snapshots need.
    """
    fs, path = filesystem(url)
    if fs.exists(path):
        return False
    parent = path.rsplit("/", 1)[0]
    fs.makedirs(parent, exist_ok=True)
    temporary = f"{path}.partial"
    with fs.open(temporary, "wb") as handle:
        handle.write(payload)
    fs.mv(temporary, path)
    return True
