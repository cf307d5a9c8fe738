"""The project's prefect.yaml on a real Prefect server: deploy, run, and the drift trigger.

A server starts on 127.0.0.1, `prefect deploy --all` registers the four deployments and the
drift automation, and a process worker runs them. Training is started with
`prefect deployment run`; then shifted traffic is logged and the monitor deployment runs
three times: it emits one drift event, and the trigger on `train` starts one training run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.deploy import fetch_bundle
from tests.conftest import PROJECT_ROOT
from tests.support.handler import load_handler
from tests.support.prefect_server import PrefectServer, clean_environment
from tests.support.processes import wait_until
from tests.support.traffic import reference_traffic, send, shifted

pytestmark = pytest.mark.integration
MODEL = "ames-prefect"
DRIFT_EVENT = "loopml.model.drift-detected"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, ames_csv: Path, tracking_uri: str
) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-deployments")
    environment = {
        **{k: v for k, v in clean_environment().items() if not k.startswith("MLOPS_")},
        "MLOPS_HOME": str(home / "mlops"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLOPS_DATA_SOURCE": str(ames_csv),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_CANDIDATE_FAMILIES": "ridge",
        "MLOPS_DEPLOY_ON_PROMOTION": "false",
        "MLOPS_MONITOR_WINDOW_HOURS": "1",
    }
    (home / "prefect").mkdir()
    instance = PrefectServer(home / "prefect", environment)
    try:
        instance.cli("work-pool", "create", "loopml-local", "--type", "process", cwd=PROJECT_ROOT)
        instance.cli("deploy", "--all", cwd=PROJECT_ROOT)
        # no scheduled monitor runs during the test: only the ones it starts
        monitor = instance.api("GET", "/deployments/name/monitor/default")
        for schedule in monitor["schedules"]:
            instance.api(
                "PATCH", f"/deployments/{monitor['id']}/schedules/{schedule['id']}", {"active": False}
            )
        yield instance
    finally:
        instance.close()


def _run_deployment(server: PrefectServer, name: str, *params: str) -> dict:
    args = ["deployment", "run", name, "--watch", "--watch-timeout", "600"]
    for param in params:
        args += ["--param", param]
    server.cli(*args, cwd=PROJECT_ROOT, timeout=660)
    runs = [run for run in server.flow_runs(name.split("/", maxsplit=1)[0]) if run["deployment_id"]]
    return max(runs, key=lambda run: run["created"])


def test_deploy_all_registers_deployments_and_the_drift_trigger(server: PrefectServer) -> None:
    names = {d["name"] for d in server.api("POST", "/deployments/filter", {})}
    assert names == {"default"}
    flows = {f["id"]: f["name"] for f in server.api("POST", "/flows/filter", {})}
    deployed = {flows[d["flow_id"]] for d in server.api("POST", "/deployments/filter", {})}
    assert deployed == {"train", "deploy", "monitor", "batch-predict"}
    automations = server.api("POST", "/automations/filter", {})
    [automation] = [a for a in automations if DRIFT_EVENT in json.dumps(a["trigger"])]
    assert automation["enabled"]


def test_train_runs_to_completion_then_drift_starts_exactly_one_retrain(
    server: PrefectServer, tmp_path: Path, tracking_uri: str
) -> None:
    with server.worker("loopml-local", PROJECT_ROOT, tmp_path / "worker.log"):
        first = _run_deployment(server, "train/default")
        assert first["state_type"] == "COMPLETED", first["state"]

        bundle, version = fetch_bundle(tracking_uri, MODEL, None, tmp_path / "bundle")
        assert version == "1"
        storage = Path(server.env["MLOPS_HOME"]) / "storage"
        app = load_handler(bundle, storage)
        instances, _ = reference_traffic(bundle, 200, seed=5)
        schema = json.loads((bundle / "schema.json").read_text())
        send(app, shifted(instances, schema, 1.6), per_request=2)

        for _ in range(3):
            monitor = _run_deployment(server, "monitor/default")
            assert monitor["state_type"] == "COMPLETED", monitor["state"]

        assert len(server.events(DRIFT_EVENT)) == 1
        wait_until(
            lambda: any(run["parameters"].get("reason") == "drift" for run in server.flow_runs("train")),
            60,
            "the trigger to start a training run",
        )
        drift_runs = [run for run in server.flow_runs("train") if run["parameters"].get("reason") == "drift"]
        assert len(drift_runs) == 1
        assert drift_runs[0]["parameters"]["model_name"] == MODEL
        wait_until(
            lambda: server.api("GET", f"/flow_runs/{drift_runs[0]['id']}")["state_type"] in TERMINAL,
            300,
            "the drift-triggered training run to finish",
        )
        assert server.api("GET", f"/flow_runs/{drift_runs[0]['id']}")["state_type"] == "COMPLETED"
