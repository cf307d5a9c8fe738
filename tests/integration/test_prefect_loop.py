"""The project's prefect.yaml on a real Prefect server: schedules fire and the loop runs unattended.

A server starts on 127.0.0.1 (its scheduler loop shortened to 2 s), `prefect deploy --all`
registers the four deployments and the drift automation, and a process worker runs them.
The first test checks that the scheduler turns the monitor's hourly cron into runs, and that
the weekly retrain is deployed paused and, activated, schedules runs with reason=schedule. The soak
then leaves everything to the server: shifted traffic is served over HTTP and labelled, a
short interval schedule runs the monitor, the monitor's drift event starts `train` through
the automation, the new champion is deployed and the running endpoint moves to it, and the
next scheduled monitor compares against that champion without a second retrain. The drift
notification automation, set up with its documented command, posts the drift to a webhook.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from deployments.local.local_target import LocalDeployer
from monitoring.labels.commands import upload_labels
from tasks.registry.model_registry import fetch_bundle
from tests.conftest import PROJECT_ROOT
from tests.support.prefect_server import PrefectServer, clean_environment
from tests.support.processes import free_port, http_json, stop, wait_until
from tests.support.traffic import HttpTraffic, reference_traffic, size_shifted

pytestmark = pytest.mark.integration
MODEL = "ames-loop"
DRIFT_EVENT = "loopml.model.drift-detected"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
MONITOR_INTERVAL_SECONDS = 40
ANCHOR_SECONDS = 12  # the schedule's first run: after the CLI that creates it has returned
LABELLED_REQUESTS = 300


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, ames_csv: Path, tracking_uri: str
) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("prefect-loop")
    environment = {
        **{k: v for k, v in clean_environment().items() if not k.startswith("MLOPS_")},
        "MLOPS_HOME": str(home / "mlops"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLOPS_DATA_SOURCE": str(ames_csv),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_CANDIDATE_FAMILIES": "ridge",
        "MLOPS_DEPLOY_ON_PROMOTION": "true",
        "MLOPS_MONITOR_WINDOW_HOURS": "1",
        "MLOPS_REPORTS_URL": f"http://127.0.0.1:{free_port()}",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2",
    }
    (home / "prefect").mkdir()
    instance = PrefectServer(home / "prefect", environment)
    try:
        instance.cli("work-pool", "create", "loopml-local", "--type", "process", cwd=PROJECT_ROOT)
        instance.cli("deploy", "--all", cwd=PROJECT_ROOT)
        yield instance
    finally:
        instance.close()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _deployment(server: PrefectServer, name: str) -> dict[str, Any]:
    return server.api("GET", f"/deployments/name/{name}")


def _scheduler_errors(server: PrefectServer) -> list[str]:
    lines = server.log_text().splitlines()
    return [line for line in lines if "scheduler" in line.lower() and ("ERROR" in line or "Error" in line)]


def _run_deployment(server: PrefectServer, name: str, *params: str) -> dict[str, Any]:
    args = ["deployment", "run", name, "--watch", "--watch-timeout", "600"]
    for param in params:
        args += ["--param", param]
    server.cli(*args, cwd=PROJECT_ROOT, timeout=660)
    runs = server.deployment_runs(_deployment(server, name)["id"])
    return max(runs, key=lambda run: run["created"])


def _markdown(server: PrefectServer, flow_run_id: str) -> str:
    return "\n".join(
        artifact["data"] for artifact in server.artifacts(flow_run_id) if artifact["type"] == "markdown"
    )


def test_deploy_all_registers_deployments_and_the_schedule_fires(
    server: PrefectServer, tmp_path: Path
) -> None:
    flows = {f["id"]: f["name"] for f in server.api("POST", "/flows/filter", {})}
    deployments = server.api("POST", "/deployments/filter", {})
    assert {(flows[d["flow_id"]], d["name"]) for d in deployments} == {
        ("train", "default"),
        ("deploy", "default"),
        ("monitor", "default"),
        ("batch-predict", "default"),
    }
    automations = server.api("POST", "/automations/filter", {})
    [automation] = [a for a in automations if DRIFT_EVENT in json.dumps(a["trigger"])]
    assert automation["enabled"]

    monitor = _deployment(server, "monitor/default")
    [schedule] = monitor["schedules"]
    assert (schedule["schedule"]["cron"], schedule["active"]) == ("5 * * * *", True)
    # The scheduler service turns the cron into runs ahead of time, at minute 5 of each hour.
    wait_until(
        lambda: len(server.deployment_runs(monitor["id"], "SCHEDULED")) >= 3,
        60,
        "the scheduler to create the monitor's scheduled runs",
    )
    starts = [_time(run["expected_start_time"]) for run in server.deployment_runs(monitor["id"], "SCHEDULED")]
    assert all((start.minute, start.second) == (5, 0) for start in starts), starts
    assert all(run["auto_scheduled"] for run in server.deployment_runs(monitor["id"], "SCHEDULED"))
    assert not _scheduler_errors(server)
    _check_weekly_retrain(server, tmp_path)


def _check_weekly_retrain(server: PrefectServer, folder: Path) -> None:
    """The train deployment's calendar schedule: paused as deployed, one line of prefect.yaml from running."""
    train = _deployment(server, "train/default")
    [weekly] = train["schedules"]
    assert (weekly["schedule"]["cron"], weekly["schedule"]["timezone"]) == ("0 3 * * 1", "UTC")
    assert (weekly["slug"], weekly["active"]) == ("weekly-retrain", False)
    assert weekly["parameters"] == {"reason": "schedule", "production_hours": 720}
    # The scheduler has already run (the monitor's runs exist) and made none from a paused schedule.
    assert server.deployment_runs(train["id"]) == []

    text = (PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8")
    assert text.count("active: false") == 1
    activated = folder / "prefect.yaml"
    activated.write_text(text.replace("active: false", "active: true"), encoding="utf-8")
    server.cli("deploy", "--all", "--prefect-file", str(activated), cwd=PROJECT_ROOT)
    [weekly] = _deployment(server, "train/default")["schedules"]
    assert (weekly["active"], weekly["parameters"]["reason"]) == (True, "schedule")
    wait_until(
        lambda: len(server.deployment_runs(train["id"], "SCHEDULED")) >= 3,
        60,
        "the scheduler to create the weekly retrain's runs",
    )
    runs = server.deployment_runs(train["id"], "SCHEDULED")
    starts = [_time(run["expected_start_time"]) for run in runs]
    assert all((start.weekday(), start.hour, start.minute) == (0, 3, 0) for start in starts), starts
    assert {(run["parameters"]["reason"], run["parameters"]["production_hours"]) for run in runs} == {
        ("schedule", 720)
    }

    server.cli("deploy", "--all", cwd=PROJECT_ROOT)  # the project's file again: paused
    for run in server.deployment_runs(train["id"]):
        server.api("DELETE", f"/flow_runs/{run['id']}")
    assert [schedule["active"] for schedule in _deployment(server, "train/default")["schedules"]] == [False]
    automations = server.api("POST", "/automations/filter", {})
    assert (
        len([a for a in automations if DRIFT_EVENT in json.dumps(a["trigger"])]) == 1
    )  # replaced, not added


def _pause_project_schedule(server: PrefectServer) -> str:
    """Pause the hourly cron and drop its runs, so only the soak's own schedule runs the monitor."""
    monitor = _deployment(server, "monitor/default")
    for schedule in monitor["schedules"]:
        server.api("PATCH", f"/deployments/{monitor['id']}/schedules/{schedule['id']}", {"active": False})
    for run in server.deployment_runs(monitor["id"], "SCHEDULED"):
        server.api("DELETE", f"/flow_runs/{run['id']}")
    return monitor["id"]


def _start(module: str, server: PrefectServer, log: Path, *args: str) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=PROJECT_ROOT,
            env=server.env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


class Webhook:
    """An HTTP receiver on 127.0.0.1 that keeps the JSON bodies posted to it."""

    def __init__(self) -> None:
        received: list[dict[str, Any]] = []

        class Receive(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                del args

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Receive)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


def _set_up_drift_notification(server: PrefectServer, webhook_url: str) -> str:
    """Save a webhook notification block, then run the README's command; return its output."""
    save_block = (
        "import sys\n"
        "from prefect.blocks.notifications import CustomWebhookNotificationBlock\n"
        "CustomWebhookNotificationBlock(name='drift', url=sys.argv[1],\n"
        "    json_data={'subject': '{{subject}}', 'text': '{{body}}'}).save('drift-hook', overwrite=True)\n"
    )
    subprocess.run([sys.executable, "-c", save_block, webhook_url], env=server.env, check=True, timeout=120)
    completed = subprocess.run(
        [sys.executable, "-m", "tasks.steps.notifications", "--block", "custom-webhook/drift-hook"],
        env=server.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout


def test_unattended_loop_retrains_once_and_moves_live(
    server: PrefectServer, tmp_path: Path, tracking_uri: str
) -> None:
    monitor_id = _pause_project_schedule(server)
    home = Path(server.env["MLOPS_HOME"])
    deployer = LocalDeployer(home, MODEL, (home / "storage").as_uri())
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    endpoint = _start("deployments.local.serve", server, tmp_path / "serve.log", "--port", str(port))
    reports = _start("monitoring.publish.report_server", server, tmp_path / "reports.log")
    webhook = Webhook()
    traffic = None
    try:
        assert "created automation 'loopml drift notification'" in _set_up_drift_notification(
            server, webhook.url
        )
        assert "updated automation" in _set_up_drift_notification(server, webhook.url)  # idempotent
        with server.worker("loopml-local", PROJECT_ROOT, tmp_path / "worker.log"):
            first = _run_deployment(server, "train/default")
            assert first["state_type"] == "COMPLETED", first["state"]
            assert "Promoting" in _markdown(server, first["id"])
            assert deployer.live_version() == "1"
            wait_until(
                lambda: http_json("GET", f"{url}/health")[1].get("model_version") == "1", 60, "v1 serving"
            )

            # A user's traffic: bigger houses than in training (area and size features x1.6)
            # over HTTP, then their true prices as labels.
            bundle, _ = fetch_bundle(tracking_uri, MODEL, None, tmp_path / "bundle")
            instances, actuals = reference_traffic(bundle, LABELLED_REQUESTS, seed=11)
            instances = size_shifted(instances, 1.6)
            traffic = HttpTraffic(url)
            answers = [traffic.post(instance) for instance in instances]
            assert all(status == 200 for status, _ in answers)
            labels = pd.DataFrame(
                {"request_id": [body["request_id"] for _, body in answers], "actual": actuals}
            )
            upload_labels(labels, (home / "storage").as_uri(), MODEL, "regression")
            traffic.trickle(instances, pause=0.5)

            # From here on nobody touches anything: the monitor runs on its schedule, from a few
            # seconds on (an interval's first run is otherwise one interval away).
            anchor = (datetime.now(UTC) + timedelta(seconds=ANCHOR_SECONDS)).isoformat()
            server.cli(
                "deployment", "schedule", "create", "monitor/default",
                "--interval", str(MONITOR_INTERVAL_SECONDS), "--anchor-date", anchor, cwd=PROJECT_ROOT,
            )  # fmt: skip

            def drift_runs() -> list[dict[str, Any]]:
                return [
                    run for run in server.flow_runs("train") if run["parameters"].get("reason") == "drift"
                ]

            wait_until(lambda: bool(drift_runs()), 300, "a scheduled monitor's drift event to start train")
            [retrain] = drift_runs()
            wait_until(
                lambda: server.flow_run(retrain["id"])["state_type"] in TERMINAL, 600, "the retrain to finish"
            )
            retrain = server.flow_run(retrain["id"])
            assert retrain["state_type"] == "COMPLETED", retrain["state"]
            assert "Promoting" in _markdown(server, retrain["id"])
            wait_until(lambda: traffic.first_answer_by("2") is not None, 60, "the endpoint to answer with v2")
            serving_v2 = traffic.first_answer_by("2")
            assert deployer.live_version() == "2"

            # The next scheduled monitor run compares the traffic with the new champion.
            def later_monitor() -> dict[str, Any] | None:
                done = server.deployment_runs(monitor_id, "COMPLETED")
                after = [run for run in done if _time(run["start_time"]).timestamp() > serving_v2]
                return min(after, key=lambda run: run["start_time"]) if after else None

            wait_until(lambda: later_monitor() is not None, 300, "a scheduled monitor run after the deploy")
            later = later_monitor()
            later_summary = _markdown(server, later["id"])
            assert later["auto_scheduled"]
            assert "against champion v2" in later_summary
            assert "v2 is live now" in later_summary  # read from the target, not the logs
            assert "event loopml.model.drift-detected emitted" not in later_summary

            monitors = server.deployment_runs(monitor_id)
            finished = [run for run in monitors if run["state_type"] in TERMINAL]
            assert all(run["state_type"] == "COMPLETED" for run in finished), [r["state"] for r in finished]
            triggering = [run for run in finished if DRIFT_EVENT in _markdown(server, run["id"])]
            assert len(triggering) == 1
            assert triggering[0]["auto_scheduled"]
            assert "against champion v1" in _markdown(server, triggering[0]["id"])
            [link] = [a["data"] for a in server.artifacts(later["id"]) if a["key"] == f"drift-{MODEL}-report"]
        address = re.search(r"\]\((http://127\.0\.0\.1:\d+/[^\s)]+\.html\.gz)\)", link)
        assert address, link
        with urllib.request.urlopen(address.group(1), timeout=10) as response:  # the report server
            assert response.status == 200
            assert (response.headers["Content-Type"], response.headers["Content-Encoding"]) == (
                "text/html; charset=utf-8",
                "gzip",
            )
            assert b"<html" in gzip.decompress(response.read()).lower()
        wait_until(lambda: bool(webhook.received), 60, "the drift notification to reach the webhook")
    finally:  # whatever failed, every process this test started is stopped
        if traffic is not None:
            traffic.stop()
        stop(endpoint)
        stop(reports)
        webhook.close()

    [notification] = webhook.received  # one drift event, one notification
    assert notification["subject"] == f"Drift in {MODEL} (champion v1)"
    assert "Why: " in notification["text"]
    reports_url = re.escape(server.env["MLOPS_REPORTS_URL"])
    drift_line = rf"Drift report: {reports_url}/\S+\.html\.gz\n"
    assert re.search(drift_line, notification["text"]), notification["text"]

    [event] = server.events(DRIFT_EVENT)
    assert len(drift_runs()) == 1  # no second retrain within the cooldown
    assert not _scheduler_errors(server)
    assert all(status == 200 for _, status, _ in traffic.answers)
    timeline = {
        "drift event": _time(event["occurred"]).timestamp(),
        "train started": _time(retrain["start_time"]).timestamp(),
        "train finished (v2 promoted and deployed)": _time(retrain["end_time"]).timestamp(),
        "v2 answering on the endpoint": serving_v2,
    }
    started = timeline["drift event"]
    print("\nloop timeline (seconds after the drift event):")  # noqa: T201
    for step, at in timeline.items():
        print(f"  {step:45s} +{at - started:6.1f}")  # noqa: T201
    # v2 may answer a moment before the train run reports its end: its deploy moved live earlier
    assert timeline["drift event"] < timeline["train started"] < timeline["v2 answering on the endpoint"]
