"""Paths under the storage root (a local folder or an S3 prefix) through fsspec."""

from __future__ import annotations

import os
from typing import Any

import fsspec
from fsspec.spec import AbstractFileSystem


def join_url(root: str, *parts: str) -> str:
    """Join URL parts with single slashes."""
    pieces = [root.rstrip("/"), *(part.strip("/") for part in parts if part)]
    return "/".join(pieces)


def storage_options(url: str) -> dict[str, Any]:
    """Options for fsspec: on S3, no listing cache and the standard endpoint variable.

    New log objects must show up on every listing, and `AWS_ENDPOINT_URL` points S3-compatible
    stores (and moto in tests) at the right place.
    """
    if not url.startswith("s3://"):
        return {}
    options: dict[str, Any] = {"use_listings_cache": False, "skip_instance_cache": True}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        options["client_kwargs"] = {"endpoint_url": endpoint}
    return options


def s3_client(region: str | None = None) -> Any:
    """A thread-safe boto3 S3 client with retries, honouring the standard endpoint variables.

    It signs with SigV4, also for presigned URLs (legacy SigV2 links fail in newer regions
    and for KMS-encrypted objects).
    """
    import boto3
    from botocore.config import Config

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32, signature_version="s3v4"
    )
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The fsspec filesystem for a URL and the path inside it."""
    fs, path = fsspec.core.url_to_fs(url, **storage_options(url))
    return fs, str(path)


def to_url(fs: AbstractFileSystem, path: str) -> str:
    """A full URL for a path of a filesystem (what users and reports see)."""
    return str(fs.unstrip_protocol(path))


def write_bytes_once(url: str, payload: bytes) -> bool:
    """Write an object unless it already exists; True when this call wrote it.

    Objects written this way are immutable: a second writer with the same key leaves the
    first copy as it was, which is what content-addressed snapshots need.
    """
    fs, path = filesystem(url)
    if fs.exists(path):
        return False
    write_bytes(url, payload)
    return True


def read_bytes(url: str) -> bytes:
    """An object's bytes."""
    fs, path = filesystem(url)
    return bytes(fs.cat_file(path))


def write_bytes(url: str, payload: bytes, **s3_headers: str) -> str:
    """Write (or replace) an object; readers never see a partial local file.

    `s3_headers` (`ContentType=`, `ContentEncoding=`) go with the object on S3, where a browser
    following a presigned link reads them; a local file has none.
    """
    fs, path = filesystem(url)
    if "file" in fs.protocol:
        parent = path.rsplit("/", 1)[0]
        fs.makedirs(parent, exist_ok=True)
        temporary = f"{path}.partial"
        fs.pipe_file(temporary, payload)
        fs.mv(temporary, path)
    else:
        fs.pipe_file(path, payload, **s3_headers)  # an S3 PUT is atomic already
    return url
