"""Reading prediction logs: the project's reader against the naive loop, locally and on moto.

Run: `.venv/bin/python -m benchmarks.monitoring [--rows 100000] [--objects 2000]`

Writes `--rows` handler-format records (the Ames schema, 79 features) into `--objects`
objects spread over two closed hours, then times, in one run:
- the naive read: one file read or `get_object` plus one `pandas.read_json` per object;
- the project's `LogReader` (listing per hour, batched concurrent fetch, one Arrow parse);
- a re-read after compaction (one Parquet object per hour);
- the whole `monitor` flow over the window, in its own process, with its peak memory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pandas as pd

from deployments.lambda_handler.contract import ServingSchema, prediction_key
from deployments.lambda_handler.sinks import encode_records
from monitoring.logs.compaction import compact_closed_hours
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from tasks.core.settings import PROJECT_ROOT
from tests.support.moto_server import FAKE_CREDENTIALS, moto_server

MODEL = "ames-bench"


def make_objects(
    schema: dict, reference: pd.DataFrame, rows: int, objects: int, start: datetime
) -> list[tuple[str, datetime, bytes]]:
    """Handler-format objects: (request id, time, JSON Lines bytes)."""
    names = [f["name"] for f in schema["features"]]
    sample = reference.sample(n=rows, replace=True, random_state=0)
    features = sample[names].astype(object).where(sample[names].notna() & (sample[names] != ""), None)
    records = features.to_dict("records")
    predictions = sample["prediction"].to_numpy()
    per_object = rows // objects
    made = []
    for index in range(objects):
        at = start + timedelta(seconds=index * 7200 / objects)
        request_id = f"bench-{index:06d}"
        chunk = []
        for row in range(per_object):
            position = index * per_object + row
            chunk.append(
                {
                    "request_id": request_id,
                    "row": row,
                    "timestamp": at.isoformat().replace("+00:00", "Z"),
                    "model_name": MODEL,
                    "model_version": "1",
                    "features": records[position],
                    "prediction": float(predictions[position]),
                    "latency_ms": 0.5,
                    "unknown_categories": [],
                }
            )
        made.append((request_id, at, encode_records(chunk)))
    return made


def naive_local(root: Path, keys: list[str]) -> pd.DataFrame:
    frames = [pd.read_json(io.BytesIO((root / key).read_bytes()), lines=True) for key in keys]
    return pd.concat(frames, ignore_index=True)


def naive_s3(client: object, bucket: str, keys: list[str]) -> pd.DataFrame:
    frames = [
        pd.read_json(io.BytesIO(client.get_object(Bucket=bucket, Key=key)["Body"].read()), lines=True)
        for key in keys
    ]
    return pd.concat(frames, ignore_index=True)


def as_frame(logs: object) -> object:
    """The reader's result with its pandas frame built (what the naive loop returns)."""
    _ = logs.frame
    return logs


