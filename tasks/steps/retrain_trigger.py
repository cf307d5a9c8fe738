"""Tasks that start a retrain on a drift verdict: at most one per model, never during its cooldown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from monitoring.publish.drift_event import DRIFT_EVENT, DriftEvent
from monitoring.verdict.retrain_guard import GuardDecision, check_guard, last_trigger, record_trigger
from tasks.core.settings import Settings
from tasks.steps.step import step

MODEL_RESOURCE_PREFIX = "loopml.model."  # the drift event's resource: this plus the model name


def retrain_in_flight(model_name: str, default_model: str) -> int:
    """Training runs of this model that are running, pending, or scheduled and already due.

    A run's model is its `model_name` parameter, or `default_model` (the settings' model) for
    runs without one, such as a calendar schedule's; runs of other models do not count.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]
                    )
                )
            ),
        )
    now = datetime.now(UTC)
    due = [
        run
        for run in runs
        if (run.parameters.get("model_name") or default_model) == model_name
        and (run.state_type != StateType.SCHEDULED or (run.expected_start_time or now) <= now)
    ]
    return len(due)


def retrain_mode(settings: Settings) -> str:
    """`event` with a Prefect server (its automation starts the deployment), else `inline`."""
    if settings.retrain_mode != "auto":
        return settings.retrain_mode
    from prefect.settings import get_current_settings

    return "event" if get_current_settings().api.url else "inline"


@step
def guard_retrain(
    settings: Settings, model_name: str, now: datetime, *, ignore_cooldown: bool = False
) -> GuardDecision:
    """Check the model's cooldown (unless a manual run says to ignore it) and its runs in flight."""
    cooldown = timedelta(hours=0 if ignore_cooldown else settings.retrain_cooldown_hours)
    in_flight = retrain_in_flight(model_name, settings.model_name)
    return check_guard(last_trigger(settings.storage, model_name), now, cooldown, in_flight)


@step
def emit_drift_event(drift: DriftEvent) -> str | None:
    """Emit the drift event; the `train` deployment's trigger starts one training run."""
    from prefect.events import emit_event

    event = emit_event(
        event=DRIFT_EVENT,
        resource={
            "prefect.resource.id": f"{MODEL_RESOURCE_PREFIX}{drift.model_name}",
            "prefect.resource.name": drift.model_name,
        },
        payload=drift.model_dump(mode="json"),
    )
    return None if event is None else str(event.id)


@step
def record_retrain(settings: Settings, model_name: str, now: datetime, detail: dict[str, Any]) -> None:
    """Remember when the retrain started, for the cooldown."""
    record_trigger(settings.storage, model_name, now, detail)
