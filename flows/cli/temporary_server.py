"""A temporary Prefect server for a command run without one, which never outlives the command.

Called without `PREFECT_API_URL`, a flow makes prefect 3.8.8 start a temporary server itself
(`prefect.server.api.server.SubprocessASGIServer`: `python -m uvicorn` on Prefect's app) and stop
it from an `atexit` hook. A command killed with SIGKILL never runs that hook, and a start that
times out leaves its process behind, so the server would keep running. A command here starts
the same server itself, with the kernel told to kill it when the command's process dies
(`PR_SET_PDEATHSIG`, on Linux), and points its Prefect client at it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx
import prefect
from prefect.events.worker import EventsWorker
from prefect.logging import get_logger
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

from tasks.core.errors import UserError

Result = TypeVar("Result")
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
STOP_SECONDS = 10
START_ATTEMPTS = 3
logger = get_logger("temporary_server")


class TemporaryServerError(UserError, RuntimeError):
    """The temporary Prefect server did not come up; the message says how to run one instead."""


def _die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` making the kernel SIGKILL the child when this process dies (Linux only).

    The signal follows the thread that started the child: start it from the main thread, which
    lives as long as the process. libc is loaded here, before the fork.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the command died before the call: no signal would come
            os._exit(1)

    return preexec


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(port: int) -> list[str]:
    """The command prefect 3.8.8 runs for its temporary server (`SubprocessASGIServer`)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--app-dir",
        str(prefect.__module_path__.parent),
        "--factory",
        "prefect.server.api.server:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "error",
        "--lifespan",
        "on",
    ]


def _start(port: int) -> subprocess.Popen[bytes]:
    environment = {
        **os.environ,
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
        **get_current_settings().to_environment_variables(exclude_unset=True),
    }
    return subprocess.Popen(  # noqa: S603 - this interpreter running uvicorn on Prefect's app
        server_command(port),
        env=environment,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent(),  # noqa: PLW1509 - it only calls prctl, getppid and _exit
    )


def _answers(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=2).status_code == 200  # noqa: PLR2004
    except httpx.HTTPError:
        return False


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server: SIGTERM, then SIGKILL if it has not exited after a few seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _await_server(timeout: float) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server and wait until it answers; stopped again if it does not."""
    deadline = time.monotonic() + timeout
    for _attempt in range(START_ATTEMPTS):
        port = _free_port()
        process = _start(port)
        api_url = f"http://127.0.0.1:{port}/api"
        try:
            while process.poll() is None and time.monotonic() < deadline:
                if _answers(api_url):
                    return process, api_url
                time.sleep(0.2)
        except BaseException:
            stop(process)
            raise
        stop(process)  # time is up, or it exited: most likely the port was taken meanwhile
        if time.monotonic() >= deadline:
            break
    msg = (
        f"no temporary Prefect server came up within {timeout:.0f} s; raise "
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start a server "
        "(prefect server start) and set PREFECT_API_URL"
    )
    raise TemporaryServerError(msg)


@contextlib.contextmanager
def temporary_server() -> Iterator[str]:
    """Run a Prefect server on 127.0.0.1 for the block; yields its API URL.

    It uses the same database as `prefect server start` (under PREFECT_HOME), so the runs stay
    visible afterwards. Startup waits as long as Prefect's own
    (`PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`; 120 s in pyproject.toml).
    """
    process, api_url = _await_server(get_current_settings().server.ephemeral.startup_timeout_seconds)
    logger.info("Started a temporary Prefect server on %s (pid %d) for this command", api_url, process.pid)
    try:
        yield api_url
    finally:
        stop(process)


@contextlib.contextmanager
def prefect_api() -> Iterator[str]:
    """The Prefect API for the block: the configured one, or a temporary server of this command's own."""
    configured = PREFECT_API_URL.value()
    if configured:
        yield configured
        return
    with temporary_server() as api_url, temporary_settings(updates={PREFECT_API_URL: api_url}):
        try:
            yield api_url
        finally:
            _send_queued()


def _send_queued() -> None:
    """Send the run logs and events still queued, before the server stops (as Prefect's test harness does)."""
    APILogWorker.drain_all(timeout=STOP_SECONDS)
    EventsWorker.drain_all(timeout=STOP_SECONDS)


def run_flow(flow: Callable[..., Result], parameters: dict[str, Any]) -> Result:
    """Call a flow against the configured Prefect API, or a temporary server of this command's own."""
    with prefect_api():
        return flow(**parameters)
