"""Serving over HTTP: the project's local endpoint against `mlflow models serve` of the same champion.

Run: `.venv/bin/python -m benchmarks.serving [--requests 2000]`

Trains an Ames champion (gradient boosting, no tuning) in a temporary `MLOPS_HOME`, deploys it
to the local target, then starts both servers on 127.0.0.1: `python -m deployments.local.serve`
(the Lambda function behind an API Gateway-like HTTP front, ONNX) and
`mlflow models serve -m models:/<model>@champion --env-manager local` (the scikit-learn
pipeline, the way MLflow users serve a registered model). Each client holds one kept-alive
connection and sends single-row requests, the same rows to both servers; with 1 and with 8
concurrent clients it prints p50 / p99 latency and requests per second, and the ratios.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.replay import AMES_CSV, wait_for
from tasks.core.settings import PROJECT_ROOT
from tests.support.processes import child_pids, free_port

CLIENTS = (1, 8)


def _client(port: int, path: str, bodies: list[bytes], latencies: list[float], failures: list[int]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"content-type": "application/json"}
    for body in bodies:
        started = time.perf_counter()
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            failures.append(response.status)
    connection.close()


def load(port: int, path: str, bodies: list[bytes], clients: int) -> dict[str, float]:
    """Send `bodies` split over `clients` kept-alive connections; latency percentiles and throughput."""
    latencies: list[float] = []
    failures: list[int] = []
    shares = [bodies[index::clients] for index in range(clients)]
    threads = [
        threading.Thread(target=_client, args=(port, path, share, latencies, failures)) for share in shares
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        msg = f"{len(failures)} requests to {path} failed (status {failures[0]})"
        raise RuntimeError(msg)
    ordered = sorted(latencies)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)],
        "rps": len(ordered) / elapsed,
    }


def recovery_after_kills(port: int, server_pid: int, body: bytes, kills: int = 5) -> dict[str, float]:
    """Kill the function process under one client's traffic; time until a request sent after it is answered.

    Also counts what the client saw meanwhile: 503s (the request in flight at the death) and
    dropped connections (there should be none).
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    seconds, unavailable, dropped = [], 0, 0
    for _ in range(kills):
        [victim] = child_pids(server_pid)
        killed = time.perf_counter()
        os.kill(victim, 9)
        while True:
            try:
                connection.request("POST", "/predict", body, {"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                dropped += 1
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if response.status == 200 and child_pids(server_pid) not in ([], [victim]):
                seconds.append(time.perf_counter() - killed)
                break
            unavailable += response.status == 503
        time.sleep(0.5)
    connection.close()
    return {
        "median_s": statistics.median(seconds),
        "max_s": max(seconds),
        "503": unavailable,
        "dropped": dropped,
    }


def request_bodies(rows: int) -> tuple[list[bytes], list[bytes]]:
    """The same Ames rows as project instances (missing fields left out) and as MLflow records."""
    from tasks.core.dataset_spec import AMES_SPEC
    from tasks.learning.data import prepare_data, read_table

    data = prepare_data(read_table(str(AMES_CSV)), AMES_SPEC, "ames", 50)
    frame = data.frame[data.features].head(rows)
    ours, theirs = [], []
    for record in frame.to_dict("records"):
        present = {
            name: value
            for name, value in record.items()
            if not (isinstance(value, float) and math.isnan(value)) and value != ""
        }
        ours.append(json.dumps(present).encode())
        full = {name: (None if isinstance(v, float) and math.isnan(v) else v) for name, v in record.items()}
        theirs.append(json.dumps({"dataframe_records": [full]}).encode())
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per server and client count")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="bench-http-"))
    os.environ.update(
        MLOPS_HOME=str(home),
        MLOPS_DATA_SOURCE=str(AMES_CSV),
        MLOPS_MODEL_NAME="ames-http",
        MLOPS_TUNING_TRIALS="0",
        MLOPS_CANDIDATE_FAMILIES="gradient_boosting",
        PREFECT_LOGGING_LEVEL="WARNING",
    )
    from flows.training import train_model
    from tasks.core.settings import load_settings

    summary = train_model()
    settings = load_settings()
    ours_body, mlflow_body = request_bodies(args.requests)
    ours_port, mlflow_port = free_port(), free_port()
    bin_folder = str(Path(sys.executable).parent)  # mlflow starts `uvicorn` from the PATH
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.tracking_uri}
    env["PATH"] = f"{bin_folder}{os.pathsep}{env.get('PATH', '')}"
    servers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "deployments.local.serve",
                "--port",
                str(ours_port),
                "--model",
                "ames-http",
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(home / "serve.log").open("w"),
        ),
        subprocess.Popen(
            [
                str(Path(bin_folder) / "mlflow"),
                *("models", "serve", "-m", "models:/ames-http@champion", "--env-manager", "local"),
                *("--host", "127.0.0.1", "--port", str(mlflow_port)),
            ],
            cwd=home,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(home / "mlflow-serve.log").open("w"),
        ),
    ]
    try:
        wait_for(f"http://127.0.0.1:{ours_port}/health", servers[0], 180)
        wait_for(f"http://127.0.0.1:{mlflow_port}/ping", servers[1], 180)
        print(
            f"\nAmes champion v{summary.model_version} ({summary.family}), {args.requests} single-row requests"
        )
        print(f"{'server':34} {'clients':>7} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
        for clients in CLIENTS:
            load(ours_port, "/predict", ours_body[:100], clients)  # warm up both
            load(mlflow_port, "/invocations", mlflow_body[:100], clients)
            ours = load(ours_port, "/predict", ours_body, clients)
            theirs = load(mlflow_port, "/invocations", mlflow_body, clients)
            for name, figures in (
                ("deployments.local.serve (ONNX function)", ours),
                ("mlflow models serve", theirs),
            ):
                print(
                    f"{name:34} {clients:7d} {figures['p50_ms']:8.2f} {figures['p99_ms']:8.2f} "
                    f"{figures['rps']:8.0f}"
                )
            print(
                f"{'ratio (mlflow / ours)':34} {clients:7d} {theirs['p50_ms'] / ours['p50_ms']:7.1f}x "
                f"{theirs['p99_ms'] / ours['p99_ms']:7.1f}x {ours['rps'] / theirs['rps']:7.1f}x"
            )
        recovery = recovery_after_kills(ours_port, servers[0].pid, ours_body[0])
        print(
            f"\nkill -9 of the function process, 5 times under one client: answered again after "
            f"{recovery['median_s']:.2f} s median ({recovery['max_s']:.2f} s max); "
            f"{recovery['503']:.0f} answered 503, {recovery['dropped']:.0f} connections dropped"
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=20)
    print(f"\nstate: {home}")


if __name__ == "__main__":
    main()
