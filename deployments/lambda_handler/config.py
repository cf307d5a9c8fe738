"""Function settings from environment variables, read and checked once at cold start."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .contract import MODEL_FILE

DEFAULT_MAX_BATCH_ROWS = 1000
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024  # under Lambda's 6 MB synchronous payload limit
# "impute": a field left out is predicted with the pipeline's imputation and logged as missing;
# "reject": fields that training never saw missing are required (400 otherwise).
MISSING_FIELD_POLICIES = ("impute", "reject")


class ConfigurationError(RuntimeError):
    """An environment variable of the function is missing or invalid."""


@dataclass(frozen=True)
class FunctionConfig:
    """Where the model is and where prediction logs go."""

    model_dir: Path
    storage_url: str
    firehose_stream: str | None
    max_batch_rows: int
    max_body_bytes: int
    reject_missing: bool = False
    function_version: str | None = None  # AWS_LAMBDA_FUNCTION_VERSION: Lambda's (and the local runner's)


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        msg = f"{name} must be a positive integer, got {raw!r}"
        raise ConfigurationError(msg)
    return value


def load_config() -> FunctionConfig:
    """Read the function's environment; fail the cold start with a clear message."""
    model_dir = Path(os.environ.get("MODEL_DIR", Path(__file__).resolve().parent.parent / "model"))
    if not (model_dir / MODEL_FILE).is_file():
        msg = f"MODEL_DIR {model_dir} does not contain {MODEL_FILE}"
        raise ConfigurationError(msg)
    storage_url = os.environ.get("STORAGE_URL", "").rstrip("/")
    firehose_stream = os.environ.get("FIREHOSE_STREAM") or None
    if not storage_url.startswith(("s3://", "file://")) and firehose_stream is None:
        msg = f"STORAGE_URL must be an s3:// or file:// URL, got {storage_url!r}"
        raise ConfigurationError(msg)
    missing_fields = os.environ.get("MISSING_FIELDS", MISSING_FIELD_POLICIES[0])
    if missing_fields not in MISSING_FIELD_POLICIES:
        msg = f"MISSING_FIELDS must be one of {', '.join(MISSING_FIELD_POLICIES)}, got {missing_fields!r}"
        raise ConfigurationError(msg)
    return FunctionConfig(
        model_dir=model_dir,
        storage_url=storage_url,
        firehose_stream=firehose_stream,
        max_batch_rows=_positive_int("MAX_BATCH_ROWS", DEFAULT_MAX_BATCH_ROWS),
        max_body_bytes=_positive_int("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        reject_missing=missing_fields == "reject",
        function_version=os.environ.get("AWS_LAMBDA_FUNCTION_VERSION") or None,
    )
