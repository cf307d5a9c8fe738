"""Tuning inside the training flow: each trial a Prefect task, each family's trials a table in MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prefect import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import FlowRunSort

from flows.training import train_model
from tasks.core.dataset_spec import DatasetSpec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]

FAMILIES = ["ridge", "lightgbm"]


def _trial_task_names() -> list[str]:
    """Names of the task runs of the latest `train` flow run."""
    with get_client(sync_client=True) as client:
        [latest] = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[latest.id])))
    return sorted(run.name for run in runs if run.name.startswith("trial-"))


def test_flow_tunes_each_family_and_logs_its_trials(
    mlops_env: Path, diabetes_csv: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_TUNING_TRIALS", "3")
    spec = DatasetSpec(name="diabetes-tuning", target="target", task="regression", drop=[], categorical=[])
    summary = train_model(str(diabetes_csv), spec, "diabetes-tuned", families=FAMILIES)
    assert summary.promoted

    assert _trial_task_names() == ["trial-lightgbm"] * 3 + ["trial-ridge"] * 3
    client = MlflowClient(tracking_uri)
    run = client.get_run(summary.run_id)
    assert {item.path for item in client.list_artifacts(summary.run_id, "tuning")} == {
        f"tuning/{family}.json" for family in FAMILIES
    }
    children = {
        child.data.params["family"]: child
        for child in client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{summary.run_id}'"
        )
    }
    for family in FAMILIES:
        path = client.download_artifacts(summary.run_id, f"tuning/{family}.json", str(mlops_env))
        table = pd.read_json(Path(path), orient="split")
        assert list(table["trial"]) == [0, 1, 2]
        assert {"state", "cv_rmse", "cv_rmsle", "seconds"} <= set(table.columns)
        assert (table["state"] == "complete").all()
        best = table.loc[table["cv_rmse"].idxmin()]
        child = children[family]
        assert child.data.metrics["cv_rmse"] == pytest.approx(best["cv_rmse"])
        assert child.data.metrics["tuning_trials"] == 3
        tuned = "alpha" if family == "ridge" else "num_leaves"
        assert float(child.data.params[tuned]) == pytest.approx(float(best[tuned]))
        assert json.loads(Path(path).read_text())["columns"][0] == "trial"
