"""Operator mistakes at the command line, through the real commands run as subprocesses.

`--help` runs nothing; a wrong setting fails with one line before any Prefect server starts
(no Prefect database appears); misspelled variables are named with the closest setting; the
report server listens on loopback only; a dataset name cannot lead a snapshot out of the
storage root; `prefect deployment run --watch` shows why a run failed; and the temporary
Prefect server of a command dies with it, also under SIGKILL.
"""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_ROOT
from tests.support.prefect_server import PREFECT, PrefectServer, clean_environment
from tests.support.processes import free_port, stop, wait_until

COMMANDS = ["flows.training", "flows.monitor", "flows.deploy", "flows.batch_predict", "flows.demo"]
STARTED = re.compile(r"Started a temporary Prefect server on (?P<api>\S+) \(pid (?P<pid>\d+)\)")
NO_CHAMPION = "error: ames-price has no champion yet (MLOPS_MODEL_NAME); run the training flow first"


def _environment(folder: Path, **variables: str) -> dict[str, str]:
    """This environment without MLOPS_/PREFECT_ variables, with state in `folder`."""
    environment = {key: value for key, value in clean_environment().items() if not key.startswith("MLOPS_")}
    return {
        **environment,
        "MLOPS_HOME": str(folder / "home"),
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(PROJECT_ROOT),
        **variables,
    }


def _run(
    module: str, *args: str, env: dict[str, str], cwd: Path = PROJECT_ROOT, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _no_prefect_server_started(folder: Path) -> bool:
    """A Prefect server (temporary or not) creates its database under PREFECT_HOME first thing."""
    return not list((folder / "prefect").glob("*.db"))


def _process(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid from /proc, or None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    state, parent = text.rsplit(")", 1)[1].split()[:2]
    return state, int(parent)


def _running(pid: int) -> bool:
    process = _process(pid)
    return process is not None and process[0] not in {"Z", "X"}  # a zombie has stopped already


def _answers(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.parametrize("module", COMMANDS)
def test_help_prints_the_usage_and_runs_nothing(module: str, tmp_path: Path) -> None:
    completed = _run(module, "--help", env=_environment(tmp_path))
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"usage: python -m {module} "), completed.stdout
    assert completed.stderr == ""
    assert not (tmp_path / "home").exists()
    assert not (tmp_path / "prefect").exists()


@pytest.mark.parametrize("module", COMMANDS)
def test_a_wrong_setting_stops_every_command_before_a_prefect_server(module: str, tmp_path: Path) -> None:
    args = [str(tmp_path / "rows.csv")] if module == "flows.batch_predict" else []
    completed = _run(module, *args, env=_environment(tmp_path, MLOPS_TARGET="gcp"))
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        "error: Invalid settings: MLOPS_TARGET='gcp': Input should be 'local' or 'aws'"
    ]
    assert _no_prefect_server_started(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "MLOPS_PROMOTION_MARGIN",
            "-1",
            "MLOPS_PROMOTION_MARGIN='-1': Input should be greater than or equal to 0",
        ),
        ("MLOPS_MAX_QUALITY_DROP", "inf", "MLOPS_MAX_QUALITY_DROP='inf': Input should be a finite number"),
        ("MLOPS_DRIFT_THRESHOLD", "nan", "MLOPS_DRIFT_THRESHOLD='nan': Input should be a finite number"),
        (
            "MLOPS_CANARY_BAKE_SECONDS",
            "Infinity",
            "MLOPS_CANARY_BAKE_SECONDS='Infinity': Input should be a finite number",
        ),
        (
            "MLOPS_REPORTS_URL",
            "0.0.0.0:8765",
            (
                "MLOPS_REPORTS_URL='0.0.0.0:8765': must be an http:// or https:// URL with a host, "
                "such as http://127.0.0.1:8765"
            ),
        ),
        (
            "MLOPS_REPORTS_URL",
            "http://:8765",
            (
                "MLOPS_REPORTS_URL='http://:8765': must be an http:// or https:// URL with a host, "
                "such as http://127.0.0.1:8765"
            ),
        ),
        (
            "MLOPS_HOME",
            "/sys/kernel",
            "MLOPS_HOME='/sys/kernel': cannot write in the folder (Permission denied)",
        ),
    ],
)
def test_a_wrong_value_is_one_line_naming_the_variable(
    variable: str, value: str, expected: str, tmp_path: Path
) -> None:
    completed = _run("flows.training", env=_environment(tmp_path, **{variable: value}))
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [f"error: Invalid settings: {expected}"]
    assert _no_prefect_server_started(tmp_path)


def test_a_home_that_cannot_be_created_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    home = tmp_path / "a-file" / "home"
    completed = _run("flows.monitor", env=_environment(tmp_path, MLOPS_HOME=str(home)))
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        f"error: Invalid settings: MLOPS_HOME='{home}': cannot create the folder (Not a directory)"
    ]
    assert _no_prefect_server_started(tmp_path)


