"""A production day: the monitor over a million prediction rows, every row counted.

Run: `.venv/bin/python -m benchmarks.monitor_scale [--rows 1000000] [--layout firehose] [--layout per-request]`

Writes `--rows` handler-format records of the Ames schema (79 inputs) spread evenly over the
24 closed hours of one day, in each layout asked for (default both):
- `firehose`: what a Firehose delivery stream writes, GZIP JSON Lines objects of many records
  (one object per 5 minutes) under the hour partitions;
- `per-request`: one JSON Lines object per request of one row, as the function writes without
  Firehose.
5% of the rows get a label. Then, each in its own process (time inside the flow, peak RSS from
the process's own high-water mark):
- `sampled`: the monitor's former read, the reader capped at 20,000 rows (a deterministic
  sample) with its Evidently drift report, what the flow did before hourly profiles;
- `cold`: the `monitor` flow over the day (timed once the process's temporary Prefect server
  answers, as a worker's server already does), no hourly profile stored yet (it stores them);
- `warm`: the same window again, every hour from its stored profile;
- `7 days`: a 7-day window ending with that day, whose 144 earlier hours are copies of the
  day's stored profiles (the day's hours shifted back one to six days), so the flow merges 168
  hourly profiles and reads no row.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.monitoring import MODEL, train_champion
from deployments.lambda_handler.contract import hour_partition, prediction_key
from deployments.lambda_handler.sinks import encode_records
from tasks.core.settings import PROJECT_ROOT

HOURS = 24
FIREHOSE_OBJECTS_PER_HOUR = 12
LABELLED_SHARE = 0.05
SAMPLED_ROW_CAP = 20_000

RUNNER = """
import json, re, sys, time
from datetime import datetime
from pathlib import Path
mode, start, end = sys.argv[1], datetime.fromisoformat(sys.argv[2]), datetime.fromisoformat(sys.argv[3])
if mode != "sampled":  # the process's Prefect server up first, as a worker's is
    from prefect.client.orchestration import get_client
    with get_client(sync_client=True) as client:
        client.hello()
began = time.perf_counter()
if mode == "sampled":
    from monitoring.labels.commands import join_labels
    from monitoring.labels.label_read import read_window_labels
    from monitoring.labels.label_rules import LabelRules
    from monitoring.drift.window_reports import DriftThresholds, ReportSubject, build_drift_report
    from monitoring.logs.reader import LogReader
    from monitoring.logs.window import Window
    from tasks.core.settings import load_settings
    from tasks.registry.model_files import load_model_context
    settings = load_settings()
    context = load_model_context(settings, settings.model_name)
    window = Window(start, end)
    logs = LogReader(settings.storage, context.model_name, context.schema, row_cap=int(sys.argv[4])).read(window)
    labels, _ = read_window_labels(settings.storage, context.model_name, window,
        LabelRules.for_schema(context.schema), request_ids=logs.table.column("request_id"))
    rows = join_labels(logs.frame, labels)
    build_drift_report(rows, context.reference, context.schema, DriftThresholds(),
        ReportSubject(context.model_name, context.version, window), context.importance)
    counted, labelled = logs.stats.rows, int(rows["actual"].notna().sum())
    report_kib = None
else:
    from flows.monitor import monitor_model
    summary = monitor_model(start=start, end=end)
    counted, labelled = summary.rows, summary.labelled_rows
    report_kib = Path(summary.report_url.removeprefix("file://")).stat().st_size // 1024
seconds = time.perf_counter() - began
peak = int(re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)) // 1024
print(json.dumps({"seconds": seconds, "rows": counted, "labelled": labelled, "peak_mib": peak,
    "report_kib": report_kib}))
