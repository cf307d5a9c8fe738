"""The local server under faults and hostile clients: the real server, function process and CLI.

One server (`python -m deployments.local.serve`, short header and body timeouts) serves a deployed
Ames ridge champion for the module; each test attacks it as a crash, an operator or a hostile
client would, and checks what every client saw and what was logged.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deployments.lambda_package.function_artifact import build_function_zip
from deployments.local.local_servers import FUNCTION_VERSION_HEADER
from deployments.local.local_target import LocalDeployer
from tests.conftest import PROJECT_ROOT
from tests.support.processes import child_pids, free_port, http_json, stop, wait_until

pytestmark = pytest.mark.integration
MODEL = "ames-test"  # the name inside the `ames_bundle` metadata
HEADER_TIMEOUT = 1.0
MAX_CONNECTIONS = 40


@dataclass
class Served:
    """The server under test and what stands behind it."""

    url: str
    port: int
    process: subprocess.Popen
    deployer: LocalDeployer
    storage: Path
    example: dict
    home: Path
    environment: dict[str, str]

    def logged(self) -> list[Path]:
        return sorted((self.storage / "predictions").rglob("*.jsonl"))

    def function_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def function_pid(self) -> int:
        [pid] = self.function_pids()
        return pid


def _environment(home: Path, **extra: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")}
    return {**clean, "MLOPS_HOME": str(home), **extra}


def _start_server(home: Path, port: int, environment: dict[str, str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "deployments.local.serve", "--port", str(port), "--model", MODEL]
    command += ["--header-timeout", str(HEADER_TIMEOUT), "--body-timeout", "1"]
    command += ["--max-connections", str(MAX_CONNECTIONS)]
    with log.open("ab") as stream:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=stream, stderr=stream)
    try:
        wait_until(lambda: _serving(port, process), 60, "the server to serve")
    except BaseException:
        stop(process)
        raise
    del home
    return process


def _serving(port: int, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "the server exited"
    try:
        return http_json("GET", f"http://127.0.0.1:{port}/health", timeout=2)[0] == 200
    except OSError:
        return False


def second_version(bundle: Path, folder: Path, model_version: str) -> Path:
    """A copy of a bundle registered as another model version (so its zip differs)."""
    copy = folder / f"bundle-v{model_version}"
    shutil.copytree(bundle, copy)
    metadata = json.loads((copy / "metadata.json").read_text())
    (copy / "metadata.json").write_text(json.dumps({**metadata, "model_version": model_version}))
    return copy


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, ames_bundle: Path, session_home: Path
) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("serving-faults")
    home = root / "home"
    (home / "cache").mkdir(parents=True)
    (session_home / "layers").mkdir(exist_ok=True)
    (home / "cache" / "layers").symlink_to(session_home / "layers")  # built once per session
    storage = home / "storage"
    deployer = LocalDeployer(home, MODEL, storage.as_uri())
    example = json.loads((ames_bundle / "schema.json").read_text())["example"]
    deployer.deploy(build_function_zip(ames_bundle, root / "v1.zip"), example, "1")
    port = free_port()
    environment = _environment(home)
    process = _start_server(home, port, environment, root / "server.log")
    try:
        yield Served(f"http://127.0.0.1:{port}", port, process, deployer, storage, example, home, environment)
    finally:
        stop(process)


def _raw(port: int, request: bytes, *, timeout: float = 10) -> bytes:
    """Send bytes on a fresh connection and read until the server closes it (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
        connection.sendall(request)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except TimeoutError:
            pass
    return answer


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _json_body(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def _head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", *headers, "connection: close", "", ""]
    return "\r\n".join(lines).encode()


def _post(served: Served, body: bytes) -> tuple[int, dict]:
    return http_json("POST", f"{served.url}/predict", body)


def _health_version(served: Served) -> str | None:
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    connection.request("GET", "/health")
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.getheader(FUNCTION_VERSION_HEADER)


def test_a_killed_function_process_is_replaced_and_no_connection_is_dropped(served: Served) -> None:
    body = json.dumps(served.example).encode()
    outcomes: Counter[str] = Counter()
    after_kill: list[tuple[float, int]] = []
    killed_at: list[float] = []
    stop_clients = threading.Event()
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        while not stop_clients.is_set():
            try:
                connection.request("POST", "/predict", body, {"content-type": "application/json"})
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:  # a dropped connection
                status = type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
            with lock:
                outcomes[str(status)] += 1
                if killed_at:
                    after_kill.append((time.monotonic() - killed_at[-1], status))
        connection.close()

    clients = [threading.Thread(target=client) for _ in range(6)]
    for thread in clients:
        thread.start()

    def replaced(victim: int) -> bool:
        return served.function_pids() not in ([], [victim])

    def answered_since(count: int) -> bool:
        return [status for _, status in after_kill[count:]].count(200) >= 20

    try:
        for _ in range(3):
            wait_until(lambda: outcomes["200"] >= 50, 30, "traffic before the kill")
            victim = served.function_pid()
            with lock:
                after_kill.clear()
                killed_at.append(time.monotonic())
            os.kill(victim, signal.SIGKILL)
            wait_until(lambda v=victim: replaced(v), 30, "a new function process")
            seen = len(after_kill)
            wait_until(lambda n=seen: answered_since(n), 30, "answers from it")
            with lock:
                unavailable = sum(1 for _, status in after_kill if status == 503)
            assert unavailable <= len(clients)  # only the request in flight at the death, at most
            outcomes["200"] = 0
    finally:
        stop_clients.set()
        for thread in clients:
            thread.join(timeout=30)
    assert set(outcomes) <= {"200", "503"}, outcomes  # every request answered, none dropped


def test_a_broken_alias_never_stops_the_server_and_moves_are_reported_only_once_served(
    served: Served, ames_bundle: Path, tmp_path: Path
) -> None:
    live_file = served.deployer.live_file
    live_file.write_text('{"version": ')  # a half-written manual edit
    time.sleep(0.5)
    assert _post(served, json.dumps(served.example).encode())[0] == 200
    live_file.write_text('{"version": "99"}')
    time.sleep(0.5)
    assert _health_version(served) == "1"
    assert not (served.deployer.versions_dir / "99").exists()

    v2 = build_function_zip(second_version(ames_bundle, tmp_path, "2"), tmp_path / "v2.zip")
    result = served.deployer.deploy(v2, served.example, "2")
    assert result.function_version == "2"
    assert served.url in result.detail
    assert _health_version(served) == "2"  # at once: the deploy waited for this server

    for version in ("1", "2", "1"):
        moved = subprocess.run(
            [sys.executable, "-m", "deployments.targets.rollback", version, "--model", MODEL],
            cwd=PROJECT_ROOT,
            env=served.environment,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert moved.returncode == 0, moved.stderr
        first_line = moved.stdout.splitlines()[0]
        assert first_line.startswith(f"live -> version {version} ")
        assert f"answered by {served.url}" in first_line
        assert _health_version(served) == version


def test_numbers_far_outside_training_and_broken_text_get_a_4xx_and_are_not_logged(served: Served) -> None:
    before = served.logged()
    schema = http_json("GET", f"{served.url}/schema")[1]
    numeric = [feature["name"] for feature in schema["features"] if feature["type"] == "number"]
    status, error = _post(served, json.dumps({**served.example, "gr_liv_area": 3.4e38}).encode())
    assert (status, error["field"]) == (400, "gr_liv_area")
    assert "far outside the training range" in error["error"]
    huge = {**served.example, **dict.fromkeys(numeric, 3.4e38)}
    assert _post(served, json.dumps(huge).encode())[0] == 400
    status, error = _post(served, b'{"ms_zoning": "\\ud800"}')
    assert (status, error["field"]) == (400, "ms_zoning")
    assert "not valid Unicode" in error["error"]
    status, error = _post(served, b'{"\\udfff": 1}')
    assert status == 400
    assert "unknown field" in error["error"]
    assert served.logged() == before


def test_the_front_refuses_what_api_gateway_refuses(served: Served) -> None:
    before = served.logged()
    negative = _raw(served.port, _head("POST", "/predict", "content-length: -1") + b"x" * 1000)
    assert _status(negative) == 400
    assert _json_body(negative) == {"message": "Bad Request"}
    assert _status(_raw(served.port, _head("POST", "/predict", "content-length: abc"))) == 400
    # The body of an announced 60 MB request is never read: the answer comes before it is sent.
    huge = _raw(served.port, _head("POST", "/predict", "content-length: 60000000"))
    assert _status(huge) == 413
    assert _json_body(huge) == {"message": "Request Entity Too Large"}
    assert _status(_raw(served.port, _head("POST", "/predict"))) == 411
    for method, path in [("POST", "/etc/passwd/predict"), ("GET", "/predict"), ("OPTIONS", "/predict")]:
        answer = _raw(served.port, _head(method, path, "content-length: 2") + b"{}")
        assert (_status(answer), _json_body(answer)) == (404, {"message": "Not Found"}), (method, path)
    head = _raw(served.port, _head("HEAD", "/health"))
    assert _status(head) == 200
    assert head.endswith(b"\r\n\r\n")  # headers only

    body = json.dumps(served.example).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    answer = _raw(served.port, _head("POST", "/predict", "transfer-encoding: chunked") + chunked)
    assert _status(answer) == 200
    assert len(_json_body(answer)["predictions"]) == 1
    big_chunk = b"%x\r\n" % (7 * 1024 * 1024) + b" " * (7 * 1024 * 1024) + b"\r\n0\r\n\r\n"
    big = _raw(served.port, _head("POST", "/predict", "transfer-encoding: chunked") + big_chunk)
    assert _status(big) == 413

    # A client that announces more than it sends and leaves: nothing is predicted or logged.
    with socket.create_connection(("127.0.0.1", served.port)) as connection:
        connection.sendall(_head("POST", "/predict", f"content-length: {len(body) + 50}") + body)
    # 5 MB counted in bytes, not characters: 2.7 million two-byte characters are 5.4 MB.
    wide = json.dumps({**served.example, "ms_zoning": "é" * 2_700_000}, ensure_ascii=False).encode()
    status, error = _post(served, wide)
    assert status == 413
    assert "bytes" in error["error"]
    time.sleep(1.5)  # past the body timeout of the client that left
    new = [path for path in served.logged() if path not in before]
    assert len(new) == 1  # the chunked request only


def test_idle_and_slow_connections_are_closed_and_bounded(served: Served) -> None:
    idle = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(MAX_CONNECTIONS + 10)]
    try:
        answers = []
        for connection in idle:
            connection.settimeout(HEADER_TIMEOUT + 10)
            answer = b""
            while chunk := connection.recv(4096):
                answer += chunk
            answers.append(_status(answer))
        assert Counter(answers).keys() <= {408, 503}
        assert answers.count(503) >= 10  # the ones over the limit, refused at once
    finally:
        for connection in idle:
            connection.close()

    # A request head that trickles in a byte at a time is cut off, not held forever.
    with socket.create_connection(("127.0.0.1", served.port), timeout=HEADER_TIMEOUT + 10) as slow:
        started = time.monotonic()
        slow.sendall(b"POST /predict HTTP/1.1\r\n")
        answer = b""
        try:
            for byte in b"x-slow: " + b"a" * 100:
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        while chunk := slow.recv(4096):
            answer += chunk
        assert _status(answer) == 408
        assert time.monotonic() - started < HEADER_TIMEOUT + 5
    assert _post(served, json.dumps(served.example).encode())[0] == 200


def test_cors_preflight_is_answered_for_the_configured_origins(served: Served, tmp_path: Path) -> None:
    port = free_port()
    origin = "https://app.example.com"
    environment = _environment(served.home, MLOPS_API_CORS_ORIGINS=origin)
    process = _start_server(served.home, port, environment, tmp_path / "cors.log")
    try:
        asks = ("access-control-request-method: POST", "access-control-request-headers: content-type")
        preflight = _raw(port, _head("OPTIONS", "/predict", f"origin: {origin}", *asks))
        assert _status(preflight) == 204
        assert f"access-control-allow-origin: {origin}".encode() in preflight.lower()
        assert b"access-control-allow-methods: get,post,options" in preflight.lower()
        body = json.dumps(served.example).encode()
        length = f"content-length: {len(body)}"
        allowed = _raw(port, _head("POST", "/predict", f"origin: {origin}", length) + body)
        assert _status(allowed) == 200
        assert f"access-control-allow-origin: {origin}".encode() in allowed.lower()
        foreign = _raw(port, _head("OPTIONS", "/predict", "origin: https://evil.example", *asks))
        assert b"access-control-allow-origin" not in foreign.lower()
    finally:
        stop(process)


def test_a_repeated_request_id_never_overwrites_a_record(served: Served) -> None:
    from deployments.lambda_package.function_process import http_event

    body = json.dumps(served.example)
    with served.deployer.start_function("1") as function:
        first = function.invoke(http_event("POST", "/predict", body, request_id="same-id"))
        [logged] = [path for path in served.logged() if path.name == "same-id.jsonl"]
        content = logged.read_bytes()
        again = function.invoke(http_event("POST", "/predict", body, request_id="same-id"))
        dots = [function.invoke(http_event("POST", "/predict", body, request_id=id_)) for id_ in (".", "..")]
    assert first["statusCode"] == 200
    assert again["statusCode"] == 409
    assert "already used" in json.loads(again["body"])["error"]
    assert logged.read_bytes() == content
    assert [answer["statusCode"] for answer in dots] == [200, 409]  # both become "-"
    assert not [path for path in served.logged() if path.name.startswith(".")]
