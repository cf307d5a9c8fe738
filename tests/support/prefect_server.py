"""A real Prefect server, CLI and process worker on 127.0.0.1 for deployment tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, stop, wait_until

PREFECT = str(Path(sys.executable).parent / "prefect")


class PrefectServer:
    """A `prefect server start` process and an environment pointing clients at it."""

    def __init__(self, home: Path, environment: dict[str, str]) -> None:
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.env = {
            **environment,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api_url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1",
        }
        self.log_path = home / "server.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._healthy, 120, "the Prefect server to answer")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            msg = f"Prefect server exited with {self.process.returncode}"
            raise RuntimeError(msg)
        try:
            return httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def cli(self, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run a `prefect` command against this server; fail with its output if it fails."""
        completed = subprocess.run(
            [PREFECT, "--no-prompt", *args],
            env={**self.env, "PWD": str(cwd)},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            msg = f"prefect {' '.join(args)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
            raise RuntimeError(msg)
        return completed

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the REST API."""
        response = httpx.request(method, f"{self.api_url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def flow_runs(self, flow_name: str) -> list[dict[str, Any]]:
        """Every run of a flow."""
        return self.api("POST", "/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}})

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        """One flow run as the API has it now."""
        return self.api("GET", f"/flow_runs/{flow_run_id}")

    def deployment_runs(self, deployment_id: str, *states: str) -> list[dict[str, Any]]:
        """Runs of a deployment, optionally only those in the given state types."""
        flow_runs: dict[str, Any] = {"deployment_id": {"any_": [deployment_id]}}
        if states:
            flow_runs["state"] = {"type": {"any_": list(states)}}
        return self.api("POST", "/flow_runs/filter", {"flow_runs": flow_runs})

    def artifacts(self, flow_run_id: str) -> list[dict[str, Any]]:
        """The artifacts of a flow run (what its page in the UI shows)."""
        return self.api("POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})

    def log_text(self) -> str:
        """Everything the server printed so far."""
        self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """Events with this name from the last hour."""
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
        page = self.api(
            "POST",
            "/events/filter",
            {"filter": {"event": {"name": [name]}, "occurred": {"since": since}}, "limit": 50},
        )
        return page["events"]

    @contextmanager
    def worker(self, pool: str, cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
        """A process worker polling the pool every second; stopped (SIGINT, then kill) on exit."""
        with log.open("w") as output:
            process = subprocess.Popen(
                [PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
                env=self.env,
                cwd=cwd,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            try:
                yield process
            finally:
                for _ in range(2):
                    if process.poll() is None:
                        process.send_signal(signal.SIGINT)
                        try:
                            process.wait(timeout=10)
                        except subprocess.TimeoutExpired:
                            continue
                stop(process)

    def close(self) -> None:
        """Stop the server."""
        stop(self.process)
        self.log.close()


@contextmanager
def client_of(server: PrefectServer) -> Iterator[None]:
    """Flows run in this process talk to `server`: its API, its events, its logs.

    Prefect keeps one events worker and one log worker per process, bound to the API they
    first met (a test harness of the same session, say), so both are drained before and after:
    a drift event emitted here reaches this server's automations and no other.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    EventsWorker.drain_all()
    APILogWorker.drain_all()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        try:
            yield
        finally:  # what the flows emitted reaches this server before the settings change back
            EventsWorker.drain_all()
            APILogWorker.drain_all()


def clean_environment() -> dict[str, str]:
    """This process's environment without Prefect settings a test harness may have set."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