@pytest.mark.parametrize("how", ["setting", "option"])
def test_a_dataset_name_cannot_lead_outside_the_storage_root(how: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"name": "../../../escaped", "target": "SalePrice"}', encoding="utf-8")
    storage = tmp_path / "a" / "b" / "storage"
    variables = {"MLOPS_STORAGE_URL": str(storage), "MLOPS_DATA_SOURCE": str(tmp_path / "ames.csv")}
    args = ["--dataset-spec", str(spec)] if how == "option" else []
    if how == "setting":
        variables["MLOPS_DATASET_SPEC"] = str(spec)
    completed = _run("flows.training", *args, env=_environment(tmp_path, **variables))
    origin = "--dataset-spec" if how == "option" else "MLOPS_DATASET_SPEC"
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        (
            f"error: {origin}: {spec} is not a valid dataset spec: name='../../../escaped': "
            "use letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    ]
    assert list(tmp_path.rglob("*.parquet")) == []
    assert _no_prefect_server_started(tmp_path)


@pytest.mark.parametrize(
    "address",
    [
        "http://0.0.0.0:{port}",
        "http://192.0.2.10:{port}",
        "http://reports.example.com:{port}",
        "https://127.0.0.1:{port}",
    ],
)
def test_the_report_server_listens_only_on_loopback(address: str, tmp_path: Path) -> None:
    url = address.format(port=free_port())
    completed = _run(
        "monitoring.publish.report_server", env=_environment(tmp_path, MLOPS_REPORTS_URL=url), timeout=60
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.splitlines() == [
        (
            f"error: MLOPS_REPORTS_URL={url!r}: the report server listens only on a loopback address over "
            "plain http, without a path (e.g. http://127.0.0.1:8765, http://localhost:8765 or "
            "http://[::1]:8765); serve reports elsewhere through a web server of your own"
        )
    ]


def test_the_report_server_serves_reports_on_loopback(tmp_path: Path) -> None:
    folder = tmp_path / "home" / "storage" / "reports" / "ames-price"
    folder.mkdir(parents=True)
    (folder / "old.html").write_text("<html>drift</html>", encoding="utf-8")  # written before compression
    (folder / "window.html.gz").write_bytes(gzip.compress(b"<html>compressed drift</html>"))
    url = f"http://127.0.0.1:{free_port()}"
    with (tmp_path / "reports.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitoring.publish.report_server"],
            cwd=PROJECT_ROOT,
            env=_environment(tmp_path, MLOPS_REPORTS_URL=url),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def served() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/ames-price/old.html", timeout=2) as response:
                    return response.read() == b"<html>drift</html>"
            except OSError:
                assert process.poll() is None, (tmp_path / "reports.log").read_text(encoding="utf-8")
                return False

        wait_until(served, 60, "the report server to serve the report")
        with urllib.request.urlopen(f"{url}/ames-price/window.html.gz", timeout=5) as response:
            headers = (response.headers["Content-Type"], response.headers["Content-Encoding"])
            assert headers == ("text/html; charset=utf-8", "gzip")  # the browser shows the page
            assert gzip.decompress(response.read()) == b"<html>compressed drift</html>"
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"{url}/ames-price/missing.html.gz", timeout=5)
        assert missing.value.code == 404
        assert missing.value.headers["Content-Encoding"] is None  # a plain error page
    finally:
        stop(process)


@pytest.mark.integration
def test_a_command_warns_once_of_each_unknown_variable_and_stops_its_server(tmp_path: Path) -> None:
    """A whole command: the warnings once each, its temporary server up, the flow's error, the server gone."""
    (tmp_path / ".env").write_text(
        "MLOPS_PROMOTON_MARGIN=0.1\nMLOPS_MODEL_NAME=ames-price\n", encoding="utf-8"
    )
    environment = _environment(
        tmp_path,
        MLOPS_DRIFT_TRESHOLD="0.3",
        PREFECT_LOGGING_LEVEL="INFO",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",  # pyproject.toml's is not read from tmp_path
    )
    completed = _run("flows.monitor", env=environment, cwd=tmp_path, timeout=600)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    warnings = [line for line in completed.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        (
            "warning: MLOPS_DRIFT_TRESHOLD (environment) is not a setting and is ignored; "
            "did you mean MLOPS_DRIFT_THRESHOLD?"
        ),
        (
            "warning: MLOPS_PROMOTON_MARGIN (.env) is not a setting and is ignored; "
            "did you mean MLOPS_PROMOTION_MARGIN?"
        ),
    ]
    assert NO_CHAMPION in completed.stderr.splitlines()
    started = STARTED.search(output)
    assert started, output
    assert not _running(int(started["pid"]))
    assert not _answers(started["api"])
    assert "Traceback" not in output
    assert "Error logging to API" not in output


def _fifo(folder: Path) -> Path:
    """A named pipe nobody writes to: reading it as training data blocks the command for good."""
    path = folder / "ames.csv"
    os.mkfifo(path)
    return path


def _kill_while_its_server_runs(environment: dict[str, str], log_path: Path) -> float:
    """Start `flows.training`, SIGKILL it once its temporary server answers; seconds until the server died."""
    with log_path.open("w") as log:
        command = subprocess.Popen(
            [sys.executable, "-m", "flows.training"],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: STARTED.search(log_path.read_text(encoding="utf-8")) is not None, 300, "the server"
        )
        started = STARTED.search(log_path.read_text(encoding="utf-8"))
        assert started is not None
        server = int(started["pid"])
        assert _running(server)
        assert _process(server)[1] == command.pid  # type: ignore[index] - the command's own child
        assert _answers(started["api"])
        assert command.poll() is None, log_path.read_text(encoding="utf-8")  # blocked reading the pipe
        killed = time.monotonic()
        os.kill(command.pid, signal.SIGKILL)
        command.wait(timeout=30)
        wait_until(lambda: not _running(server), 10, f"the temporary server (pid {server}) to die")
        seconds = time.monotonic() - killed
        assert not _answers(started["api"])
        return seconds
    finally:
        stop(command)


@pytest.mark.integration
def test_a_killed_command_leaves_no_prefect_server(tmp_path: Path) -> None:
    """SIGKILL a command while its temporary server runs, five times: the server dies with it each time."""
    environment = _environment(
        tmp_path,
        MLOPS_DATA_SOURCE=str(_fifo(tmp_path)),
        MLOPS_CANDIDATE_FAMILIES="ridge",
        PREFECT_LOGGING_LEVEL="INFO",
    )
    seconds = [_kill_while_its_server_runs(environment, tmp_path / f"command-{n}.log") for n in range(5)]
    print(f"temporary server gone {', '.join(f'{s:.2f}' for s in seconds)} s after SIGKILL")  # noqa: T201


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory, tracking_uri: str) -> Iterator[PrefectServer]:
    """A real Prefect server with the project's deployments and a process worker."""
    home = tmp_path_factory.mktemp("command-faults")
    environment = {
        **_environment(home),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLOPS_CANDIDATE_FAMILIES": "ridge",
        "MLOPS_TUNING_TRIALS": "0",
        "MLOPS_DEPLOY_ON_PROMOTION": "false",
    }
    (home / "prefect").mkdir()
    server = PrefectServer(home / "prefect", environment)
    try:
        server.cli("work-pool", "create", "loopml-local", "--type", "process", cwd=PROJECT_ROOT)
        server.cli("deploy", "--all", cwd=PROJECT_ROOT)
        with server.worker("loopml-local", PROJECT_ROOT, home / "worker.log"):
            yield server
    finally:
        server.close()


