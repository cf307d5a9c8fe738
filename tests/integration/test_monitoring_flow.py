"""The monitoring flow on real logs, a real MLflow store and the Prefect test API."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName

from flows.monitor import monitor_model
from monitoring.drift.report_html import read_html
from monitoring.labels.commands import upload_labels
from tests.support.handler import load_handler, logged_files
from tests.support.history_ui import data_series, history_ui
from tests.support.processes import http_json
from tests.support.traffic import reference_traffic, send, shifted
from tests.support.training import monitor_settings, ridge_champion

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
MODEL = "ames-monitor"
MONITOR_VALUE = "evidently:metric_v2:MonitorValue"


@pytest.fixture(scope="module")
def champion(
    ames_csv: Path, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A registered Ames champion (ridge: quick) and its bundle."""
    return ridge_champion(tmp_path_factory, tracking_uri, ames_csv, MODEL)


@pytest.fixture
def storage(
    champion: tuple[Path, Path], mlops_env: Path, ames_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    return monitor_settings(
        monkeypatch,
        champion[0],
        mlops_env / "storage",
        MODEL,
        MLOPS_DATA_SOURCE=str(ames_csv),
        MLOPS_RETRAIN_MODE="inline",
        MLOPS_CANDIDATE_FAMILIES="ridge,random_forest",
    )


@pytest.fixture
def app(champion: tuple[Path, Path], storage: Path) -> ModuleType:
    return load_handler(champion[1], storage)


def _schema(champion: tuple[Path, Path]) -> dict:
    return json.loads((champion[1] / "schema.json").read_text())


def test_window_without_logs_gives_no_verdict(storage: Path) -> None:
    summary = monitor_model()
    assert summary.verdict.status == "no_verdict"
    assert summary.rows == 0
    assert "only 0 rows" in summary.verdict.reasons[0]
    assert summary.report_url is None
    assert summary.retrain == "not needed"
    assert Path(summary.figures_url.removeprefix("file://")).is_file()


def test_corrupt_objects_are_quarantined_and_the_report_still_made(
    app: ModuleType, champion: tuple[Path, Path], storage: Path
) -> None:
    instances, _ = reference_traffic(champion[1], 150, seed=1)
    send(app, instances, per_request=3)
    folder = logged_files(storage)[0].parent
    (folder / "garbage.jsonl").write_text('{"request_id": "x", "row": 0, "timest\nnot json at all\n')
    (folder / "cut.jsonl").write_bytes(logged_files(storage)[0].read_bytes()[:-25])
    summary = monitor_model()
    assert summary.rows == 150 + 2  # the cut copy keeps its intact lines
    assert summary.bad_lines == 3
    assert summary.bad_objects == 1
    assert Path(summary.quarantine_url.removeprefix("file://")).is_file()
    assert summary.report_url.endswith(".html.gz")
    assert 100_000 < Path(summary.report_url.removeprefix("file://")).stat().st_size < 2_000_000
    assert summary.verdict.status == "ok"


def test_traffic_like_training_data_does_not_retrain(
    app: ModuleType, champion: tuple[Path, Path], storage: Path, tracking_uri: str
) -> None:
    # holdout rows: unseen in training, like live traffic, so the estimate can be checked against them
    instances, actuals = reference_traffic(champion[1], 300, seed=2, sample="holdout.parquet")
    answers = send(app, instances, per_request=1)
    upload_labels(
        pd.DataFrame({"request_id": [a["request_id"] for a in answers], "actual": actuals}),
        storage.as_uri(),
        MODEL,
        "regression",
    )
    summary = monitor_model()
    assert summary.verdict.status == "ok", summary.verdict
    assert (summary.model_version, summary.served_versions) == ("1", {"1": 1.0})
    assert summary.live_version is None  # served in process here: nothing is deployed on the target
    assert summary.report_link.startswith("http://127.0.0.1:8765/ames-monitor/")
    assert summary.report_link.endswith(".html.gz")
    assert summary.drift_share < 0.15
    assert summary.retrain == "not needed"
    assert summary.labelled_rows == 300
    assert 0 < summary.live_metrics["rmse"] < 60_000
    # labels arrived: the estimate sits beside the realized metric, with its error
    # every row is labelled here, so the estimate on the labelled rows is the window's estimate
    assert summary.estimation_error["rmse"] == pytest.approx(
        summary.estimated_metrics["rmse"] - summary.live_metrics["rmse"]
    )
    assert abs(summary.estimation_error["rmse"]) < 0.3 * summary.live_metrics["rmse"]
    assert Path(summary.quality_report_url.removeprefix("file://")).is_file()
    figures = json.loads(Path(summary.figures_url.removeprefix("file://")).read_text())
    assert figures["verdict"]["status"] == "ok"
    for field in ("drift_share", "weighted_drift", "estimated_metrics", "live_metrics", "estimation_error"):
        assert figures[field] == json.loads(summary.model_dump_json())[field]
    assert figures["excluded_features"] == ["yr_sold", "mo_sold"]
    run = MlflowClient(tracking_uri).search_runs(
        [MlflowClient(tracking_uri).get_experiment_by_name(MODEL).experiment_id],
        "tags.kind = 'monitoring'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    assert run.data.metrics["drift_share"] == pytest.approx(summary.drift_share)
    assert run.data.metrics["live_rmse"] == pytest.approx(summary.live_metrics["rmse"])
    # traffic like the reference: the domain classifier barely tells it from the holdout
    assert run.data.metrics["domain_classifier_auc"] == pytest.approx(summary.domain_classifier_auc)
    assert summary.domain_classifier_auc < 0.7
    assert run.data.metrics["estimate_reliable"] == 1.0
    assert run.data.tags["model_version"] == summary.model_version


def test_quality_is_estimated_before_any_label_arrives(
    app: ModuleType, champion: tuple[Path, Path], storage: Path
) -> None:
    instances, _ = reference_traffic(champion[1], 200, seed=4)
    send(app, instances, per_request=4)
    summary = monitor_model(retrain_mode="off")
    assert summary.labelled_rows == 0
    assert summary.live_metrics == {}
    assert summary.estimation_error == {}
    holdout_rmse = json.loads((champion[1] / "metadata.json").read_text())["metrics"]["rmse"]
    # traffic like the training data: the estimate (DLE) is near the holdout's RMSE
    assert 0.5 * holdout_rmse < summary.estimated_metrics["rmse"] < 1.5 * holdout_rmse
    assert "estimated quality within" in summary.verdict.reasons[0]


def _importance(champion: tuple[Path, Path]) -> dict[str, float]:
    return json.loads((champion[1] / "importance.json").read_text())["shares"]


def test_the_bundles_importance_weights_the_drift_verdict(
    app: ModuleType, champion: tuple[Path, Path], storage: Path
) -> None:
    importance = _importance(champion)
    assert set(importance) == {feature["name"] for feature in _schema(champion)["features"]}
    assert sum(importance.values()) == pytest.approx(1.0)
    top = max(importance, key=importance.__getitem__)
    assert importance[top] > 0.15  # enough on its own to pass the default threshold
    instances, _ = reference_traffic(champion[1], 300, seed=5)
    answers = send(app, [{**item, top: item[top] * 2} for item in instances if top in item], per_request=5)
    assert answers

    weighted = monitor_model(retrain_mode="off")
    assert [item["column"] for item in weighted.drifted_features] == [top]
    assert weighted.drifted_features[0]["importance"] == pytest.approx(importance[top], rel=0.05)
    assert weighted.drift_share < 0.05  # one input of 79
    assert weighted.weighted_drift == pytest.approx(weighted.drifted_features[0]["importance"])
    assert weighted.verdict.status == "drift"
    assert "weighted drift" in weighted.verdict.reasons[0]

    share = monitor_model(retrain_mode="off", drift_measure="share")
    assert share.weighted_drift == pytest.approx(weighted.weighted_drift)
    assert share.verdict.status == "ok", share.verdict


def test_monitor_exclude_keeps_an_input_out_of_the_verdict(
    app: ModuleType, champion: tuple[Path, Path], storage: Path
) -> None:
    instances, _ = reference_traffic(champion[1], 300, seed=6)
    send(app, [{**item, "yr_sold": 2030, "mo_sold": 1} for item in instances], per_request=5)
    summary = monitor_model(retrain_mode="off")
    assert summary.excluded_features == ["yr_sold", "mo_sold"]
    assert "yr_sold" not in [item["column"] for item in summary.drifted_features]
    assert summary.verdict.status == "ok", summary.verdict
    report = read_html(summary.report_url)
    assert "yr_sold" in report  # still monitored and shown


def _training_runs() -> list:
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])))
    return [
        run
        for run in runs
        if run.parameters.get("model_name") == MODEL and run.parameters.get("reason") == "drift"
    ]


