"""At most one retraining of a model at a time, and none again within its cooldown.

The state lives in storage (`monitoring/<model>/retrain-state.json`), so every monitor
process, local or scheduled, sees the same last trigger time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitoring.logs.window import parse_time
from tasks.core.storage import filesystem, join_url, write_bytes


@dataclass(frozen=True)
class GuardDecision:
    """Whether a retrain may start now, and why not when it may not."""

    allowed: bool
    reason: str


def state_url(storage_url: str, model_name: str) -> str:
    """Where the last retrain trigger of a model is recorded."""
    return join_url(storage_url, "monitoring", model_name, "retrain-state.json")


def last_trigger(storage_url: str, model_name: str) -> dict[str, Any] | None:
    """The recorded last trigger, or None."""
    fs, path = filesystem(state_url(storage_url, model_name))
    try:
        state: dict[str, Any] = json.loads(fs.cat_file(path))
    except FileNotFoundError:
        return None
    except ValueError:
        return None  # an unreadable state file must not block retraining forever
    return state


def check_guard(
    last: dict[str, Any] | None, now: datetime, cooldown: timedelta, runs_in_flight: int
) -> GuardDecision:
    """Refuse while a training run is in flight or the last trigger is within the cooldown."""
    if runs_in_flight:
        return GuardDecision(
            allowed=False, reason=f"{runs_in_flight} training run(s) of this model already in flight"
        )
    if last is not None:
        since = now - parse_time(last["triggered_at"])
        if since < cooldown:
            left = cooldown - since
            return GuardDecision(
                allowed=False, reason=f"cooldown: last retrain started {since} ago, next allowed in {left}"
            )
    return GuardDecision(allowed=True, reason="no training in flight and the cooldown has passed")


def record_trigger(storage_url: str, model_name: str, now: datetime, detail: dict[str, Any]) -> None:
    """Record that a retrain was started now."""
    payload = {"triggered_at": now.isoformat(), **detail}
    write_bytes(state_url(storage_url, model_name), json.dumps(payload, indent=2).encode())
