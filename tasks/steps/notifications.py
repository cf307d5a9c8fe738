"""Tell people about drift: a Prefect automation that sends the drift event to a notification block.

`python -m tasks.steps.notifications --block slack-webhook/drift-alerts` creates (or updates) the
automation `loopml drift notification`: whenever the monitor emits
`loopml.model.drift-detected`, the server sends the model, the reasons, the window and the
report link through that block (any Prefect notification block: Slack, Microsoft Teams,
e-mail, PagerDuty, a custom webhook). Create the block first, in the UI or in Python.
"""

from __future__ import annotations

import argparse

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.exceptions import ObjectNotFound
from prefect.utilities.asyncutils import run_coro_as_sync

from tasks.core.errors import UsageError, run_command
from tasks.steps.retrain_trigger import DRIFT_EVENT, MODEL_RESOURCE_PREFIX

AUTOMATION_NAME = "loopml drift notification"
SUBJECT = "Drift in {{ event.payload.model_name }} (champion v{{ event.payload.champion_version }})"
BODY = """\
The monitor found drift in {{ event.payload.model_name }}, \
served by champion v{{ event.payload.champion_version }}.
Why: {{ event.payload.reasons | join("; ") }}
Window: {{ event.payload.window_start }} to {{ event.payload.window_end }}
Drift report: {{ event.payload.report_link }}
One retraining run has been started; it deploys only if the new model beats the champion.
"""


def block_document_id(block: str) -> str:
    """The id of a saved block named `<block-type-slug>/<block-name>`."""
    block_type, _, name = block.partition("/")
    if not block_type or not name:
        msg = (
            f"--block must be <block-type-slug>/<block-name> (e.g. slack-webhook/drift-alerts), got {block!r}"
        )
        raise UsageError(msg)

    async def read() -> str:
        async with get_client() as client:
            document = await client.read_block_document_by_name(name=name, block_type_slug=block_type)
            return str(document.id)

    try:
        return str(run_coro_as_sync(read()))
    except ObjectNotFound:
        msg = f"no {block_type} block named {name!r} on this Prefect server; create it first (UI: Blocks)"
        raise UsageError(msg) from None


def drift_notification(block_id: str, model_pattern: str = "*") -> Automation:
    """The automation: each drift event of a matching model sends one notification."""
    return Automation(
        name=AUTOMATION_NAME,
        description=f"Sends every {DRIFT_EVENT} event to a notification block.",
        enabled=True,
        trigger=EventTrigger(
            match={"prefect.resource.id": f"{MODEL_RESOURCE_PREFIX}{model_pattern}"},
            expect={DRIFT_EVENT},
            posture=Posture.Reactive,
            threshold=1,
            within=0,
        ),
        actions=[SendNotification(block_document_id=block_id, subject=SUBJECT, body=BODY)],
    )


def ensure_drift_notification(block: str, model_pattern: str = "*") -> tuple[str, bool]:
    """Create the automation, or update the one with its name; its id and whether it was new."""
    wanted = drift_notification(block_document_id(block), model_pattern)
    try:
        current = Automation.read(name=AUTOMATION_NAME)
    except ValueError:
        return str(wanted.create().id), True
    wanted.id = current.id
    wanted.update()
    return str(current.id), False


def main(argv: list[str] | None = None) -> None:
    """Set up the drift notification on the Prefect server of PREFECT_API_URL."""
    parser = argparse.ArgumentParser(
        description="Notify people of drift through a Prefect notification block."
    )
    parser.add_argument(
        "--block", required=True, help="<block-type-slug>/<block-name>, e.g. slack-webhook/drift"
    )
    parser.add_argument(
        "--models", default="*", help="model names to notify about (a glob; default every model)"
    )
    args = parser.parse_args(argv)

    def run() -> None:
        automation_id, created = ensure_drift_notification(args.block, args.models)
        print(f"{'created' if created else 'updated'} automation {AUTOMATION_NAME!r} ({automation_id})")

    run_command(run)


if __name__ == "__main__":
    main()
