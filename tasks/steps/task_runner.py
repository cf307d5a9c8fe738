"""Where the training flow's tasks run: threads, or a Dask cluster, chosen from the settings at run time."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self

from prefect import Task, get_client, get_run_logger
from prefect.client.schemas.objects import RunInput
from prefect.futures import PrefectFuture
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.core.settings import Settings, load_settings

LOCAL_CLUSTER = "local"


def task_runner_for(settings: Settings, api_url: str | None = None) -> TaskRunner[Any]:
    """Threads when `MLOPS_DASK_ADDRESS` is unset, else Dask: a new local cluster or the named scheduler.

    Local workers get `api_url` as `PREFECT_API_URL`, so their task runs report to the flow's
    Prefect API even when that is a temporary one, instead of each starting its own.
    """
    address = settings.dask_address
    if address is None:
        return ThreadPoolTaskRunner()
    from prefect_dask.task_runners import DaskTaskRunner

    if address != LOCAL_CLUSTER:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": settings.dask_workers or os.cpu_count() or 1,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": None,
            "env": {"PREFECT_API_URL": api_url} if api_url else {},
        },
    )


def runner_description(settings: Settings) -> str:
    """Where `task_runner_for(settings)` runs tasks, in words for the run log."""
    if settings.dask_address is None:
        return "threads of the flow's process"
    if settings.dask_address == LOCAL_CLUSTER:
        workers = settings.dask_workers or os.cpu_count() or 1
        return f"a local Dask cluster of {workers} worker processes"
    return f"the Dask scheduler at {settings.dask_address}"


class ConfiguredTaskRunner(TaskRunner[PrefectFuture[Any]]):
    """Runs tasks on `task_runner_for(load_settings())`, started at a run's first submission.

    Prefect starts a duplicate of a flow's runner for each run (deployment, command line or
    subflow), so the choice follows the environment of the process running the flow. Choosing
    at the first submission, not at start, lets a Dask worker restore a task's flow context
    without reading settings of its own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._runner: TaskRunner[Any] | None = None
        self._stack = ExitStack()
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[Self], tuple[()]]:
        """Pickle as a fresh, unstarted runner (flows travel to Dask workers inside task contexts)."""
        return type(self), ()

    def duplicate(self) -> Self:
        """A new runner that chooses again when its run first submits."""
        return type(self)()

    def submit(
        self,
        task: Task[Any, Any],
        parameters: dict[str, Any],
        wait_for: Iterable[PrefectFuture[Any]] | None = None,
        dependencies: dict[str, set[RunInput]] | None = None,
    ) -> PrefectFuture[Any]:
        """Submit to the configured runner, starting it first if this is the run's first task."""
        future: PrefectFuture[Any] = self._configured().submit(task, parameters, wait_for, dependencies)
        return future

    def _configured(self) -> TaskRunner[Any]:
        if not self._started:
            msg = "The task runner must be started before submitting work."
            raise RuntimeError(msg)
        with self._lock:
            if self._runner is None:
                settings = load_settings()
                with get_client(sync_client=True) as client:
                    api_url = str(client.api_url)
                self._runner = self._stack.enter_context(task_runner_for(settings, api_url))
                get_run_logger().info("Tasks run on %s", runner_description(settings))
            return self._runner

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self._stack.__exit__(exc_type, exc_value, traceback)
        finally:
            self._runner = None
            self._stack = ExitStack()
            super().__exit__(exc_type, exc_value, traceback)
