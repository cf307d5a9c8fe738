"""Which failures are worth retrying, and how a user sees the ones that are not.

A permanent error (a data file that does not exist, a spec whose target is not in the file,
no champion yet) fails at once with one short message naming what to fix. Only errors that
can clear up by themselves (network trouble, throttling, a server's 5xx) are retried.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalError",
        "ProvisionedThroughputExceededException",
    }
)
RETRY_DELAYS = [2, 10]


class UserError(Exception):
    """A permanent error a user fixes (a file, a setting, a parameter); its message says what to fix."""


class NoChampionError(UserError, LookupError):
    """The model has no champion (or no such version) to deploy, score or monitor yet."""


class UsageError(UserError, ValueError):
    """A command or parameter asks for something that does not exist; the message says what does."""


# Bad data, a bad spec, bad settings or labels, no champion, an unknown version: all UserError.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (UserError,)


def _client_error_is_transient(error: BaseException) -> bool | None:
    """boto3/botocore, httpx and requests errors: transient when throttled, 5xx or a connection failure."""
    import botocore.exceptions
    import httpx
    import requests

    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in THROTTLING_CODES or status >= 500  # noqa: PLR2004
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code >= 500  # noqa: PLR2004
    transient = (
        botocore.exceptions.ConnectionError,
        botocore.exceptions.HTTPClientError,
        httpx.TransportError,
        requests.ConnectionError,
        requests.Timeout,
    )
    return True if isinstance(error, transient) else None


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same call later may succeed."""
    if isinstance(error, PERMANENT_ERRORS):
        return False
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    verdict = _client_error_is_transient(error)
    if verdict is not None:
        return verdict
    return getattr(error, "error_code", None) in {"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"}


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry a failed task run only for transient errors."""
    del task, task_run
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - the state's own exception, classified below
        return is_transient(error)
    return False


# Keyword arguments for `@task` where I/O happens: two retries, only for transient errors.
TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": retry_transient,
}


class _OneLinePermanentErrors(logging.Filter):
    """Drop the traceback from log records of permanent errors: their message says it all."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PERMANENT_ERRORS):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_permanent_errors() -> None:
    """Log permanent errors of flow and task runs as one line, without a traceback."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(item, _OneLinePermanentErrors) for item in logger.filters):
            logger.addFilter(_OneLinePermanentErrors())


def run_command(main: Callable[[], object]) -> None:
    """Run a command-line entry point; a permanent error prints one line and exits with 2."""
    quiet_permanent_errors()
    try:
        main()
    except PERMANENT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
