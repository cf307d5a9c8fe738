"""Ground truth: upload true values for logged predictions, read them back and join them.

Labels are JSON Lines records `{"request_id": ..., "row": ..., "actual": ...}` stored under
`<storage>/labels/<model>/dt=<upload date>/<upload id>.jsonl`. `row` is the instance's
index in its request (0 for single-instance requests). A later upload for the same
(request_id, row) replaces an earlier one.

Upload a CSV with columns `request_id`, `row` (optional) and `actual`:

    python -m monitoring.labels labels.csv [--model NAME]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from deployments.lambda_handler.contract import LABEL_FIELDS, LABELS_PREFIX, ServingSchema
from monitoring.window import Window
from tasks.errors import UserError
from tasks.storage import filesystem, join_url, write_bytes


class LabelError(UserError, ValueError):
    """A labels file that cannot be used; nothing was uploaded."""


def _check(frame: pd.DataFrame, task: str) -> pd.DataFrame:
    missing = [name for name in ("request_id", "actual") if name not in frame.columns]
    if missing:
        msg = f"labels need columns request_id, actual (and optionally row); missing: {', '.join(missing)}"
        raise LabelError(msg)
    frame = frame.assign(row=frame["row"] if "row" in frame.columns else 0)[list(LABEL_FIELDS)]
    if frame["request_id"].isna().any() or frame["actual"].isna().any():
        rows = frame.index[frame["request_id"].isna() | frame["actual"].isna()][:3].tolist()
        msg = f"labels have empty request_id or actual (rows {[r + 1 for r in rows]})"
        raise LabelError(msg)
    rows = pd.to_numeric(frame["row"], errors="coerce")
    if rows.isna().any() or (rows < 0).any() or (rows % 1 != 0).any():
        msg = "label column 'row' must hold non-negative integers"
        raise LabelError(msg)
    frame = frame.assign(request_id=frame["request_id"].astype(str), row=rows.astype("int64"))
    if task == "regression":
        actual = pd.to_numeric(frame["actual"], errors="coerce")
        bad = actual.isna() | ~actual.map(lambda v: math.isfinite(v) if pd.notna(v) else False)
        if bad.any():
            first = int(bad.to_numpy().nonzero()[0][0])
            msg = f"label 'actual' must be a finite number (row {first + 1}: {frame['actual'].iloc[first]!r})"
            raise LabelError(msg)
        return frame.assign(actual=actual.astype("float64"))
    return frame.assign(actual=frame["actual"].astype(str))


def upload_labels(
    frame: pd.DataFrame, storage_url: str, model_name: str, task: str, now: datetime | None = None
) -> str:
    """Validate labels and store them as one object; return its URL."""
    checked = _check(frame, task)
    at = (now or datetime.now(UTC)).astimezone(UTC)
    url = join_url(
        storage_url,
        LABELS_PREFIX,
        model_name,
        f"dt={at:%Y-%m-%d}",
        f"{at:%H%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl",
    )
    lines = (json.dumps(record) for record in checked.to_dict("records"))
    return write_bytes(url, ("\n".join(lines) + "\n").encode())


def _no_labels() -> pd.DataFrame:
    return pd.DataFrame(
        {"request_id": pd.Series(dtype=object), "row": pd.Series(dtype="int64"), "actual": []}
    )


def read_labels(
    storage_url: str, model_name: str, window: Window, now: datetime | None = None
) -> pd.DataFrame:
    """Labels uploaded from the window's start until now (labels arrive after predictions)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    fs, _ = filesystem(storage_url)
    keys: list[str] = []
    day = window.start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= now:
        _, prefix = filesystem(join_url(storage_url, LABELS_PREFIX, model_name, f"dt={day:%Y-%m-%d}"))
        with contextlib.suppress(FileNotFoundError):
            keys += sorted(path for path in fs.ls(prefix, detail=False) if path.endswith(".jsonl"))
        day += timedelta(days=1)
    if not keys:
        return _no_labels()
    blobs = fs.cat(keys, on_error="return")
    frames = []
    for key in keys:  # upload order: later uploads win
        blob = blobs.get(key)
        if isinstance(blob, bytes) and blob.strip():
            try:
                frames.append(pd.read_json(io.BytesIO(blob), lines=True, dtype=False))
            except ValueError:
                continue  # a corrupt labels object is skipped, the others still count
    if not frames:
        return _no_labels()
    labels = pd.concat(frames, ignore_index=True)
    labels = labels.dropna(subset=["request_id", "actual"]).assign(
        row=lambda f: f["row"].fillna(0).astype("int64")
    )
    return labels.drop_duplicates(subset=["request_id", "row"], keep="last")[list(LABEL_FIELDS)]


def join_labels(logs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Logged rows with an `actual` column (null where no label has arrived)."""
    if labels.empty:
        return logs.assign(actual=pd.Series([None] * len(logs), dtype=object))
    return logs.merge(labels, on=["request_id", "row"], how="left")


def main(argv: list[str] | None = None) -> None:
    """Upload a CSV of labels for the configured model."""
    from tasks.errors import UsageError, run_command
    from tasks.registry import fetch_bundle
    from tasks.settings import load_settings

    parser = argparse.ArgumentParser(description="Upload ground-truth labels for logged predictions.")
    parser.add_argument("csv", help="CSV with request_id, row (optional) and actual")
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    args = parser.parse_args(argv)

    def upload() -> None:
        settings = load_settings()
        model = args.model or settings.model_name
        with tempfile.TemporaryDirectory() as folder:
            bundle, _ = fetch_bundle(settings.tracking_uri, model, None, Path(folder))
            task = ServingSchema.load(bundle).task
        try:
            frame = pd.read_csv(args.csv, dtype={"request_id": str})
        except FileNotFoundError:
            msg = f"no such labels file: {args.csv}"
            raise UsageError(msg) from None
        url = upload_labels(frame, settings.storage, model, task)
        print(f"uploaded {len(frame)} labels to {url}")  # noqa: T201

    run_command(upload)


if __name__ == "__main__":
    main()
