"""Drift retrains through the training flow: the data policies and the gate's recent check.

The champion learned `y = 100 - 10 (x1 + x2 + x3)`, the world production traffic follows now.
The retrain's source data follow the old rule, `y = 100 + 10 (x1 + x2 + x3)`: a candidate
fitted mostly on them wins the holdout (mostly source rows) and loses on the newest traffic.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowFilter,
    FlowFilterName,
)
from prefect.client.schemas.sorting import FlowRunSort

from flows.training import TrainingSummary, train_model
from monitoring.labels.commands import upload_labels
from tasks.core.dataset_spec import DatasetSpec
from tasks.registry.model_registry import fetch_bundle
from tests.support.handler import load_handler
from tests.support.traffic import send

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
MODEL = "recent-gate"
FEATURES = ["x1", "x2", "x3", "x4", "x5"]
SPEC = DatasetSpec(
    name="toy-shift", target="y", task="regression", features=FEATURES, drop=[], categorical=[]
)
DATED_SPEC = SPEC.model_copy(update={"time_column": "sold_on"})
SOURCE_ROWS, PRODUCTION_ROWS, RECENT_ROWS = 400, 100, 20  # 20% of the production rows


def _rows(rows: int, sign: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame["y"] = 100 + sign * 10 * frame[["x1", "x2", "x3"]].sum(axis=1) + rng.normal(size=rows)
    return frame


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, tracking_uri: str) -> Iterator[dict[str, object]]:
    """A champion of the new rule, 100 labelled production rows it served, and old-rule source data."""
    home = tmp_path_factory.mktemp("recent-gate")
    new_rule, old_rule = home / "new-rule.csv", home / "old-rule.csv"
    _rows(300, -1.0, seed=1).to_csv(new_rule, index=False)
    today = pd.Timestamp.now(tz="UTC").normalize()
    days = np.repeat(np.arange(SOURCE_ROWS // 2), 2)  # two source rows a day, up to 199 days back
    source = _rows(SOURCE_ROWS, 1.0, seed=2).assign(sold_on=(today - pd.to_timedelta(days, unit="D")))
    source.assign(sold_on=source["sold_on"].dt.strftime("%Y-%m-%d")).to_csv(old_rule, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        patch.setenv("MLOPS_DEPLOY_ON_PROMOTION", "false")
        patch.setenv("MLOPS_RECENT_HOLDOUT_MIN_ROWS", "10")
        # The policy's windows are recorded on the champion, and its retrains use them.
        patch.setenv("MLOPS_RETRAIN_RECENT_DAYS", "50")
        patch.setenv("MLOPS_RECENCY_HALF_LIFE_DAYS", "20")
        champion = train_model(str(new_rule), SPEC, MODEL, families=["ridge"])
        assert champion.promoted
        bundle, _ = fetch_bundle(tracking_uri, MODEL, None, home / "bundle")
        app: ModuleType = load_handler(bundle, home / "storage")
        traffic = _rows(PRODUCTION_ROWS, -1.0, seed=3)
        sent_from = datetime.now(UTC)
        answers = send(app, traffic[FEATURES].to_dict("records"), per_request=1)
        sent_until = datetime.now(UTC)
        labels = pd.DataFrame({"request_id": [a["request_id"] for a in answers], "actual": traffic["y"]})
        upload_labels(labels, (home / "storage").as_uri(), MODEL, "regression")
        yield {"source": old_rule, "dates": source["sold_on"], "sent": (sent_from, sent_until)}


def _retrain(
    world: dict[str, object], spec: DatasetSpec, **parameters: object
) -> tuple[TrainingSummary, Run]:
    summary = train_model(
        str(world["source"]), spec, MODEL, ["ridge"], reason="drift", production_hours=1, **parameters
    )
    return summary, MlflowClient().get_run(summary.run_id)


def _promotion_artifact() -> str:
    """The markdown of the newest training run's promotion artifact."""
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        [artifact] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(like_="promotion-"),
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]),
            )
        )
    return str(artifact.data)


