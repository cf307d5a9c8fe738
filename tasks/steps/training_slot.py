"""One training run of a model at a time, any number of models side by side.

Each model has its own Prefect global concurrency limit, `train-<model>`, created with one
slot when it is missing (raise it in the UI, Concurrency, to allow more). A training run holds
the slot from its first task to its deploy, so a second run of the same model waits, while
runs of other models go ahead on the same worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

LIMIT_PREFIX = "train-"


def training_limit(model_name: str) -> str:
    """The name of a model's training concurrency limit."""
    return f"{LIMIT_PREFIX}{model_name}"


def ensure_training_limit(model_name: str) -> str:
    """Create the model's limit with one slot unless it exists (a limit set by hand is kept)."""
    name = training_limit(model_name)
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run of the model created it a moment ago
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    return name


@contextmanager
def training_slot(model_name: str) -> Iterator[None]:
    """Hold the model's training slot, waiting while another run of the same model holds it."""
    name = ensure_training_limit(model_name)
    logger = get_run_logger()
    logger.info("Taking the training slot %s (one training run of %s at a time)", name, model_name)
    with concurrency(name, occupy=1, strict=True, raise_on_lease_renewal_failure=False):
        logger.info("Holding %s", name)
        yield