def timed(call):  # noqa: ANN001, ANN201
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def train_champion(home: Path, data: str) -> tuple[dict, pd.DataFrame]:
    env = {
        **os.environ,
        "MLOPS_HOME": str(home),
        "MLOPS_DATA_SOURCE": data,
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_CANDIDATE_FAMILIES": "ridge",
        "MLOPS_DEPLOY_ON_PROMOTION": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    subprocess.run(
        [sys.executable, "-m", "flows.training"], env=env, cwd=PROJECT_ROOT, check=True, capture_output=True
    )
    from tasks.registry.model_registry import fetch_bundle

    bundle, _ = fetch_bundle(f"sqlite:///{home / 'mlflow.db'}", MODEL, None, home / "bundle")
    return json.loads((bundle / "schema.json").read_text()), pd.read_parquet(bundle / "reference.parquet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--objects", type=int, default=2_000)
    parser.add_argument("--data", default=str(PROJECT_ROOT.parent / "shared/data/AmesHousing.csv"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-monitoring-"))
    home = work / "home"
    print("training a champion for the schema and reference ...", flush=True)
    schema, reference = train_champion(home, args.data)

    now = datetime.now(UTC)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)
    window = Window(start, start + timedelta(hours=2))
    objects = make_objects(schema, reference, args.rows, args.objects, start)
    storage = home / "storage"
    for request_id, at, payload in objects:
        path = storage / prediction_key(MODEL, request_id, at)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)
    keys = [prediction_key(MODEL, request_id, at) for request_id, at, _ in objects]
    size = sum(len(payload) for _, _, payload in objects)
    print(
        f"{args.rows} rows in {len(objects)} objects, {size / 2**20:.0f} MiB of JSON Lines, 79 features per row"
    )

    naive_seconds, naive = timed(lambda: naive_local(storage, keys))
    typed = ServingSchema.from_dict(schema)
    reader = LogReader(storage.as_uri(), MODEL, typed, row_cap=10**9)
    ours_seconds, ours = timed(lambda: as_frame(reader.read(window)))
    assert len(naive) == len(ours.frame) == args.rows
    first_arrow, _ = timed(lambda: LogReader(storage.as_uri(), MODEL, typed, row_cap=10**9).read(window))
    print(f"local  naive (read + pandas.read_json per object): {naive_seconds:7.2f} s")
    print(
        f"local  LogReader:                                  {ours_seconds:7.2f} s   {naive_seconds / ours_seconds:5.1f}x faster"
    )
    compact_seconds, compacted = timed(lambda: compact_closed_hours(reader, now, lookback_hours=6))
    reread_arrow, _ = timed(lambda: reader.read(window))
    reread_seconds, reread = timed(lambda: as_frame(reader.read(window)))
    assert len(reread.frame) == args.rows
    assert reread.stats.compacted_hours == 2
    print(f"local  compaction of {len(compacted)} hours:                      {compact_seconds:7.2f} s")
    print(
        f"local  re-read of the compacted window:            {reread_seconds:7.2f} s   {ours_seconds / reread_seconds:5.1f}x faster than its first read (to pandas)"
    )
    print(
        f"local  re-read to an Arrow table only:             {reread_arrow:7.2f} s   {first_arrow / reread_arrow:5.1f}x faster than the first read to Arrow ({first_arrow:.2f} s)"
    )

    with moto_server(work / "moto.log") as endpoint:
        os.environ.update({**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        for key, (_, _, payload) in zip(keys, objects, strict=True):
            client.put_object(Bucket="bench", Key=f"logs/{key}", Body=payload)
        s3_naive_seconds, s3_naive = timed(lambda: naive_s3(client, "bench", [f"logs/{key}" for key in keys]))
        s3_reader = LogReader("s3://bench/logs", MODEL, typed, row_cap=10**9)
        s3_seconds, s3_ours = timed(lambda: s3_reader.read(window))
        assert len(s3_naive) == len(s3_ours.frame) == args.rows
        print(
            f"moto   naive (get_object + read_json per object):  {s3_naive_seconds:7.2f} s   ({s3_naive_seconds / len(keys) * 1000:.1f} ms per object)"
        )
        print(
            f"moto   LogReader (boto3 GETs, 16 threads):         {s3_seconds:7.2f} s   {s3_naive_seconds / s3_seconds:5.1f}x faster"
        )
        compact_closed_hours(s3_reader, now, lookback_hours=6)
        s3_reread, _ = timed(lambda: s3_reader.read(window))
        print(
            f"moto   re-read of the compacted window:            {s3_reread:7.2f} s   {s3_seconds / s3_reread:5.1f}x faster than its first read"
        )
        for name in ("AWS_ENDPOINT_URL", *FAKE_CREDENTIALS):
            os.environ.pop(name, None)

    env = {
        **os.environ,
        "MLOPS_HOME": str(home),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_RETRAIN_MODE": "off",
        "MLOPS_MONITOR_WINDOW_HOURS": "6",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    # uncompacted copy of the window, so the flow reads 2,000 JSON objects, not two Parquet files
    for path in (storage / "predictions-compacted").rglob("*.parquet"):
        path.unlink()
    # VmHWM is the child's own high-water mark; ru_maxrss would carry this (large) parent's over the fork.
    script = (
        "import re, time; from pathlib import Path; from flows.monitor import monitor_model; "
        "t = time.perf_counter(); s = monitor_model(); "
        "peak = int(re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1)) // 1024; "
        "print(f'{time.perf_counter() - t:.2f}', s.rows, s.verdict.status, peak)"
    )
    flow_seconds, completed = timed(
        lambda: subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
    )
    inner, rows, verdict, peak = completed.stdout.split()[-4:]
    print(f"monitor flow over the window ({rows} rows after the {20_000} row cap, verdict {verdict}):")
    print(
        f"       {float(inner):.1f} s inside the flow ({flow_seconds:.1f} s with interpreter start and the Prefect API), peak RSS {peak} MiB"
    )
    print(
        f"row cap default MLOPS_MONITOR_ROW_CAP=20000; sampled {args.rows} -> {rows} rows deterministically"
    )


if __name__ == "__main__":
    main()
