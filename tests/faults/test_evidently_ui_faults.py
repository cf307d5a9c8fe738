"""The Evidently UI refuses what a web page or a rebound DNS name could send it, and keeps the history.

Any page the user opens may send requests to 127.0.0.1: a form or `text/plain` POST needs no
permission (a CORS "simple request"), and a page whose own name resolves to 127.0.0.1 (DNS
rebinding) may send anything, with its own name in `Host`. The real UI process
(`python -m monitoring.publish.history_ui`) is started on a real workspace and sent those requests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import RowCount

from monitoring.publish.history import add_snapshot, project_id_for, workspace_url
from tests.support.history_ui import history_ui, request
from tests.support.reports import frame

MODEL = "ui-faults"
SECRET = "a-secret-only-the-operator-knows"
JSON = {"content-type": "application/json"}


@pytest.fixture
def storage(tmp_path: Path) -> tuple[str, list[str]]:
    """A local workspace with the model's project and two snapshots."""
    storage = (tmp_path / "storage").as_uri()
    data = Dataset.from_pandas(frame(50, {}, seed=1), data_definition=DataDefinition())
    ids = [
        add_snapshot(workspace_url(storage), MODEL, Report([RowCount()]).run(data, None)) for _ in range(2)
    ]
    return storage, ids


def _host(base: str, name: str) -> dict[str, str]:
    return {"Host": f"{name}:{base.rsplit(':', 1)[1]}"}


def _projects(base: str, headers: dict[str, str] | None = None) -> list[tuple[str, str]]:
    status, body = request("GET", f"{base}/api/projects", headers=headers)
    assert status == 200, body
    return [(item["name"], item["id"]) for item in json.loads(body)]


def _snapshots(base: str, project: str) -> list[str]:
    status, body = request("GET", f"{base}/api/projects/{project}/snapshots")
    assert status == 200, body
    return sorted(item["id"] for item in json.loads(body))


def _history_is_whole(base: str, folder: Path, ids: list[str]) -> None:
    project = str(project_id_for(MODEL))
    assert _projects(base) == [(MODEL, project)]
    assert _snapshots(base, project) == sorted(ids)
    stored = folder / "storage" / "evidently" / project
    assert sorted(path.stem for path in (stored / "snapshots").iterdir()) == sorted(ids)
    assert json.loads((stored / "metadata.json").read_text())["name"] == MODEL


def test_without_the_secret_the_ui_only_reads(storage: tuple[str, list[str]], tmp_path: Path) -> None:
    url, ids = storage
    project = str(project_id_for(MODEL))
    new_project = json.dumps({"name": "planted", "description": ""}).encode()
    with history_ui(url, tmp_path) as base:
        # A page's simple requests: a text or form body, with or without a guessed secret.
        for content_type in (
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ):
            status, _ = request(
                "POST", f"{base}/api/projects", headers={"content-type": content_type}, body=new_project
            )
            assert status == 415, content_type
        status, _ = request("POST", f"{base}/api/projects", body=new_project, headers={})
        assert status == 415  # urllib's default form type
        # A rebound name: refused whatever the request, a read included.
        for name in ("evil.example", "127.0.0.1.evil.example", "localhost.evil.example"):
            status, _ = request("DELETE", f"{base}/api/projects/{project}", headers=_host(base, name))
            assert status == 400, name
            status, _ = request("GET", f"{base}/api/projects", headers=_host(base, name))
            assert status == 400, name
        status, _ = request("DELETE", f"{base}/api/projects/{project}", headers={"Host": "evil.example"})
        assert status == 400
        # The right host, but no secret (or a wrong one): writes are refused.
        for headers in ({}, {"evidently-secret": "guess"}, {"evidently-secret": ""}):
            status, _ = request("DELETE", f"{base}/api/projects/{project}", headers=headers)
            assert status == 403, headers
            status, _ = request("DELETE", f"{base}/api/projects/{project}/{ids[0]}", headers=headers)
            assert status == 403, headers
            status, _ = request("POST", f"{base}/api/projects", headers=JSON | headers, body=new_project)
            assert status == 403, headers
        status, _ = request("GET", f"{base}/api/projects/{project}/reload")
        assert status == 403
        # Reads on this machine's names work: the projects, the dashboard, its series, the page.
        for name in ("127.0.0.1", "localhost"):
            assert _projects(base, _host(base, name)) == [(MODEL, project)]
        status, _ = request("GET", f"{base}/api/projects", headers={"Host": "localhost"})
        assert status == 200
        status, body = request("GET", f"{base}/api/v2/dashboards/{project}")
        assert status == 200
        assert json.loads(body)["panels"]
        series = {
            "series_filter": [
                {"tags": [], "metadata": {}, "metric": "evidently:metric_v2:RowCount", "metric_labels": {}}
            ]
        }
        status, body = request(
            "POST",
            f"{base}/api/v2/snapshots/{project}/data_series_batch",
            headers=JSON,
            body=json.dumps(series).encode(),
        )
        assert status == 201, body  # a read by POST (Litestar's default status for POST)
        assert [s["values"] for s in json.loads(body)["series"]] == [[50.0, 50.0]]
        status, body = request("GET", f"{base}/")
        assert status == 200
        assert b"<html" in body.lower()
        _history_is_whole(base, tmp_path, ids)


def test_with_the_secret_writes_still_need_this_host_and_json(
    storage: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, ids = storage
    project = str(project_id_for(MODEL))
    secret = {"evidently-secret": SECRET}
    new_project = json.dumps({"name": "planted", "description": ""}).encode()
    with history_ui(url, tmp_path, secret=SECRET) as base:
        status, _ = request(
            "POST", f"{base}/api/projects", headers=secret | {"content-type": "text/plain"}, body=new_project
        )
        assert status == 415
        for name in ("evil.example", "127.0.0.1.evil.example"):
            status, _ = request(
                "DELETE", f"{base}/api/projects/{project}", headers=secret | _host(base, name)
            )
            assert status == 400, name
        status, _ = request(
            "DELETE", f"{base}/api/projects/{project}", headers=secret | {"content-type": "text/plain"}
        )
        assert status == 415
        _history_is_whole(base, tmp_path, ids)
        # The operator, with the secret, on this machine's name: the write takes effect.
        status, _ = request("DELETE", f"{base}/api/projects/{project}/{ids[0]}", headers=secret)
        assert status == 204
        assert _snapshots(base, project) == [ids[1]]
