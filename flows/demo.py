"""The whole loop on the local target, narrated: `make demo` (or `python -m flows.demo`).

1. Train an initial champion on the Ames sales up to 2007 and deploy it.
2. Serve it on 127.0.0.1 and replay the 2008-2010 sales through the HTTP endpoint
   (with a synthetic shift of the area and size features unless `--shift 1`).
3. Deliver the true sale prices as labels, run the monitor, and let its drift verdict
   retrain on the source data plus the labelled traffic; a better model is deployed and
   `live` moves while the server keeps answering.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import re
import subprocess
import sys
import time
from typing import Any

# The synthetic shift touches area and size features only (square feet, lot size and frontage,
# garage, deck, porch and pool areas): ratings, room counts and years keep their real values.
SIZE_FEATURES = re.compile(r"(area|_sf(_|$)|sf_|porch|frontage)")


def say(step: str, text: str = "") -> None:
    """A step heading, or an indented line of narration under the current step."""
    print(f"    {text}" if text else f"\n==> {step}", flush=True)


def _quiet() -> None:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    # the demo shows the loop in about two minutes: candidates keep their fixed hyperparameters
    os.environ.setdefault("MLOPS_TUNING_TRIALS", "0")
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("mlflow", "alembic", "prefect"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def size_features(numeric: list[str]) -> list[str]:
    """The numeric inputs that measure an area or a size."""
    return [name for name in numeric if SIZE_FEATURES.search(name)]


def shifted(instance: dict[str, Any], sizes: set[str], factor: float) -> dict[str, Any]:
    """Scale the area and size features of one instance by `factor` (bigger houses than in training)."""
    return {key: value * factor if key in sizes else value for key, value in instance.items()}


def replay_instances(later: Any, schema: Any, factor: float) -> list[dict[str, Any]]:
    """The later sales as request instances, with the synthetic shift applied and narrated."""
    from tasks.steps.batch_steps import to_instances

    instances = to_instances(later, schema)
    if factor == 1:
        say(f"3. Replaying {len(instances)} sales from 2008-2010 as live traffic")
        return instances
    sizes = size_features(schema.numeric)
    say(f"3. Replaying {len(instances)} sales from 2008-2010 as live traffic (a synthetic shift)")
    say("", f"area and size features x{factor}: {', '.join(sizes)}")
    say("", "ratings, conditions, room counts and years are as sold")
    return [shifted(instance, set(sizes), factor) for instance in instances]


def drift_line(summary: Any) -> str:
    """Both drift measures and the drifted inputs the model leans on most."""
    if summary.drift_share is None:
        return "no drift figures (no rows)"
    top = ", ".join(f"{f['column']} ({f['importance']:.0%})" for f in summary.drifted_features[:5]) or "none"
    return (
        f"weighted drift {summary.weighted_drift:.0%} (importance share of drifted inputs), "
        f"drifted-input share {summary.drift_share:.0%}; drifted inputs by importance: {top}"
    )


def _exchange(
    connection: http.client.HTTPConnection, method: str, path: str, body: str | None = None
) -> tuple[int, dict[str, Any]]:
    """One request over a kept-alive connection, reopened once if the server closed it while idle."""
    headers = {"content-type": "application/json"} if body is not None else {}
    for attempt in (1, 2):
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            connection.close()  # the next request opens a new connection
            if attempt == 2:  # noqa: PLR2004
                raise
    raise AssertionError  # unreachable: the loop returns or raises


def post(connection: http.client.HTTPConnection, path: str, body: Any) -> tuple[int, dict[str, Any]]:
    """POST JSON over a kept-alive connection."""
    return _exchange(connection, "POST", path, json.dumps(body))


def get(connection: http.client.HTTPConnection, path: str) -> tuple[int, dict[str, Any]]:
    """GET JSON over a kept-alive connection."""
    return _exchange(connection, "GET", path)


def _read_sales(source: str) -> Any:
    """The Ames sales table; an unreachable source ends the demo with one line naming the fix."""
    from tasks.core.dataset_spec import AMES_SPEC
    from tasks.learning.data import normalise_columns, read_table

    try:
        return normalise_columns(read_table(source, AMES_SPEC.missing_values))
    except ConnectionError as error:
        raise SystemExit(f"error: {error}") from None


def main(argv: list[str] | None = None) -> None:
    """Run the demo."""
    parser = argparse.ArgumentParser(
        prog="python -m flows.demo", description="Run the closed loop on the local target."
    )
    parser.add_argument(
        "--shift",
        type=float,
        default=1.3,
        help="scale area and size features of the replayed sales (1 = none)",
    )
    args = parser.parse_args(argv)
    _quiet()
    from tasks.core.settings import load_settings

    settings = load_settings()  # a wrong setting stops here, before the slow imports and any server
    from flows.cli.temporary_server import prefect_api

    with prefect_api():
        _run(settings, args.shift)


def _run(settings: Any, shift: float) -> None:  # noqa: PLR0915 - a narrated script, step by step
    """The demo's steps, with the settings read and a Prefect API to report to."""
    import pandas as pd

    from deployments.lambda_handler.contract import CHAMPION_ALIAS, ServingSchema
    from deployments.local.local_target import LocalDeployer
    from flows.monitor import monitor_model
    from flows.training import train_model
    from monitoring.labels.commands import upload_labels
    from monitoring.publish.summary import served_text
    from tasks.core.settings import PROJECT_ROOT
    from tasks.registry.model_registry import mlflow_client

    started = time.perf_counter()
    model = settings.model_name
    demo_dir = settings.home / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)

    say(f"Reading the Ames sales from {settings.data_source}")
    sales = _read_sales(settings.data_source)
    years = pd.to_numeric(sales["yr_sold"])
    history, later = sales[years <= 2007], sales[years >= 2008]  # noqa: PLR2004
    history_csv = demo_dir / "ames-sales-2006-2007.csv"
    history.to_csv(history_csv, index=False)
    say(
        "",
        f"{len(history)} sales from 2006-2007 to train on, {len(later)} from 2008-2010 to replay as traffic",
    )

    say("1. Training the first champion on 2006-2007 (parallel candidates, MLflow, champion gate)")
    if settings.tuning_trials == 0:
        say("", "tuning is off in the demo (MLOPS_TUNING_TRIALS=0); `make train` tunes every family")
    first = train_model(data_source=str(history_csv))
    verdict = (
        f"promoted to champion as v{first.model_version}"
        if first.promoted
        else f"not promoted: {first.reason}"
    )
    say(
        "",
        f"best candidate {first.family}: holdout RMSE ${first.metrics['rmse']:,.0f}, RMSLE {first.metrics['rmsle']:.3f}; {verdict}",
    )
    deployer = LocalDeployer(settings.home, model, settings.storage)
    say(
        "",
        f"local function version {deployer.live_version()} is live (the champion's ONNX bundle, smoke-tested)",
    )

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    say(f"2. Serving the live version at {url} (API Gateway payload 2.0 events to the local Lambda runner)")
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "deployments.local.serve", "--port", str(port), "--model", model],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(demo_dir / "serve.log").open("w"),
    )
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(200):
            try:
                status, health = get(connection, "/health")
                if status == 200:  # noqa: PLR2004
                    break
            except OSError:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            time.sleep(0.1)
        else:
            msg = f"the server did not come up; see {demo_dir / 'serve.log'}"
            raise RuntimeError(msg)
        _, schema = get(connection, "/schema")
        say(
            "",
            f"GET /health -> {health['model_name']} v{health['model_version']}; GET /schema -> {len(schema['features'])} inputs",
        )

        instances = replay_instances(later, ServingSchema.from_dict(schema), shift)
        request_ids, actuals, refused = [], [], []
        for instance, price in zip(instances, later["sale_price"], strict=True):
            status, answer = post(connection, "/predict", instance)
            if status == 200:  # noqa: PLR2004
                request_ids.append(answer["request_id"])
                actuals.append(float(price))
            else:
                refused.append(answer["error"])
        say("", f"{len(request_ids)} answered and logged to {settings.storage}/predictions/{model}/")
        if refused:
            say("", f"{len(refused)} refused with 400 (e.g. {refused[0]!r}); refused requests are not logged")

        say("4. Delivering the true sale prices as labels")
        labels = pd.DataFrame({"request_id": request_ids, "row": 0, "actual": actuals})
        say(
            "",
            f"uploaded {len(labels)} labels to {upload_labels(labels, settings.storage, model, 'regression')}",
        )

        say("5. Monitoring the last hour: Evidently drift report, verdict, and a retrain on drift")
        summary = monitor_model(
            window_hours=1,
            ignore_cooldown=True,  # each demo run retrains on its own traffic
            retrain_mode="inline",  # no Prefect server needed: the monitor runs the retrain itself
            retrain_data_source=str(history_csv),
        )
        say("", f"verdict: {summary.verdict.status} ({'; '.join(summary.verdict.reasons)})")
        say("", drift_line(summary))
        if summary.estimated_metrics:
            estimated = summary.estimated_metrics["rmse"]
            live = summary.live_metrics.get("rmse")
            realized = "n/a" if live is None else f"${live:,.0f}"
            say(
                "",
                f"RMSE estimated before labels (DLE) ${estimated:,.0f}, realized on labelled traffic {realized} "
                f"(holdout was ${first.metrics['rmse']:,.0f})",
            )
        say(
            "",
            f"window served by {served_text(summary.served_versions)}; compared with champion v{summary.model_version}",
        )
        say("", f"report: {summary.report_url}")
        say("", f"retrain: {summary.retrain}")

        champion = str(
            mlflow_client(settings.tracking_uri).get_model_version_by_alias(model, CHAMPION_ALIAS).version
        )
        deadline = time.monotonic() + 30
        while get(connection, "/health")[1]["model_version"] != champion and time.monotonic() < deadline:
            time.sleep(0.2)
        status, answer = post(connection, "/predict", instances[0])
        say("6. The server follows `live` without a restart")
        say("", f"POST /predict -> {status}, answered by model v{answer.get('model_version')}")
    finally:
        server.terminate()
        server.wait(timeout=10)

    _summary(settings, model, deployer, summary, url, time.perf_counter() - started)


