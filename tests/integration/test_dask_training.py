"""The training flow on Dask worker processes picks the same champion as on threads.

`MLOPS_DASK_ADDRESS=local` makes each run start (and stop) its own cluster; a `tcp://`
address sends the tasks to a scheduler that is already running, here a two-process
cluster on 127.0.0.1 that the test starts and closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from flows.training import TrainingSummary, train_model
from tests.support.training import train_champion

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

FAMILIES = ["ridge", "random_forest"]
SAMPLE_ROWS = 800
# One batch of two tuning trials per family: seeded, so the same on threads and on Dask.
SMALL_RUN = {"MLOPS_IMPORTANCE_REPEATS": "1", "MLOPS_TUNING_TRIALS": "2"}


@pytest.fixture(scope="module")
def ames_sample(ames_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded sample of the Ames rows, to keep three training runs short."""
    path = tmp_path_factory.mktemp("ames-sample") / "ames.csv"
    pd.read_csv(ames_csv).sample(n=SAMPLE_ROWS, random_state=7).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def threads_champion(
    prefect_api: None, ames_sample: Path, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> TrainingSummary:
    """The champion of a run on Prefect's thread pool (no Dask address set)."""
    del prefect_api
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLOPS_DASK_ADDRESS", raising=False)
        for name, value in SMALL_RUN.items():
            patch.setenv(name, value)
        summary, _ = train_champion(
            tmp_path_factory.mktemp("threads"), tracking_uri, ames_sample, "ames-runner-threads", FAMILIES
        )
    return summary


@pytest.fixture
def dask_cluster() -> Iterator[LocalCluster]:
    """A running scheduler with two single-threaded worker processes, bound to 127.0.0.1."""
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    try:
        yield cluster
    finally:
        cluster.close()


def _assert_same_champion(summary: TrainingSummary, expected: TrainingSummary) -> None:
    assert summary.promoted, summary.reason
    assert summary.data_digest == expected.data_digest
    assert summary.family == expected.family
    assert summary.metrics == pytest.approx(expected.metrics, rel=1e-9)


def test_local_cluster_of_two_processes_picks_the_threads_champion(
    mlops_env: Path, ames_sample: Path, threads_champion: TrainingSummary, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**SMALL_RUN, "MLOPS_DASK_ADDRESS": "local"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLOPS_DASK_WORKERS", "2")
    summary = train_model(str(ames_sample), model_name="ames-runner-local", families=FAMILIES)
    _assert_same_champion(summary, threads_champion)


def test_scheduler_address_runs_the_candidates_on_that_cluster(
    mlops_env: Path,
    ames_sample: Path,
    threads_champion: TrainingSummary,
    dask_cluster: LocalCluster,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    address = dask_cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    for name, value in {**SMALL_RUN, "MLOPS_DASK_ADDRESS": address}.items():
        monkeypatch.setenv(name, value)
    summary = train_model(str(ames_sample), model_name="ames-runner-tcp", families=FAMILIES)
    _assert_same_champion(summary, threads_champion)
    assert {"score_trial_task", "fit_candidate_task"} <= set(dask_cluster.scheduler.task_prefixes)