def test_shifted_traffic_retrains_once_over_three_monitor_runs(
    app: ModuleType, champion: tuple[Path, Path], storage: Path, tracking_uri: str
) -> None:
    instances, actuals = reference_traffic(champion[1], 300, seed=3)
    answers = send(app, shifted(instances, _schema(champion), 1.6), per_request=2)
    request_ids = [a["request_id"] for a in answers for _ in a["predictions"]]
    rows = [row for a in answers for row in range(len(a["predictions"]))]
    upload_labels(
        pd.DataFrame({"request_id": request_ids, "row": rows, "actual": actuals}),
        storage.as_uri(),
        MODEL,
        "regression",
    )
    before = len(_training_runs())

    first, second, third = (monitor_model() for _ in range(3))
    assert first.verdict.status == "drift"
    assert first.drift_share > 0.3
    assert first.drifted_features[0]["score"] >= first.drifted_features[-1]["score"]
    assert first.retrain.startswith("retrained in this process")
    for later in (second, third):
        assert later.verdict.status == "drift"
        assert later.retrain.startswith("not started: cooldown")
    assert len(_training_runs()) == before + 1

    client = MlflowClient(tracking_uri)
    retrain = client.search_runs(
        [client.get_experiment_by_name(MODEL).experiment_id],
        "params.trigger = 'drift'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )[0]
    # the labelled traffic within the spec's row_bounds: sizes x1.6 put some houses above 4,000 sq ft
    within = sum(
        item["gr_liv_area"] is None or item["gr_liv_area"] <= 4000
        for item in shifted(instances, _schema(champion), 1.6)
    )
    assert 0 < 300 - within < 60
    assert retrain.data.params["production_rows"] == str(within)
    contexts = {inp.tags[0].value for inp in retrain.inputs.dataset_inputs}
    assert contexts == {"training", "production"}
    assert retrain.data.tags["promoted"] in {"true", "false"}
    assert retrain.data.tags["promotion_reason"]

    # each run added its snapshot to the Evidently workspace; the UI plots the three windows
    with history_ui(str(storage), storage.parent) as base:
        status, projects = http_json("GET", f"{base}/api/projects")
        assert status == 200
        assert [project["name"] for project in projects] == [MODEL]
        project = projects[0]["id"]
        status, snapshots = http_json("GET", f"{base}/api/projects/{project}/snapshots")
        assert (status, len(snapshots)) == (200, 3)
        summaries = (first, second, third)
        assert data_series(base, project, "evidently:metric_v2:WeightedDrift") == [
            [pytest.approx(s.weighted_drift) for s in summaries]
        ]
        # estimates cover the compared version's rows: none once a promoted retrain is the champion
        assert first.estimated_metrics["rmse"] > 0
        for later in (second, third):
            assert bool(later.estimated_metrics) == (later.model_version == first.model_version)
            assert bool(later.live_metrics) == (later.model_version == first.model_version)
        # a reliable estimate and one marked unreliable are charted as separate series
        estimated = [s for s in summaries if s.estimated_metrics]
        for name, reliable in (("estimated_rmse", True), ("unreliable_estimated_rmse", False)):
            values = [
                pytest.approx(s.estimated_metrics["rmse"])
                for s in estimated
                if s.estimate_reliable == reliable
            ]
            assert data_series(base, project, MONITOR_VALUE, {"name": name}) == ([values] if values else [])
        domain = [pytest.approx(s.domain_classifier_auc) for s in estimated]
        assert data_series(base, project, MONITOR_VALUE, {"name": "domain_classifier_auc"}) == [domain]
        live = [pytest.approx(s.live_metrics["rmse"]) for s in summaries if s.live_metrics]
        assert len(live) == len(estimated)
        assert data_series(base, project, MONITOR_VALUE, {"name": "live_rmse"}) == [live]