def _watch(server: PrefectServer, deployment: str, *params: str) -> subprocess.CompletedProcess:
    """`prefect deployment run … --watch`, as typed at a wide terminal (rich wraps at the width)."""
    args = [PREFECT, "--no-prompt", "deployment", "run", deployment, "--watch", "--watch-timeout", "600"]
    for param in params:
        args += ["--param", param]
    return subprocess.run(
        args,
        env={**server.env, "COLUMNS": "1000"},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=660,
        check=False,
    )


def _last_run(server: PrefectServer, deployment: str) -> dict:
    deployment_id = server.api("GET", f"/deployments/name/{deployment}")["id"]
    return max(server.deployment_runs(deployment_id), key=lambda run: run["created"])


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            ["data_source={missing}"],
            (
                "cannot read {missing}: no such file "
                "(data: MLOPS_DATA_SOURCE or data_source; spec 'ames-housing': MLOPS_DATASET_SPEC or dataset)"
            ),
        ),
        (
            ["promotion_margin=-1"],
            "Invalid parameters: promotion_margin=-1.0: Input should be greater than or equal to 0",
        ),
    ],
)
def test_watch_shows_why_a_deployment_run_failed(
    prefect_server: PrefectServer, params: list[str], reason: str, tmp_path: Path
) -> None:
    missing = str(tmp_path / "missing.csv")
    completed = _watch(prefect_server, "train/default", *(param.format(missing=missing) for param in params))
    output = completed.stdout + completed.stderr
    line = reason.format(missing=missing)
    assert completed.returncode == 1, output
    assert re.search(rf"loopml\.flow-run\.permanent-error \* {re.escape(line)}\n", output), output
    assert output.rstrip().endswith("Flow run finished in state 'Failed'."), output
    state = _last_run(prefect_server, "train/default")["state"]
    assert (state["type"], state["name"], state["message"]) == ("FAILED", "Failed", line)
