"""Where a training run reads its data: which runs take it from their champion, and a local file check."""

from __future__ import annotations

from pathlib import Path

from tasks.core.errors import UserError

RETRAIN_REASONS = frozenset({"drift", "schedule"})  # these runs read their champion's recorded data
FILE_SCHEME = "file://"


class MissingDataError(UserError, FileNotFoundError):
    """The training data names a local file that does not exist."""


def missing_file(source: str) -> str:
    """The message for training data that names no existing file."""
    return f"cannot read {source}: no such file"


def data_hint(spec_name: str) -> str:
    """Where the training data and its spec are set, for the end of an error message."""
    return f"data: MLOPS_DATA_SOURCE or data_source; spec {spec_name!r}: MLOPS_DATASET_SPEC or dataset"


def check_local_source(source: str, spec_name: str) -> None:
    """Refuse a local path (or file:// URL) that does not exist; other URLs are read when used."""
    if "://" in source and not source.startswith(FILE_SCHEME):
        return
    if not Path(source.removeprefix(FILE_SCHEME)).exists():
        msg = f"{missing_file(source)} ({data_hint(spec_name)})"
        raise MissingDataError(msg)