"""


def day_rows(reference: pd.DataFrame, rows: int, day: datetime) -> pd.DataFrame:
    """`rows` reference rows drawn with replacement, one per request, spread evenly over the day."""
    sample = reference.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    offsets = np.sort(np.random.default_rng(0).uniform(0, HOURS * 3600, rows))
    sample["at"] = [day + timedelta(seconds=float(s)) for s in offsets]
    sample["request_id"] = [f"req-{index:07d}" for index in range(rows)]
    return sample


def records(chunk: pd.DataFrame, names: list[str]) -> list[dict]:
    """Handler-format records of a chunk of rows."""
    features = chunk[names].astype(object).where(chunk[names].notna() & (chunk[names] != ""), None)
    return [
        {
            "request_id": request_id,
            "row": 0,
            "timestamp": at.isoformat().replace("+00:00", "Z"),
            "model_name": MODEL,
            "model_version": "1",
            "features": inputs,
            "prediction": float(prediction),
            "latency_ms": 0.5,
            "unknown_categories": [],
        }
        for request_id, at, inputs, prediction in zip(
            chunk["request_id"], chunk["at"], features.to_dict("records"), chunk["prediction"], strict=True
        )
    ]


def write_firehose(storage: Path, rows: pd.DataFrame, names: list[str]) -> int:
    """GZIP JSON Lines objects of five minutes each, named as Firehose names them; returns the count."""
    slot = rows["at"].map(lambda at: at.replace(minute=at.minute // 5 * 5, second=0, microsecond=0))
    count = 0
    for started, chunk in rows.groupby(slot, sort=True):
        folder = storage / hour_partition(MODEL, started)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{MODEL}-predictions-1-{started:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}.gz"
        (folder / name).write_bytes(gzip.compress(encode_records(records(chunk, names)), compresslevel=6))
        count += 1
    return count


def write_per_request(storage: Path, rows: pd.DataFrame, names: list[str]) -> int:
    """One JSON Lines object per request; returns the count."""
    made: set[Path] = set()
    for start in range(0, len(rows), 20_000):
        chunk = rows.iloc[start : start + 20_000]
        for record, at in zip(records(chunk, names), chunk["at"], strict=True):
            path = storage / prediction_key(MODEL, record["request_id"], at)
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(encode_records([record]))
    return len(rows)


def write_labels(storage: Path, schema: dict, rows: pd.DataFrame, target: str) -> int:
    """Labels of `LABELLED_SHARE` of the rows (their reference target), uploaded as the command does."""
    from deployments.lambda_handler.contract import ServingSchema
    from monitoring.labels.commands import upload_labels

    labelled = rows.sample(frac=LABELLED_SHARE, random_state=1)
    frame = pd.DataFrame({"request_id": labelled["request_id"], "row": 0, "actual": labelled[target]})
    upload_labels(frame, storage.as_uri(), MODEL, ServingSchema.from_dict(schema), since_hours=24 * 3)
    return len(frame)


def run(mode: str, env: dict[str, str], start: datetime, end: datetime) -> dict:
    """One measured run in its own process."""
    completed = subprocess.run(
        [sys.executable, "-c", RUNNER, mode, start.isoformat(), end.isoformat(), str(SAMPLED_ROW_CAP)],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def copy_profiles_back(storage: Path, days: int) -> int:
    """Copy the day's stored hourly profiles to the `days` days before it; returns the hours made.

    The copies' request ids get a prefix of their day, so the day's labels join only its own rows.
    """
    made = 0
    for hour_folder in sorted((storage / "profiles" / MODEL).glob("*/dt=*/hour=*")):
        day = datetime.strptime(hour_folder.parent.name, "dt=%Y-%m-%d").replace(tzinfo=UTC)
        for back in range(1, days + 1):
            target = (
                hour_folder.parent.parent / f"dt={day - timedelta(days=back):%Y-%m-%d}" / hour_folder.name
            )
            if not target.exists():
                shutil.copytree(hour_folder, target)
                keys = pq.read_table(target / "keys.parquet")
                ids = pc.binary_join_element_wise(f"d{back}-", keys.column("request_id"), "")
                pq.write_table(keys.set_column(0, "request_id", ids), target / "keys.parquet")
                made += 1
    return made


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--layout", action="append", choices=["firehose", "per-request"])
    parser.add_argument("--data", default=str(PROJECT_ROOT.parent / "shared/data/AmesHousing.csv"))
    args = parser.parse_args()
    layouts = args.layout or ["firehose", "per-request"]
    work = Path(tempfile.mkdtemp(prefix="bench-monitor-scale-"))
    home = work / "home"
    print("training a champion for the schema and reference ...", flush=True)
    schema, reference = train_champion(home, args.data)
    names = [feature["name"] for feature in schema["features"]]
    now = datetime.now(UTC)
    day = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS + 2)
    end = day + timedelta(hours=HOURS)
    rows = day_rows(reference, args.rows, day)
    print(
        f"{args.rows:,} rows over {day:%Y-%m-%d %H}h..{end:%Y-%m-%d %H}h UTC; layouts: {', '.join(layouts)}"
    )
    results: list[tuple[str, str, dict]] = []
    for layout in layouts:
        storage = home / f"storage-{layout}"
        started = time.perf_counter()
        writer = write_firehose if layout == "firehose" else write_per_request
        objects = writer(storage, rows, names)
        size = sum(path.stat().st_size for path in (storage / "predictions").rglob("*") if path.is_file())
        labels = write_labels(storage, schema, rows, schema["target"])
        print(
            f"{layout}: {objects:,} objects, {size / 2**20:,.0f} MiB, {labels:,} labels,"
            f" written in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        env = {
            **os.environ,
            "MLOPS_HOME": str(home),
            "MLOPS_STORAGE_URL": storage.as_uri(),
            "MLOPS_MODEL_NAME": MODEL,
            "MLOPS_RETRAIN_MODE": "off",
            "MLOPS_COMPACT_DELETE_ORIGINALS": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        for mode in ("sampled", "cold", "warm"):
            results.append((layout, mode, run(mode, env, day, end)))
            print(f"  {mode:8} {results[-1][2]}", flush=True)
        copied = copy_profiles_back(storage, days=6)
        results.append((layout, "7 days", run("warm", env, day - timedelta(days=6), end)))
        print(f"  7 days   {results[-1][2]} ({copied} copied hours)", flush=True)
    print()
    print(
        f"{'layout':12} {'run':8} {'rows counted':>13} {'labelled':>9} {'seconds':>8} {'peak MiB':>9} {'vs sampled':>11}"
    )
    for layout, mode, result in results:
        base = next(r for lay, m, r in results if lay == layout and m == "sampled")
        ratio = result["seconds"] / base["seconds"]
        print(
            f"{layout:12} {mode:8} {result['rows']:>13,} {result['labelled']:>9,} {result['seconds']:>8.1f}"
            f" {result['peak_mib']:>9,} {ratio:>10.2f}x"
        )
    print("goals: a day in under 60 s and 1,536 MiB with every row counted; 7 days from profiles under 30 s")
    sizes = {r["report_kib"] for _, _, r in results if r["report_kib"] is not None}
    print(
        f"stored drift report (gzip HTML): {', '.join(f'{kib:,} KiB' for kib in sorted(sizes))} (goal: under 2 MB)"
    )
    print(f"state: {work}")


if __name__ == "__main__":
    main()
