"""The training flow's task runner follows MLOPS_DASK_ADDRESS, read when a run starts submitting."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import pytest
from prefect import task
from prefect.task_runners import ThreadPoolTaskRunner
from prefect_dask import DaskTaskRunner

from flows.training import train_model
from tasks.core.settings import SettingsError, load_settings
from tasks.steps.task_runner import ConfiguredTaskRunner, runner_description, task_runner_for


@task
def _double(value: int) -> int:
    return 2 * value


def test_threads_unless_a_dask_address_is_set(mlops_env: Path) -> None:
    settings = load_settings()
    assert isinstance(task_runner_for(settings), ThreadPoolTaskRunner)
    assert runner_description(settings) == "threads of the flow's process"


def test_local_starts_single_threaded_worker_processes_on_loopback(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_DASK_ADDRESS", "local")
    monkeypatch.setenv("MLOPS_DASK_WORKERS", "3")
    settings = load_settings()
    runner = task_runner_for(settings, "http://127.0.0.1:4200/api")
    assert isinstance(runner, DaskTaskRunner)
    assert runner.address is None
    assert runner.cluster_class == "distributed.LocalCluster"
    assert runner.cluster_kwargs == {
        "n_workers": 3,
        "threads_per_worker": 1,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "env": {"PREFECT_API_URL": "http://127.0.0.1:4200/api"},
    }
    assert runner_description(settings) == "a local Dask cluster of 3 worker processes"


def test_a_scheduler_address_connects_to_it(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    runner = task_runner_for(load_settings())
    assert isinstance(runner, DaskTaskRunner)
    assert runner.address == "tcp://10.0.0.5:8786"
    assert runner.cluster_kwargs == {}


@pytest.mark.parametrize("value", ["tcp://", "http//x", "local cluster", "10.0.0.5"])
def test_a_malformed_address_names_the_variable(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MLOPS_DASK_ADDRESS", value)
    with pytest.raises(SettingsError, match=f"MLOPS_DASK_ADDRESS={value!r}"):
        load_settings()


def test_an_empty_address_means_threads(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_DASK_ADDRESS", " ")
    assert load_settings().dask_address is None


def test_the_flow_chooses_per_run_and_pickles_unstarted() -> None:
    template = train_model.task_runner
    assert isinstance(template, ConfiguredTaskRunner)
    copy = template.duplicate()
    assert isinstance(copy, ConfiguredTaskRunner)
    assert copy is not template
    restored = cloudpickle.loads(cloudpickle.dumps(train_model))
    assert isinstance(restored.task_runner, ConfiguredTaskRunner)
    with copy:
        started_copy = cloudpickle.loads(cloudpickle.dumps(copy))
    assert isinstance(started_copy, ConfiguredTaskRunner)
    assert not started_copy._started


def test_submitting_outside_a_run_is_refused() -> None:
    with pytest.raises(RuntimeError, match="must be started"):
        ConfiguredTaskRunner().submit(_double, {"value": 1})
