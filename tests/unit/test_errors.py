"""Permanent errors fail at once with one line naming what to fix; only transient errors are retried."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import botocore.exceptions
import httpx
import pytest
from prefect import flow, task

from tasks.core.errors import NoChampionError, is_transient, retry_transient
from tasks.learning.data import DataValidationError
from tests.conftest import PROJECT_ROOT


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Call"
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionResetError("reset by peer"), True),
        (TimeoutError("timed out"), True),
        (_client_error("ThrottlingException", 400), True),
        (_client_error("SlowDown", 503), True),
        (_client_error("InternalFailure", 500), True),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="https://s3"), True),
        (httpx.ConnectError("refused"), True),
        (_client_error("AccessDenied", 403), False),
        (_client_error("NoSuchKey", 404), False),
        (botocore.exceptions.NoCredentialsError(), False),
        (FileNotFoundError("nope.csv"), False),
        (DataValidationError("target column 'price' not found"), False),
        (NoChampionError("no champion yet"), False),
        (ValueError("a bug"), False),
    ],
)
def test_errors_are_classified(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


@pytest.mark.usefixtures("prefect_api")
@pytest.mark.parametrize(
    ("error", "attempts"),
    [(ConnectionResetError("reset by peer"), 3), (DataValidationError("no such file"), 1)],
)
def test_only_transient_failures_are_retried_by_the_engine(error: Exception, attempts: int) -> None:
    calls: list[int] = []

    @task(retries=2, retry_delay_seconds=0, retry_condition_fn=retry_transient)
    def fails() -> None:
        calls.append(1)
        raise error

    @flow
    def run() -> None:
        fails()

    state = run(return_state=True)
    assert state.is_failed()
    assert len(calls) == attempts


@pytest.mark.integration
def test_missing_data_file_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    """What a user sees from `python -m flows.training` with a wrong MLOPS_DATA_SOURCE."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("MLOPS_", "PREFECT_"))
    }
    environment |= {
        "MLOPS_HOME": str(tmp_path / "home"),
        "MLOPS_DATA_SOURCE": str(tmp_path / "ames.csv"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "flows.training"],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    expected = (
        f"error: cannot read {tmp_path / 'ames.csv'}: no such file "
        "(data: MLOPS_DATA_SOURCE or data_source; spec 'ames-housing': MLOPS_DATASET_SPEC or dataset)"
    )
    assert completed.stderr.splitlines() == [expected]  # at once: no flow run, no temporary server
    assert not (tmp_path / "prefect").exists()
    assert "Traceback" not in output
    assert "Retrying" not in output
