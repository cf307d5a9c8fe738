"""Uploading labels and reading a window's labels back: today's code against the code before it.

Run: `.venv/bin/python -m benchmarks.labels [--megabytes 100] [--hours 24]`

Writes the prediction logs of `--hours` closed hours (requests of 1,000 rows, as compacted
hours of the handler's records) and a labels CSV of about `--megabytes` for every logged row,
then, each in its own process so its peak memory is its own, measures:
- the upload with `store_labels` (streamed, checked against the logs, stored by prediction hour)
  and with the code before it (the whole CSV in pandas, one object under the upload day);
- the monitor's label read for the last hour of predictions (reading that hour's logs, then
  the labels, then the join) from what each upload stored.
Peak RSS is `ru_maxrss` of the child; an idle child (the same imports) shows the floor.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from deployments.lambda_handler.contract import LABEL_FIELDS, LABELS_PREFIX, ServingSchema
from monitoring.labels.commands import join_labels
from monitoring.labels.label_read import read_window_labels
from monitoring.labels.label_rules import LabelRules
from monitoring.labels.label_upload import store_labels
from monitoring.logs.reader import LogReader, compacted_object
from monitoring.logs.window import HOUR, Window
from tasks.core.settings import PROJECT_ROOT
from tasks.core.storage import filesystem, join_url, write_bytes

MODEL = "labels-bench"
ROWS_PER_REQUEST = 1000
SCHEMA = {
    "task": "regression",
    "target": "price",
    "features": [{"name": name, "type": "number", "nullable": False} for name in ("area", "rooms", "age")],
}


# --- the code before this change, kept here as the baseline -------------------------------
def old_upload(frame: pd.DataFrame, storage_url: str, model_name: str, at: datetime) -> str:
    """The former upload: check the whole frame, write one object under the upload day."""
    missing = [name for name in ("request_id", "actual") if name not in frame.columns]
    if missing:
        raise ValueError(missing)
    frame = frame.assign(row=frame["row"] if "row" in frame.columns else 0)[list(LABEL_FIELDS)]
    rows = pd.to_numeric(frame["row"], errors="coerce")
    frame = frame.assign(request_id=frame["request_id"].astype(str), row=rows.astype("int64"))
    actual = pd.to_numeric(frame["actual"], errors="coerce")
    frame = frame.assign(actual=actual.astype("float64"))
    name = f"{at:%H%M%S%f}-{uuid.uuid4().hex[:8]}.jsonl"
    url = join_url(storage_url, LABELS_PREFIX, model_name, f"dt={at:%Y-%m-%d}", name)
    lines = (json.dumps(record) for record in frame.to_dict("records"))
    return write_bytes(url, ("\n".join(lines) + "\n").encode())


def old_read(storage_url: str, model_name: str, window: Window, now: datetime) -> pd.DataFrame:
    """The former read: every label uploaded from the window's first day until now."""
    fs, _ = filesystem(storage_url)
    keys: list[str] = []
    day = window.start.replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= now:
        _, prefix = filesystem(join_url(storage_url, LABELS_PREFIX, model_name, f"dt={day:%Y-%m-%d}"))
        if fs.exists(prefix):
            keys += sorted(path for path in fs.ls(prefix, detail=False) if path.endswith(".jsonl"))
        day += timedelta(days=1)
    blobs = fs.cat(keys, on_error="return")
    frames = [pd.read_json(io.BytesIO(blobs[key]), lines=True, dtype=False) for key in keys]
    labels = pd.concat(frames, ignore_index=True)
    labels = labels.dropna(subset=["request_id", "actual"]).assign(
        row=lambda f: f["row"].fillna(0).astype("int64")
    )
    return labels.drop_duplicates(subset=["request_id", "row"], keep="last")[list(LABEL_FIELDS)]


# --- data -----------------------------------------------------------------------------------
def write_data(
    folder: Path, megabytes: float, hours: int, now: datetime
) -> tuple[Path, Path, list[datetime]]:
    """Compacted log hours for every request and a labels CSV of about `megabytes` for all their rows."""
    storage = folder / "logs"
    line_bytes = 32 + 1 + 3 + 1 + 9 + 1  # request id, row, actual and separators
    requests = max(hours, math.ceil(megabytes * 1e6 / line_bytes / ROWS_PER_REQUEST))
    last_closed = now.replace(minute=0, second=0, microsecond=0) - HOUR
    hour_list = [last_closed - HOUR * back for back in reversed(range(hours))]
    generator = np.random.default_rng(0)
    csv = folder / "labels.csv"
    with csv.open("w") as handle:
        handle.write("request_id,row,actual\n")
        for index, hour in enumerate(hour_list):
            share = range(index * requests // hours, (index + 1) * requests // hours)
            ids = np.repeat([uuid.UUID(int=int(n) + 1).hex for n in share], ROWS_PER_REQUEST)
            rows = np.tile(np.arange(ROWS_PER_REQUEST), len(share))
            count = len(ids)
            seconds = np.repeat(np.linspace(0, 3599, len(share)).astype(int), ROWS_PER_REQUEST)
            times = [(hour + timedelta(seconds=int(s))).isoformat().replace("+00:00", "Z") for s in seconds]
            table = pa.table(
                {
                    "request_id": ids,
                    "row": rows,
                    "timestamp": times,
                    "model_name": [MODEL] * count,
                    "model_version": ["1"] * count,
                    "latency_ms": np.full(count, 0.5),
                    "prediction": generator.normal(180_000, 40_000, count),
                    "source": ["online"] * count,
                    **{name: generator.normal(10, 3, count) for name in ("area", "rooms", "age")},
                }
            )
            path = Path(compacted_object(storage.as_uri(), MODEL, hour).removeprefix("file://"))
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, compression="zstd")
            actual = np.round(generator.normal(180_000, 40_000, count), 2)
            pd.DataFrame({"request_id": ids, "row": rows, "actual": actual}).to_csv(
                handle, header=False, index=False
            )
    return storage, csv, hour_list


