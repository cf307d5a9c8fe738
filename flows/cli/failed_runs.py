"""A flow run stopped by a permanent error fails with its one line, where `--watch` shows it.

prefect 3.8.8's `prefect deployment run … --watch` prints each event of the run (the event's
name and its resource's name), the run's logs only if the server streams them
(`PREFECT_SERVER_LOGS_STREAM_OUT_ENABLED`, off by default), and at the end
`Flow run finished in state 'Failed'.`: the state's name, never its message. So the one line
goes to two places: the Failed state's message (the UI, `prefect flow-run inspect`, an
in-process caller's exception) and an event of the run, `loopml.flow-run.permanent-error`,
whose resource is named by the line, so `--watch` prints it just before the Failed event.
The state keeps the name `Failed`, since the `prefect.flow-run.Failed` event that automations
match is named after it.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from prefect.context import FlowRunContext
from prefect.events import emit_event
from prefect.events.worker import EventsWorker
from prefect.states import Failed, State

from tasks.core.errors import PERMANENT_ERRORS

PERMANENT_ERROR_EVENT = "loopml.flow-run.permanent-error"
DELIVERY_SECONDS = 10
Parameters = ParamSpec("Parameters")
Result = TypeVar("Result")


def announce(error: BaseException) -> None:
    """Emit the permanent-error event of the current flow run and wait until it is sent.

    `--watch` stops reading events at the run's terminal state, so this one must reach the
    server before the Failed state is proposed.
    """
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        return
    line = str(error)
    event = emit_event(
        event=PERMANENT_ERROR_EVENT,
        resource={
            "prefect.resource.id": f"loopml.flow-run.{context.flow_run.id}",
            "prefect.resource.name": line,
        },
        payload={"message": line, "error": type(error).__name__},
    )
    if event is not None:
        waiter = threading.Thread(target=EventsWorker.instance().wait_until_empty, daemon=True)
        waiter.start()
        waiter.join(timeout=DELIVERY_SECONDS)


def failed_state(error: BaseException) -> State:
    """The run's final state for a permanent error: `Failed`, with the error's line as message.

    Prefect makes a state returned by a flow its final state; a caller of the flow in the same
    process (a command, a parent flow) gets the error itself raised.
    """
    announce(error)
    return Failed(message=str(error), data=error)


def fails_in_one_line(body: Callable[Parameters, Result]) -> Callable[Parameters, Result]:
    """Wrap a flow's function (under `@flow`) so a permanent error ends the run in one line.

    The wrapper carries the function's signature with its annotations already evaluated:
    Prefect validates parameters against the types named there, and would otherwise look the
    names up in this module instead of the flow's.
    """

    @functools.wraps(body)
    def run(*args: Parameters.args, **kwargs: Parameters.kwargs) -> Result:
        try:
            return body(*args, **kwargs)
        except PERMANENT_ERRORS as error:
            return cast("Result", failed_state(error))

    run.__signature__ = inspect.signature(body, eval_str=True)  # type: ignore[attr-defined]
    return run
