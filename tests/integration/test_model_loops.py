"""Two models of different tasks on one real Prefect server and one worker with default settings.

The worker knows neither model's data: its `MLOPS_DATA_SOURCE` is the Ames URL (unreachable
here), with no dataset spec and every family. Each champion was trained from its own file and
spec, and its drift retrain, started on the worker by the drift automation, must take them,
its families and its data policy from what the champion recorded. The test holds the
classification model's training slot (`train-<model>`), so its retrain waits in flight; the
Ames model's monitor still starts its own retrain (the in-flight guard counts runs of the same
model only), and that retrain runs and finishes meanwhile (the concurrency is per model). A
third monitor run inside the cooldown starts nothing. The monitor runs in this process,
against the same server, to spare three process starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from deployments.lambda_handler.contract import ServingSchema
from flows.monitor import monitor_model
from flows.training import train_model
from monitoring.labels.commands import upload_labels
from monitoring.publish.summary import MonitoringSummary
from tasks.core.dataset_spec import AMES_SPEC
from tasks.core.storage import filesystem
from tasks.registry.model_registry import fetch_bundle
from tests.conftest import PROJECT_ROOT
from tests.support.handler import load_handler
from tests.support.prefect_server import PrefectServer, clean_environment, client_of
from tests.support.processes import free_port, wait_until
from tests.support.traffic import reference_traffic, send, size_shifted

pytestmark = pytest.mark.integration
AMES, CHURN = "ames-own", "churn-own"
DRIFT_EVENT = "loopml.model.drift-detected"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
REQUESTS = 150  # each model's labelled traffic: over MLOPS_MONITOR_MIN_ROWS, 30 for the recent check


def _churn_rows(rows: int, seed: int, *, shifted: bool = False) -> pd.DataFrame:
    """Subscriptions: churn grows with fees and calls, falls with tenure; `shifted` is a new market."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "Tenure Months": rng.integers(1, 48, rows) + (30 if shifted else 0),
            "Monthly Fee": rng.normal(40, 10, rows).round(2) * (1.8 if shifted else 1.0),
            "Support Calls": rng.poisson(2, rows) + (5 if shifted else 0),
            "Plan": rng.choice(["basic", "plus", "pro"], rows, p=[0.1, 0.1, 0.8] if shifted else None),
        }
    )
    score = 0.08 * frame["Monthly Fee"] + 0.5 * frame["Support Calls"] - 0.1 * frame["Tenure Months"] - 2.5
    churned = rng.random(rows) < 1 / (1 + np.exp(-score))
    return frame.assign(Churned=np.where(churned, "yes", "no"))


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, ames_csv: Path, tracking_uri: str
) -> Iterator[dict[str, Any]]:
    """The server, both champions (each from its own data) and each model's drifted, labelled traffic."""
    home = tmp_path_factory.mktemp("model-loops")
    churn_csv, churn_spec = home / "churn.csv", home / "churn-spec.json"
    _churn_rows(400, seed=1).to_csv(churn_csv, index=False)
    spec = {"name": "churn-toy", "target": "Churned", "task": "classification", "drop": [], "categorical": []}
    churn_spec.write_text(json.dumps(spec), encoding="utf-8")
    environment = {
        **{k: v for k, v in clean_environment().items() if not k.startswith("MLOPS_")},
        "MLOPS_HOME": str(home / "mlops"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLOPS_DEPLOY_ON_PROMOTION": "false",
        "MLOPS_TUNING_TRIALS": "0",
        "MLOPS_MONITOR_WINDOW_HOURS": "1",
        "MLOPS_REFERENCE_ROWS": "300",  # small baselines: a quick monitor, a quick estimate
        "MLOPS_IMPORTANCE_REPEATS": "1",
        "MLOPS_REPORTS_URL": f"http://127.0.0.1:{free_port()}",
    }
    (home / "prefect").mkdir()
    server = PrefectServer(home / "prefect", environment)
    storage = home / "mlops" / "storage"
    try:
        server.cli("work-pool", "create", "loopml-local", "--type", "process", cwd=PROJECT_ROOT)
        server.cli("deploy", "--all", cwd=PROJECT_ROOT)
        _pause_monitor_schedule(server)
        with _as_client(server, environment) as patch:
            assert train_model(str(ames_csv), model_name=AMES, families=["ridge"]).promoted
            # The classification model is trained from its settings, as a user of that model sets them.
            patch.setenv("MLOPS_DATA_SOURCE", str(churn_csv))
            patch.setenv("MLOPS_DATASET_SPEC", str(churn_spec))
            patch.setenv("MLOPS_CANDIDATE_FAMILIES", "logistic_regression")
            patch.setenv("MLOPS_RETRAIN_DATA", "weighted")
            patch.setenv("MLOPS_RECENCY_HALF_LIFE_DAYS", "7")
            assert train_model(model_name=CHURN).promoted
        ames_kept = _serve_ames(home, storage, tracking_uri)
        _serve_churn(home, storage, tracking_uri)
        yield {
            "server": server,
            "environment": environment,
            "ames_csv": ames_csv,
            "churn_csv": churn_csv,
            "ames_kept": ames_kept,
        }
    finally:
        server.close()


@contextmanager
def _as_client(server: PrefectServer, environment: dict[str, str]) -> Iterator[pytest.MonkeyPatch]:
    """This process as another client of the server, with the worker's settings and nothing else."""
    with pytest.MonkeyPatch.context() as patch, client_of(server):
        for name in [name for name in os.environ if name.startswith("MLOPS_")]:
            patch.delenv(name)
        for name, value in environment.items():
            if name.startswith(("MLOPS_", "MLFLOW_")):
                patch.setenv(name, value)
        yield patch


def _pause_monitor_schedule(server: PrefectServer) -> None:
    """Only the test runs the monitor: the hourly cron must not fire in the middle."""
    monitor = server.api("GET", "/deployments/name/monitor/default")
    for schedule in monitor["schedules"]:
        server.api("PATCH", f"/deployments/{monitor['id']}/schedules/{schedule['id']}", {"active": False})
    for run in server.deployment_runs(monitor["id"], "SCHEDULED"):
        server.api("DELETE", f"/flow_runs/{run['id']}")


def _serve_ames(home: Path, storage: Path, tracking_uri: str) -> int:
    """Bigger houses than in training (area and size x1.6) through the champion's handler; their prices.

    Returns how many served houses lie within the Ames spec's `row_bounds` (a retrain learns from those).
    """
    bundle, _ = fetch_bundle(tracking_uri, AMES, None, home / "bundles")
    instances, actuals = reference_traffic(bundle, REQUESTS, seed=5)
    served = size_shifted(instances, 1.6)
    answers = send(load_handler(bundle, storage), served)
    labels = pd.DataFrame({"request_id": [a["request_id"] for a in answers], "actual": actuals})
    upload_labels(labels, storage.as_uri(), AMES, "regression")
    ((_, high),) = AMES_SPEC.row_bounds.values()
    return sum(instance["gr_liv_area"] <= high for instance in served)


def _serve_churn(home: Path, storage: Path, tracking_uri: str) -> None:
    """Customers of a new market (longer tenure, higher fees, more calls), then whether they churned."""
    bundle, _ = fetch_bundle(tracking_uri, CHURN, None, home / "bundles")
    rows = _churn_rows(REQUESTS, seed=2, shifted=True)
    schema = json.loads((bundle / "schema.json").read_text(encoding="utf-8"))
    names = [feature["name"] for feature in schema["features"]]
    instances = rows.drop(columns="Churned").set_axis(names, axis=1).to_dict("records")
    answers = send(load_handler(bundle, storage), instances)
    labels = pd.DataFrame({"request_id": [a["request_id"] for a in answers], "actual": rows["Churned"]})
    upload_labels(labels, storage.as_uri(), CHURN, ServingSchema.load(bundle))


def _monitor(world: dict[str, Any], model: str, **parameters: Any) -> MonitoringSummary:
    """A monitor run of a model, as its schedule would start it (here, to spare a process start)."""
    with _as_client(world["server"], world["environment"]):
        return monitor_model(model_name=model, **parameters)


def _retrains(server: PrefectServer, model: str) -> list[dict[str, Any]]:
    return [
        run
        for run in server.flow_runs("train")
        if run["parameters"].get("model_name") == model and run["parameters"].get("reason") == "drift"
    ]


def _retrain(server: PrefectServer, model: str) -> dict[str, Any]:
    wait_until(lambda: bool(_retrains(server, model)), 60, f"the drift event to start a retrain of {model}")
    [run] = _retrains(server, model)
    return run


def _log_text(server: PrefectServer, flow_run_id: str) -> str:
    logs = server.api("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}})
    return "\n".join(item["message"] for item in logs)


def _hold_training_slot(server: PrefectServer, model: str) -> str:
    """Take the model's one training slot, as a run of it would; return the lease."""
    name = f"train-{model}"
    limits = server.api("POST", "/v2/concurrency_limits/filter", {})
    if name not in {limit["name"] for limit in limits}:
        server.api("POST", "/v2/concurrency_limits/", {"name": name, "limit": 1})
    body = {"names": [name], "slots": 1, "mode": "concurrency", "lease_duration": 600}
    return server.api("POST", "/v2/concurrency_limits/increment-with-lease", body)["lease_id"]


def _finished(server: PrefectServer, run: dict[str, Any]) -> dict[str, Any]:
    wait_until(lambda: server.flow_run(run["id"])["state_type"] in TERMINAL, 300, "the retrain to finish")
    return server.flow_run(run["id"])


def _training_run(tracking_uri: str, model: str) -> Run:
    """The MLflow run of the model's drift retrain."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(model)
    [run] = client.search_runs([experiment.experiment_id], "params.trigger = 'drift'")
    return run


def _families(tracking_uri: str, run: Run) -> list[str]:
    client = MlflowClient(tracking_uri)
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    return sorted(child.data.params["family"] for child in children)


def _inputs(run: Run) -> dict[str, dict[str, Any]]:
    """The run's dataset inputs by context: their names and, for training, its columns and snapshot."""
    found: dict[str, dict[str, Any]] = {}
    for item in run.inputs.dataset_inputs:
        [context] = [tag.value for tag in item.tags if tag.key == "mlflow.data.context"]
        found[context] = {"name": item.dataset.name}
        if context == "training":
            schema = json.loads(item.dataset.schema)["mlflow_colspec"]
            fs, path = filesystem(json.loads(item.dataset.source)["uri"])
            found[context]["columns"] = {column["name"] for column in schema}
            found[context]["snapshot"] = pd.read_parquet(fs.open(path, "rb"))
    return found


def test_two_models_retrain_on_their_own_data_without_blocking_each_other(
    world: dict[str, Any], tmp_path: Path, tracking_uri: str
) -> None:
    server: PrefectServer = world["server"]
    lease = _hold_training_slot(server, CHURN)
    try:
        with server.worker("loopml-local", PROJECT_ROOT, tmp_path / "worker.log"):
            assert _monitor(world, CHURN).retrain.startswith(f"event {DRIFT_EVENT} emitted")
            churn = _retrain(server, CHURN)  # in flight from now on, waiting for the slot the test holds

            ames_monitor = _monitor(world, AMES)  # a churn retrain is in flight: not this model's
            assert ames_monitor.retrain.startswith(f"event {DRIFT_EVENT} emitted"), ames_monitor.retrain
            ames = _finished(server, _retrain(server, AMES))
            assert ames["state_type"] == "COMPLETED", ames["state"]
            wait_until(
                lambda: f"Taking the training slot train-{CHURN}" in _log_text(server, churn["id"]),
                60,
                "the churn retrain to ask for its slot",
            )
            assert server.flow_run(churn["id"])["state_type"] == "RUNNING"  # waiting for its own slot
            assert f"Holding train-{CHURN}" not in _log_text(server, churn["id"])

            server.api("POST", "/v2/concurrency_limits/decrement-with-lease", {"lease_id": lease})
            churn = _finished(server, churn)
            assert churn["state_type"] == "COMPLETED", churn["state"]
            assert _log_text(server, churn["id"]).count(f"Holding train-{CHURN}") == 1

            third = _monitor(world, CHURN, drift_threshold=0.02)  # drift again, inside the cooldown
            assert third.verdict.retrain
            assert third.retrain.startswith("not started: cooldown"), third.retrain
    finally:
        server.api("POST", "/v2/concurrency_limits/decrement-with-lease", {"lease_id": lease})

    assert [len(_retrains(server, model)) for model in (AMES, CHURN)] == [1, 1]
    assert sorted(event["resource"]["prefect.resource.name"] for event in server.events(DRIFT_EVENT)) == [
        AMES,
        CHURN,
    ]
    ames_run, churn_run = _training_run(tracking_uri, AMES), _training_run(tracking_uri, CHURN)
    assert ames_run.data.params["data_source"] == str(world["ames_csv"].resolve())
    assert churn_run.data.params["data_source"] == str(world["churn_csv"].resolve())
    assert _families(tracking_uri, ames_run) == ["ridge"]  # the champion's families, not the worker's
    assert _families(tracking_uri, churn_run) == ["logistic_regression"]
    assert 0 < world["ames_kept"] < REQUESTS  # some served houses are beyond the spec's row_bounds
    production_rows = str(world["ames_kept"])
    assert (ames_run.data.params["retrain_data"], ames_run.data.params["production_rows"]) == (
        "all",
        production_rows,
    )
    assert churn_run.data.params["retrain_data"] == "weighted"  # its champion's data policy
    assert churn_run.data.params["recency_half_life_days"] == "7.0"

    ames_inputs, churn_inputs = _inputs(ames_run), _inputs(churn_run)
    assert (ames_inputs["training"]["name"], churn_inputs["training"]["name"]) == (
        "ames-housing",
        "churn-toy",
    )
    assert ames_inputs["production"]["name"] == "ames-housing-production"
    assert churn_inputs["production"]["name"] == "churn-toy-production"
    ames_table, churn_table = ames_inputs["training"]["snapshot"], churn_inputs["training"]["snapshot"]
    assert {"sale_price", "gr_liv_area"} <= set(ames_table.columns)
    assert set(churn_table.columns) == {"tenure_months", "monthly_fee", "support_calls", "plan", "churned"}
    assert len(ames_table) == 2925 + world["ames_kept"]  # the five houses above 4,000 sq ft left out
    assert ames_table["gr_liv_area"].max() <= 4000
    assert len(churn_table) == 400 + REQUESTS
    assert set(churn_table["churned"]) == {0, 1}  # its own target, encoded
    assert "churned" in churn_inputs["training"]["columns"]
