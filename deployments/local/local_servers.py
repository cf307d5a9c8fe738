"""The local servers that follow a model's `live` alias, so a deploy can check that they moved.

Each `python -m deployments.local.serve` registers itself while it runs, as
`<deployments>/<model>/servers/<pid>.json`. A deploy or rollback that moves `live` then waits
until every registered server's `GET /health` answers the new function version, and reports
success only then. Entries whose process is gone are removed when seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tasks.core.errors import UserError

FOLLOW_TIMEOUT_SECONDS = 30.0  # a cold start on a busy machine, with room to spare
FUNCTION_VERSION_HEADER = "x-function-version"  # which local version answered, on every answer


class ServerLagError(UserError, RuntimeError):
    """`live` moved, but a running local server still answers another version."""


@dataclass(frozen=True)
class RunningServer:
    """A registered local server: its address and process."""

    url: str
    pid: int
    entry: Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def answered_version(url: str, timeout: float = 2.0) -> str | None:
    """The function version that answers a server's `GET /health`, or None if none answers."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as response:  # noqa: S310 - our server
            return response.headers.get(FUNCTION_VERSION_HEADER)
    except OSError:
        return None


class ServerRegistry:
    """The registered servers of one model's local function."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def register(self, url: str) -> Path:
        """Record this process as a server at `url`; returns the entry to remove on exit."""
        self.folder.mkdir(parents=True, exist_ok=True)
        entry = self.folder / f"{os.getpid()}.json"
        partial = entry.with_suffix(".partial")
        partial.write_text(json.dumps({"url": url, "pid": os.getpid()}), encoding="utf-8")
        partial.replace(entry)
        return entry

    def servers(self) -> list[RunningServer]:
        """The servers whose process still runs (stale entries are removed)."""
        found = []
        for entry in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                record = json.loads(entry.read_text("utf-8"))
                server = RunningServer(str(record["url"]), int(record["pid"]), entry)
            except (OSError, ValueError, KeyError, TypeError):
                server = None
            if server is None or not _alive(server.pid):
                with contextlib.suppress(OSError):
                    entry.unlink()
                continue
            found.append(server)
        return found

    def wait_for(self, function_version: str, timeout: float = FOLLOW_TIMEOUT_SECONDS) -> list[str]:
        """Wait until every running server answers `function_version`; their addresses.

        A server that stops meanwhile is dropped; one that still answers another version (or
        nothing) when the time is up fails the wait with one line naming it.
        """
        pending = {server.url: server for server in self.servers()}
        following: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            for url, server in list(pending.items()):
                if answered_version(url) == function_version:
                    following.append(url)
                    del pending[url]
                elif not _alive(server.pid):
                    del pending[url]
            if not pending:
                return sorted(following)
            if time.monotonic() > deadline:
                url = next(iter(pending))
                answered = answered_version(url)
                state = f"still answers version {answered}" if answered else "does not answer"
                msg = (
                    f"live now points to version {function_version}, but the server at {url} "
                    f"(pid {pending[url].pid}) {state} after {timeout:.0f} s; see that server's log"
                )
                raise ServerLagError(msg)
            time.sleep(0.1)
