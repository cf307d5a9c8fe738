"""Train, deploy and serve on the local target; redeploy under traffic without losing a request."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from deployments.lambda_package.function_artifact import write_deterministic_zip
from deployments.lambda_package.smoke import SmokeTestError
from deployments.local.local_target import LocalDeployer
from flows.batch_predict import batch_predict
from flows.deploy import deploy_model
from flows.training import train_model
from tests.conftest import PROJECT_ROOT
from tests.support.processes import free_port, http_json, stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
MODEL = "ames-serve"


@pytest.fixture
def server(mlops_env: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments.local.serve", "--port", str(port), "--model", MODEL],
        cwd=PROJECT_ROOT,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield f"http://127.0.0.1:{port}", process
    stop(process)


def _post_expecting_continue(url: str, body: bytes) -> tuple[bytes, bytes]:
    """POST with `Expect: 100-continue`: the interim answer, then the response to the body."""
    address = urlparse(url)
    head = (
        f"POST /predict HTTP/1.1\r\nhost: {address.netloc}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(head.encode())
        interim = connection.recv(4096)  # times out (fails) if the server holds it back
        connection.sendall(body)
        final = b""
        while chunk := connection.recv(65536):
            final += chunk
    return interim, final


def test_train_deploy_serve_and_redeploy_under_traffic(
    mlops_env: Path, ames_csv: Path, server: tuple[str, subprocess.Popen], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, process = server
    first = train_model(str(ames_csv), model_name=MODEL, families=["ridge"])
    assert first.promoted
    deployed = deploy_model(MODEL)
    assert (deployed.function_version, deployed.model_version, deployed.changed) == ("1", "1", True)

    wait_until(lambda: http_json("GET", f"{url}/health")[0] == 200, 30, "the server to serve version 1")
    status, schema = http_json("GET", f"{url}/schema")
    assert status == 200
    example = schema["example"]
    status, answer = http_json("POST", f"{url}/predict", example)
    assert status == 200
    assert 30_000 < answer["predictions"][0] < 800_000
    status, error = http_json("POST", f"{url}/predict", {**example, "gr_liv_area": "large"})
    assert status == 400
    assert error["field"] == "gr_liv_area"
    assert "'gr_liv_area' must be a number" in error["error"]

    # A client that asks before sending its body (curl does for larger bodies) hears at once.
    interim, final = _post_expecting_continue(url, json.dumps(example).encode())
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
    assert final.startswith(b"HTTP/1.1 200 ")

    storage = mlops_env / "home" / "storage" / "predictions" / MODEL
    [logged] = list(storage.rglob(f"{answer['request_id']}.jsonl"))
    assert json.loads(logged.read_text())["prediction"] == answer["predictions"][0]

    # A client sends requests in a loop while training promotes v2 and deploys it.
    outcomes: Counter[str] = Counter()
    stop_client = threading.Event()

    def client() -> None:
        while not stop_client.is_set() and sum(outcomes.values()) < 20_000:
            code, body = http_json("POST", f"{url}/predict", example)
            outcomes[f"{code}:v{body.get('model_version')}"] += 1

    worker = threading.Thread(target=client)
    worker.start()
    try:
        monkeypatch.setenv("MLOPS_DEPLOY_ON_PROMOTION", "true")
        second = train_model(str(ames_csv), model_name=MODEL, families=["gradient_boosting"])
        assert second.promoted
        assert second.model_version == "2"
        wait_until(lambda: outcomes["200:v2"] >= 20, 30, "requests answered by version 2")
    finally:
        stop_client.set()
        worker.join(timeout=30)
    assert set(outcomes) == {"200:v1", "200:v2"}, outcomes
    assert outcomes["200:v1"] > 0

    deployer = LocalDeployer(mlops_env / "home", MODEL, (mlops_env / "home" / "storage").as_uri())
    assert deployer.live_version() == "2"
    again = deploy_model(MODEL)
    assert not again.changed
    assert again.detail == "already live"

    broken_model = mlops_env / "broken"
    broken_model.mkdir()
    for name in ("schema.json", "metadata.json"):
        (broken_model / name).write_text((Path(deployer.code_dir("2")) / "model" / name).read_text())
    (broken_model / "model.onnx").write_bytes(b"not an onnx model")
    entries = {f"model/{p.name}": p for p in broken_model.iterdir()}
    entries |= {
        f"lambda_handler/{p.name}": p for p in (deployer.code_dir("2") / "lambda_handler").glob("*.py")
    }
    broken = write_deterministic_zip(entries, mlops_env / "broken.zip")
    with pytest.raises(SmokeTestError, match="failed to start"):
        deployer.deploy(broken, example, "3")
    assert deployer.live_version() == "2"
    assert http_json("GET", f"{url}/health")[1]["model_version"] == "2"
    assert process.poll() is None

    # Batch scoring goes through the live function: validated and logged like API traffic.
    sample = pd.read_csv(
        ames_csv, encoding="utf-8-sig", keep_default_na=False, na_values=[""], dtype=str
    ).head(30)
    sample.loc[3, "Gr Liv Area"] = "huge"
    source = mlops_env / "batch.csv"
    sample.to_csv(source, index=False)
    logged_before = sum(len(p.read_text().splitlines()) for p in storage.rglob("*.jsonl"))
    result = batch_predict(str(source), MODEL)
    assert result.rows == 30
    assert result.scored + result.rejected == 30
    assert result.scored >= 25
    scored = pd.read_parquet(result.output_url.removeprefix("file://"))
    assert len(scored) == result.scored
    assert scored["prediction"].between(10_000, 1_000_000).all()
    rejected = pd.read_parquet(result.rejected_url.removeprefix("file://"))
    assert "field 'gr_liv_area' must be a number" in " ".join(rejected["rejection"])
    logged_after = sum(len(p.read_text().splitlines()) for p in storage.rglob("*.jsonl"))
    assert logged_after - logged_before == result.scored