def _summary(settings: Any, model: str, deployer: Any, monitor: Any, url: str, seconds: float) -> None:
    from deployments.lambda_handler.contract import CHAMPION_ALIAS
    from tasks.registry.model_registry import mlflow_client

    client = mlflow_client(settings.tracking_uri)
    champion = str(client.get_model_version_by_alias(model, CHAMPION_ALIAS).version)
    live = deployer.live_version()
    live_model = str(deployer.version_info(live)["model_version"]) if live else None
    say(f"Summary ({seconds:.0f} s)")
    say("", "registered versions (each on its own run's holdout; the gate scores both on the same one):")
    for version in sorted(client.search_model_versions(f"name = '{model}'"), key=lambda v: int(v.version)):
        run = client.get_run(version.run_id).data
        marks = [
            name
            for name, on in (
                (CHAMPION_ALIAS, str(version.version) == champion),
                ("live", str(version.version) == live_model),
            )
            if on
        ]
        gate = run.tags.get("promotion_reason", "")
        say(
            "",
            f"  v{version.version}: RMSE ${run.metrics['rmse']:,.0f}, RMSLE {run.metrics['rmsle']:.3f} {' '.join(marks)}",
        )
        say("", f"       gate: {gate}")
    if monitor.live_metrics:
        say(
            "",
            f"live metrics of v{monitor.model_version} on labelled traffic: RMSE ${monitor.live_metrics['rmse']:,.0f}",
        )
    say("", f"local `live` alias -> function version {live} (model v{live_model})")
    say("", f"drift report: {monitor.report_url}")
    say("", f"  in a browser: {monitor.report_link} (after: make reports)")
    say("", f"prediction logs: {settings.storage}/predictions/{model}/")
    say("", "drift and quality over time: make evidently-ui, then http://127.0.0.1:8000")
    say(
        "",
        f"endpoint (stopped now; start it again): python -m deployments.local.serve --port 8080 -> http://127.0.0.1:8080 (this run used {url})",
    )
    say(
        "",
        f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri} -> http://127.0.0.1:5000",
    )
    say(
        "",
        "Prefect UI: .venv/bin/prefect server start -> http://127.0.0.1:4200 (flow runs of this demo are there)",
    )
    say(
        "",
        "Next: the same loop unattended on a Prefect server (schedule, drift trigger): README, 'After the demo'",
    )


if __name__ == "__main__":
    from tasks.core.errors import run_command

    run_command(main)
