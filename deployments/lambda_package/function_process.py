"""Run a function artifact in its own Python process, as a Lambda container would.

The child starts with `-I -S`: no site-packages, no PYTHONPATH, nothing from this project.
Only the unpacked function zip and the layers are on `sys.path`, so a dependency missing
from the artifact fails here exactly as it would on Lambda.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any, Self

from deployments.lambda_package.function_artifact import HANDLER

_BOOTSTRAP = r"""
import importlib, json, sys, types, uuid
handler_path, code_dir, *layers = sys.argv[1:]
sys.path[:0] = [code_dir, *layers]
protocol = sys.stdout
sys.stdout = sys.stderr  # the function's own prints go to the log stream, as on Lambda
module_name, function_name = handler_path.rsplit(".", 1)
try:
    handler = getattr(importlib.import_module(module_name), function_name)
except BaseException as error:
    protocol.write(json.dumps({"ready": False, "error": f"{type(error).__name__}: {error}"}) + "\n")
    protocol.flush()
    sys.exit(1)
protocol.write(json.dumps({"ready": True}) + "\n")
protocol.flush()
for line in sys.stdin:
    context = types.SimpleNamespace(aws_request_id=str(uuid.uuid4()))
    try:
        reply = {"ok": True, "response": handler(json.loads(line), context)}
    except BaseException as error:
        reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    protocol.write(json.dumps(reply) + "\n")
    protocol.flush()
"""


class FunctionError(RuntimeError):
    """The function failed to start or raised instead of answering."""


class FunctionStoppedError(FunctionError):
    """The process was not running: the event was never delivered, so it can go to a new one."""


class FunctionCrashedError(FunctionError):
    """The process died while answering: the event may have been partly handled."""


def unpack_artifact(artifact: Path, destination: Path) -> Path:
    """Unzip a function artifact once into a folder and return it.

    The zip is opened before anything is created, and unpacked beside the destination first:
    a missing artifact leaves no folder behind, and a reader never sees half a tree.
    """
    marker = destination / ".unpacked"
    if marker.is_file():
        return destination
    with zipfile.ZipFile(artifact) as archive:
        staging = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}."))
        archive.extractall(staging)
    (staging / marker.name).write_text(artifact.name, encoding="utf-8")
    if destination.exists() and not marker.is_file():
        shutil.rmtree(destination)  # left half-written by an older, interrupted unpack
    try:
        staging.rename(destination)
    except OSError:  # another process unpacked it first
        shutil.rmtree(staging, ignore_errors=True)
    return destination


class LocalFunction:
    """One warm container: a child process that answers events one at a time."""

    def __init__(
        self,
        code_dir: Path,
        layer_dirs: list[Path],
        environment: dict[str, str],
        *,
        handler: str = HANDLER,
        log_file: Path | None = None,
    ) -> None:
        self.code_dir = code_dir
        self._lock = threading.Lock()
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", **environment}
        self._log = log_file.open("ab") if log_file else subprocess.DEVNULL
        started = time.perf_counter()
        self._process = subprocess.Popen(  # noqa: S603 - our interpreter and our bootstrap
            [sys.executable, "-I", "-S", "-c", _BOOTSTRAP, handler, str(code_dir), *map(str, layer_dirs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            text=True,
            bufsize=1,
        )
        ready = self._read() or {"error": f"process exited with {self._process.wait()}"}
        self.cold_start_seconds = time.perf_counter() - started
        if not ready.get("ready"):
            self.close()
            msg = f"function in {code_dir} failed to start: {ready.get('error', 'no answer')}"
            raise FunctionError(msg)

    def _read(self) -> dict[str, Any] | None:
        """The next protocol line, or None when the process has exited."""
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        return json.loads(line) if line else None

    @property
    def alive(self) -> bool:
        """Whether the process is running."""
        return self._process.poll() is None

    @property
    def pid(self) -> int:
        """The process id of the function's process."""
        return self._process.pid

    def invoke(self, event: Any) -> dict[str, Any]:
        """Send one event and return the handler's answer.

        `FunctionStoppedError` means the event never reached a running process;
        `FunctionCrashedError` that the process died while it had the event.
        """
        with self._lock:
            if self._process.poll() is not None:
                msg = f"function process is not running (exit code {self._process.returncode})"
                raise FunctionStoppedError(msg)
            assert self._process.stdin is not None
            try:
                self._process.stdin.write(json.dumps(event) + "\n")
                self._process.stdin.flush()
            except (OSError, ValueError) as error:  # a broken pipe, or a stream closed by a swap
                msg = f"function process is not running ({type(error).__name__})"
                raise FunctionStoppedError(msg) from None
            try:
                reply = self._read()
            except ValueError as error:  # not a protocol line: the process cannot be trusted
                self._process.kill()
                msg = f"function process answered garbage ({error})"
                raise FunctionCrashedError(msg) from None
            if reply is None:
                msg = f"function process died while answering (exit code {self._process.wait()})"
                raise FunctionCrashedError(msg)
        if not reply.get("ok"):
            raise FunctionError(reply.get("error", "no answer"))
        return reply["response"]

    def close(self) -> None:
        """Stop the process once any request in flight has finished."""
        with self._lock:
            if self._process.stdin and not self._process.stdin.closed:
                self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout:
                self._process.stdout.close()
            if self._log is not subprocess.DEVNULL:
                self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_event(
    method: str,
    path: str,
    body: str | None = None,
    request_id: str | None = None,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    source_ip: str = "127.0.0.1",
    base64_body: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event (header names lower-cased, as the gateway does)."""
    headers = headers or {"content-type": "application/json"}
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {
            key.lower(): value for key, value in (headers or {"content-type": "application/json"}).items()
        },
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip},
            "requestId": request_id or uuid.uuid4().hex,
            "timeEpoch": int(time.time() * 1000),
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }
