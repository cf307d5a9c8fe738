"""The local function behind `live`: it follows the alias and replaces a crashed process.

A watcher polls the alias. When a deploy moves it, the new version is started (cold start)
while the old one keeps answering, then requests switch over and the old process stops once
its request in flight is done. When the process dies (killed, out of memory, a crash in
native code), it is started again, as Lambda replaces a crashed instance: the request it was
answering gets a 503, requests after it wait for the new process. Restarts are bounded
(`RestartBudget`), so a version that dies at once is not restarted in a tight loop. An alias
that cannot be read never stops the server: it keeps serving what it served and logs why.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from deployments.lambda_package.function_process import (
    FunctionCrashedError,
    FunctionError,
    FunctionStoppedError,
    LocalFunction,
)
from deployments.local.local_target import LiveAliasError, LocalDeployer

logger = logging.getLogger("deployments.local.serve")


class UnavailableError(RuntimeError):
    """No function process can answer right now; the client may retry (503)."""


@dataclass
class RestartBudget:
    """At most `limit` restarts in any `period_seconds`."""

    limit: int = 5
    period_seconds: float = 60.0
    _times: deque[float] = field(default_factory=deque)

    def take(self) -> bool:
        """Use one restart if the budget has one left."""
        now = time.monotonic()
        while self._times and now - self._times[0] > self.period_seconds:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True


@dataclass(frozen=True)
class _Running:
    version: str
    function: LocalFunction


class LiveFunction:
    """The running function for the version behind `live`."""

    def __init__(
        self, deployer: LocalDeployer, poll_seconds: float = 0.2, budget: RestartBudget | None = None
    ) -> None:
        self.deployer = deployer
        self.poll_seconds = poll_seconds
        self.budget = budget or RestartBudget()
        self._current: _Running | None = None
        self._starting = threading.Lock()  # one start (alias move or restart) at a time
        self._stop = threading.Event()
        self._problem: str | None = None
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="live-alias-watcher", daemon=True)
        self._watcher.start()

    @property
    def version(self) -> str | None:
        """The version now answering requests."""
        current = self._current
        return current.version if current else None

    def _report(self, problem: str | None) -> None:
        """Log a problem once, not on every poll; and say when it cleared."""
        if problem != self._problem:
            if problem:
                logger.warning("%s; still serving version %s", problem, self.version or "none")
            elif self._problem:
                logger.info("recovered: serving version %s", self.version)
            self._problem = problem

    def refresh(self) -> None:
        """Serve the version `live` names, and restart the process if it died."""
        try:
            wanted = self.deployer.live_version()
        except LiveAliasError as error:
            self._report(str(error))
            wanted = self.version
        current = self._current
        if wanted is not None and wanted != self.version:
            self._start(wanted, replacing=current)
        elif current is not None and not current.function.alive:
            self._start(current.version, replacing=current)

    def _start(self, version: str, replacing: _Running | None) -> bool:
        """Start a version in place of `replacing`; False when it cannot (and why is logged)."""
        with self._starting:
            if self._current is not replacing:
                return True  # another thread already replaced it
            restart = replacing is not None and replacing.version == version
            if restart and not self.budget.take():
                self._report(f"version {version} keeps dying; no restart until the budget allows")
                return False
            try:
                function = self.deployer.start_function(version)
            except (FunctionError, OSError, LookupError) as error:
                self._report(f"version {version} failed to start: {error}")
                return False
            self._current = _Running(version, function)
        what = "restarted" if restart else "serving"
        logger.info("%s version %s (cold start %.3fs)", what, version, function.cold_start_seconds)
        self._report(None)
        if replacing is not None:
            replacing.function.close()
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # the watcher outlives anything one poll runs into
                logger.exception("live alias watcher: unexpected error; still watching")

    def invoke(self, event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The version that answered an event and its answer, or None when nothing is deployed.

        An event that never reached a process (it had stopped, or was retired by a swap)
        goes to its replacement; one whose process died while answering is not resent, since
        it may have been logged: it raises `UnavailableError`.
        """
        for _ in range(3):
            current = self._current
            if current is None:
                return None
            try:
                return current.version, current.function.invoke(event)
            except FunctionStoppedError as error:
                if self._current is current and not self._start(current.version, replacing=current):
                    msg = f"the function process stopped and could not be restarted ({error})"
                    raise UnavailableError(msg) from None
            except FunctionCrashedError as error:
                threading.Thread(target=self.refresh, name="function-restart", daemon=True).start()
                msg = f"the function process died while answering ({error}); retry the request"
                raise UnavailableError(msg) from None
        msg = "the function kept changing during the request; retry it"
        raise UnavailableError(msg)

    def close(self) -> None:
        """Stop watching and stop the running function."""
        self._stop.set()
        self._watcher.join(timeout=2)
        with self._starting:
            current, self._current = self._current, None
        if current is not None:
            current.function.close()