# --- children -------------------------------------------------------------------------------
def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(what: str, storage: str, csv: str, start: str, end: str) -> dict[str, Any]:
    """One measurement in this process: its seconds, peak RSS and what it found."""
    schema = ServingSchema.from_dict(SCHEMA)
    window = Window(datetime.fromisoformat(start), datetime.fromisoformat(end))
    began = time.perf_counter()
    found: dict[str, Any] = {}
    if what == "upload-new":
        upload = store_labels(Path(csv), storage, MODEL, schema)
        found = {
            "stored": upload.stored,
            "refused": upload.refused.total,
            "partitions": len(upload.partitions),
        }
    elif what == "upload-old":
        frame = pd.read_csv(csv, dtype={"request_id": str})
        old_upload(frame, storage, MODEL, datetime.now(UTC))
        found = {"stored": len(frame)}
    elif what in {"read-new", "read-old"}:
        logs = LogReader(storage, MODEL, schema, row_cap=10**9).read(window)
        if what == "read-new":
            rules = LabelRules.for_schema(schema)
            ids = logs.table.column("request_id")
            labels, _ = read_window_labels(storage, MODEL, window, rules, request_ids=ids)
        else:
            labels = old_read(storage, MODEL, window, datetime.now(UTC))
        rows = join_labels(logs.frame, labels)
        found = {
            "rows": len(rows),
            "labelled": int(rows["actual"].notna().sum()),
            "labels_loaded": len(labels),
        }
    return {"what": what, "seconds": time.perf_counter() - began, "peak_mib": _peak_mib(), **found}


def run_child(what: str, storage: Path, csv: Path, window: Window) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter."""
    command = [sys.executable, "-m", "benchmarks.labels", "--child", what, "--storage", storage.as_uri()]
    command += ["--csv", str(csv), "--start", window.start.isoformat(), "--end", window.end.isoformat()]
    output = subprocess.run(command, cwd=PROJECT_ROOT, check=True, capture_output=True, text=True).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    """Write the data, run every measurement in its own process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=100.0)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--child")
    parser.add_argument("--storage", default="")
    parser.add_argument("--csv", default="")
    parser.add_argument("--start", default="")
    parser.add_argument("--end", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.storage, args.csv, args.start, args.end)))
        return
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="labels-bench-") as temporary:
        folder = Path(temporary)
        began = time.perf_counter()
        logs, csv, hours = write_data(folder, args.megabytes, args.hours, now)
        print(
            f"wrote {csv.stat().st_size / 1e6:.1f} MB of labels for {args.hours} logged hours in {time.perf_counter() - began:.0f} s"
        )
        old_storage = folder / "old"
        subprocess.run(
            ["cp", "-r", str(logs), str(old_storage)], check=True
        )  # the same logs for the old code
        window = Window(hours[-1], hours[-1] + HOUR)  # the last hour of predictions
        results = {
            "idle": run_child("idle", logs, csv, window),
            "upload-old": run_child("upload-old", old_storage, csv, window),
            "upload-new": run_child("upload-new", logs, csv, window),
            "read-old": run_child("read-old", old_storage, csv, window),
            "read-new": run_child("read-new", logs, csv, window),
        }
    print(f"idle child (imports only): peak RSS {results['idle']['peak_mib']:.0f} MiB")
    for step in ("upload", "read"):
        old, new = results[f"{step}-old"], results[f"{step}-new"]
        print(
            f"{step:6}: before {old['peak_mib']:7.0f} MiB {old['seconds']:6.1f} s | now {new['peak_mib']:7.0f} MiB "
            f"{new['seconds']:6.1f} s | memory ratio {old['peak_mib'] / new['peak_mib']:.1f}x"
        )
        print(
            f"        before {json.dumps({k: v for k, v in old.items() if k not in {'what', 'seconds', 'peak_mib'}})}"
        )
        print(
            f"        now    {json.dumps({k: v for k, v in new.items() if k not in {'what', 'seconds', 'peak_mib'}})}"
        )


if __name__ == "__main__":
    main()
