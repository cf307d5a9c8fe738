"""The Evidently UI on a storage root's workspace, started the way a user starts it."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import PROJECT_ROOT
from tests.support.processes import free_port, http_json, stop, wait_until


def request(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, bytes]:
    """Send one request as given (a `Host` header included) and return the status and body."""
    message = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(message, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def answers(url: str) -> bool:
    """Whether a GET of the URL returns 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def data_series(
    base: str, project: str, metric: str, labels: dict[str, str] | None = None
) -> list[list[float]]:
    """The values of each series the UI plots for a metric (and labels) across snapshots."""
    query = {"series_filter": [{"tags": [], "metadata": {}, "metric": metric, "metric_labels": labels or {}}]}
    status, body = http_json("POST", f"{base}/api/v2/snapshots/{project}/data_series_batch", query)
    assert status in {200, 201}, body
    return [series["values"] for series in body["series"]]


@contextmanager
def history_ui(storage: str, folder: Path, secret: str | None = None) -> Iterator[str]:
    """`python -m monitoring.publish.history_ui` on a storage root; yields its base URL once it answers.

    `secret` becomes `EVIDENTLY_SECRET` (writes with that `evidently-secret` header); without
    it the UI runs read-only, whatever the test's own environment holds.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "EVIDENTLY_"))}
    env |= {"MLOPS_STORAGE_URL": storage, "MLOPS_HOME": str(folder / "home"), "PYTHONPATH": str(PROJECT_ROOT)}
    if secret is not None:
        env["EVIDENTLY_SECRET"] = secret
    log = folder / "ui.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitoring.publish.history_ui", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: process.poll() is not None or answers(f"{base}/api/version"), 120, "the Evidently UI"
        )
        assert process.poll() is None, log.read_text()
        assert f"at {base}" in log.read_text()
        yield base
    finally:
        stop(process)
