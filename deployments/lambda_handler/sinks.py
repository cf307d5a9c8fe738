"""Prediction-log sinks: one JSON Lines object per request (S3 or a folder), or Firehose.

No record overwrites another: an object is only ever created, never replaced (a hard link
on a folder, a conditional `If-None-Match: *` PUT on S3), so a repeated request id is refused.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from .contract import prediction_key

FIREHOSE_BATCH_RECORDS = 500  # PutRecordBatch limit
FIREHOSE_BATCH_BYTES = 4 * 1024 * 1024


class DuplicateRecordError(RuntimeError):
    """A prediction log object for this request id exists already; nothing was written."""


class Sink(Protocol):
    """Somewhere prediction records go before the response is returned."""

    def write(self, records: list[dict[str, Any]], model_name: str, request_id: str, at: datetime) -> str:
        """Store the records; return where they went."""
        ...


def encode_records(records: list[dict[str, Any]]) -> bytes:
    """JSON Lines: one compact JSON object per line, each ending with a newline."""
    return "".join(
        json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n" for record in records
    ).encode()


class FileSink:
    """Writes each request's records to a local folder (the local target's storage)."""

    def __init__(self, root_url: str) -> None:
        self.root = unquote(urlparse(root_url).path).rstrip("/")
        self._folders: set[str] = set()

    def write(self, records: list[dict[str, Any]], model_name: str, request_id: str, at: datetime) -> str:
        """Write to a hidden temporary name, then link it in place: a reader never sees half an object.

        A hard link, unlike a rename, fails when the name exists: an earlier record stays.
        """
        path = f"{self.root}/{prediction_key(model_name, request_id, at)}"
        folder, name = path.rsplit("/", 1)
        temporary = f"{folder}/.{name}.{os.getpid()}.partial"
        payload = encode_records(records)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        try:
            self._write(temporary, payload)
        except FileNotFoundError:  # the hour's folder was removed since it was first made
            os.makedirs(folder, exist_ok=True)
            self._write(temporary, payload)
        try:
            os.link(temporary, path)
        except FileExistsError:
            raise DuplicateRecordError(path) from None
        finally:
            os.unlink(temporary)
        return f"file://{path}"

    @staticmethod
    def _write(path: str, payload: bytes) -> None:
        with open(path, "wb") as stream:
            stream.write(payload)


class S3Sink:
    """Writes each request's records as one S3 object."""

    def __init__(self, root_url: str) -> None:
        import boto3  # provided by the Lambda runtime; imported only when S3 is used

        parsed = urlparse(root_url)
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self.client = boto3.client("s3")

    def write(self, records: list[dict[str, Any]], model_name: str, request_id: str, at: datetime) -> str:
        """Put one object; the request fails if this does, so no answer goes unlogged."""
        key = "/".join(part for part in (self.prefix, prediction_key(model_name, request_id, at)) if part)
        body = encode_records(records)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType="application/x-ndjson",
                IfNoneMatch="*",
            )
        except self.client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise
            # A retried PUT whose first attempt landed finds its own object: that is success.
            if self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read() != body:
                raise DuplicateRecordError(key) from None
        return f"s3://{self.bucket}/{key}"


class FirehoseSink:
    """Sends the same records to a Firehose delivery stream, in batches, for high volume."""

    def __init__(self, stream_name: str) -> None:
        import boto3

        self.stream_name = stream_name
        self.client = boto3.client("firehose")

    def write(self, records: list[dict[str, Any]], model_name: str, request_id: str, at: datetime) -> str:
        """Send records in PutRecordBatch-sized chunks; fail if any record is refused."""
        del model_name, request_id, at
        batch: list[dict[str, bytes]] = []
        size = 0
        for record in records:
            data = encode_records([record])
            if batch and (len(batch) == FIREHOSE_BATCH_RECORDS or size + len(data) > FIREHOSE_BATCH_BYTES):
                self._send(batch)
                batch, size = [], 0
            batch.append({"Data": data})
            size += len(data)
        self._send(batch)
        return f"firehose://{self.stream_name}"

    def _send(self, batch: list[dict[str, bytes]]) -> None:
        response = self.client.put_record_batch(DeliveryStreamName=self.stream_name, Records=batch)
        if response.get("FailedPutCount"):
            msg = f"Firehose refused {response['FailedPutCount']} of {len(batch)} records"
            raise RuntimeError(msg)


def build_sink(storage_url: str, firehose_stream: str | None) -> Sink:
    """Firehose when a stream is configured, else S3 or a local folder by URL scheme."""
    if firehose_stream:
        return FirehoseSink(firehose_stream)
    if storage_url.startswith("s3://"):
        return S3Sink(storage_url)
    return FileSink(storage_url)