@pytest.fixture
def env(world: dict[str, object], mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("MLOPS_HOME", str(Path(str(world["source"])).parent))
    monkeypatch.setenv("MLOPS_RECENT_HOLDOUT_MIN_ROWS", "10")
    return world


def test_a_holdout_winner_that_loses_on_recent_traffic_stays_a_candidate(env: dict[str, object]) -> None:
    summary, run = _retrain(env, SPEC)

    assert not summary.promoted
    assert "beats champion v1" in summary.reason
    assert f"on the {RECENT_ROWS} newest production rows it loses to the champion" in summary.reason
    metrics, params = run.data.metrics, run.data.params
    assert metrics["rmse"] < metrics["champion_rmse"]  # the candidate wins the usual holdout
    assert metrics["recent_rmse"] > 3 * metrics["champion_recent_rmse"]  # and loses the recent slice
    assert metrics["recent_rows"] == RECENT_ROWS
    assert run.data.tags["recent_check"] == "failed"
    assert run.data.tags["promoted"] == "false"
    assert (params["retrain_data"], params["production_rows"]) == ("all", str(PRODUCTION_ROWS))
    assert params["rows_used"] == str(SOURCE_ROWS + PRODUCTION_ROWS - RECENT_ROWS)
    decision = json.loads(
        Path(MlflowClient().download_artifacts(run.info.run_id, "promotion.json")).read_text()
    )
    assert decision["recent"] == {
        "rows": RECENT_ROWS,
        "candidate_score": pytest.approx(metrics["recent_rmse"]),
        "champion_score": pytest.approx(metrics["champion_recent_rmse"]),
        "note": "",
        "passed": False,
    }

    markdown = _promotion_artifact()
    assert markdown.startswith("# Keeping the champion")
    assert f"| rmse | same holdout | {RECENT_ROWS} newest production rows |" in markdown
    candidate = f"| candidate (ridge) | {metrics['rmse']:.6g} | {metrics['recent_rmse']:.6g} |"
    champion = f"| champion (v1) | {metrics['champion_rmse']:.6g} | {metrics['champion_recent_rmse']:.6g} |"
    assert candidate in markdown
    assert champion in markdown


@pytest.mark.parametrize("policy", ["recent", "weighted"])
def test_the_data_policy_chooses_the_rows_of_a_drift_retrain(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    monkeypatch.setenv("MLOPS_RETRAIN_RECENT_DAYS", "7")  # the worker's settings: the champion's record wins
    # a margin no candidate reaches keeps the champion for the other tests of this module
    summary, run = _retrain(env, DATED_SPEC, promotion_margin=0.99, retrain_data=policy)

    assert not summary.promoted
    params = run.data.params
    sent_from, sent_until = env["sent"]  # type: ignore[misc]
    newest = datetime.fromisoformat(params["retrain_window_end"])
    assert sent_from <= newest <= sent_until  # ages count from the newest row: the last logged request
    assert params["retrain_data"] == policy
    assert params["recent_rows"] == str(RECENT_ROWS)
    production_used = PRODUCTION_ROWS - RECENT_ROWS
    dates: pd.Series = env["dates"]  # type: ignore[assignment]
    if policy == "recent":
        start = datetime.fromisoformat(params["retrain_window_start"])
        assert params["retrain_recent_days"] == "50.0"
        assert (newest - start).days == 50
        assert params["rows_used"] == str(int((dates >= start).sum()) + production_used)
        assert 98 <= int((dates >= start).sum()) <= 100  # two rows a day
    else:
        assert params["recency_half_life_days"] == "20.0"
        assert params["rows_used"] == str(SOURCE_ROWS + production_used)
    assert run.data.tags["recent_check"] in {"passed", "failed"}
    assert "champion_recent_rmse" in run.data.metrics
