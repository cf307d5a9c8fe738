"""Monitoring history: custom Evidently metrics, snapshots in a workspace, and the UI serving them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from evidently import DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.metrics import RowCount
from evidently.metrics.column_statistics import ValueDriftCalculation
from evidently.presets import DataDriftPreset

from monitoring.drift.drift_metrics import MonitorValue, WeightedDrift
from monitoring.publish.history import add_snapshot, dashboard_panels, project_id_for, workspace_url
from tests.support.history_ui import data_series, history_ui
from tests.support.processes import http_json

pytestmark = pytest.mark.integration

MODEL = "history-test"
BUCKET = "loopml-history"
NUMERIC, CATEGORICAL = ["a", "b"], ["c"]
COLUMNS = [*NUMERIC, *CATEGORICAL]
IMPORTANCE = {"a": 0.5, "b": 0.3, "c": 0.2}
DRIFT = {
    "num_method": "wasserstein",
    "cat_method": "jensenshannon",
    "num_threshold": 0.2,
    "cat_threshold": 0.2,
}
ESTIMATED = [31000.0, 33500.0, 40250.0]
LIVE = [30000.0, 35000.0, 42000.0]
DOMAIN_AUC = [0.51, 0.62, 0.97]
ROWS = [1000, 1200, 1400]
SHIFTS = [0.0, 0.15, 0.9]


def _frame(rows: int, shift: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    letters = rng.choice(["x", "y", "z"], rows, p=[0.8, 0.1, 0.1] if shift else [1 / 3, 1 / 3, 1 / 3])
    return pd.DataFrame({"a": rng.normal(shift, 1, rows), "b": rng.normal(0, 1, rows), "c": letters})


def _dataset(frame: pd.DataFrame) -> Dataset:
    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    return Dataset.from_pandas(frame, data_definition=definition)


def _run(current: pd.DataFrame, reference: pd.DataFrame, index: int, timestamp: datetime) -> Snapshot:
    report = Report(
        [
            DataDriftPreset(columns=COLUMNS, drift_share=0.3, **DRIFT),
            WeightedDrift(columns=COLUMNS, importance=IMPORTANCE, **DRIFT),
            MonitorValue(name="estimated_rmse", value=ESTIMATED[index]),
            MonitorValue(name="live_rmse", value=LIVE[index]),
            MonitorValue(name="domain_classifier_auc", value=DOMAIN_AUC[index]),
            RowCount(),
        ],
        include_tests=True,
    )
    return report.run(_dataset(current), _dataset(reference), timestamp=timestamp)


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return _frame(1500, 0.0, seed=1)


@pytest.fixture(scope="module")
def windows() -> list[pd.DataFrame]:
    """Three windows: no shift, a small one, a large one (drift in `a` and `c`)."""
    return [
        _frame(rows, shift, seed=10 + i) for i, (rows, shift) in enumerate(zip(ROWS, SHIFTS, strict=True))
    ]


@pytest.fixture(scope="module")
def snapshots(windows: list[pd.DataFrame], reference: pd.DataFrame) -> list[Snapshot]:
    start = datetime.now() - timedelta(days=len(windows) - 1)  # noqa: DTZ005 - Evidently's own timestamps are naive
    return [_run(window, reference, i, start + timedelta(days=i)) for i, window in enumerate(windows)]


def _metrics(snapshot: Snapshot, kind: str) -> list[dict]:
    return [m for m in snapshot.dict()["metrics"] if m["config"]["type"] == f"evidently:metric_v2:{kind}"]


def test_weighted_drift_is_the_importance_share_of_drifted_columns(snapshots: list[Snapshot]) -> None:
    for snapshot in snapshots:
        drifts = {m["config"]["column"]: m for m in _metrics(snapshot, "ValueDrift")}
        drifted = [c for c in COLUMNS if drifts[c]["value"] >= drifts[c]["config"]["threshold"]]
        expected = sum(IMPORTANCE[c] for c in drifted) / sum(IMPORTANCE.values())
        (weighted,) = _metrics(snapshot, "WeightedDrift")
        assert weighted["value"] == pytest.approx(expected)
        assert "importance" not in weighted["config"]  # per-model weights would split the dashboard line
    values = [_metrics(s, "WeightedDrift")[0]["value"] for s in snapshots]
    assert values[0] == 0.0
    assert values[-1] == pytest.approx(0.7)  # `a` and `c` drifted, `b` did not


def test_weighted_drift_reuses_the_presets_value_drift(
    windows: list[pd.DataFrame], reference: pd.DataFrame, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    computed: list[str] = []
    calculate = ValueDriftCalculation.calculate

    def counted(self: ValueDriftCalculation, *args: object) -> object:
        computed.append(self.metric.column)
        return calculate(self, *args)

    monkeypatch.setattr(ValueDriftCalculation, "calculate", counted)
    snapshot = _run(windows[-1], reference, 2, datetime.now())  # noqa: DTZ005
    assert sorted(computed) == sorted(COLUMNS)
    snapshot.save_html(str(tmp_path / "report.html"))
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "Weighted drift (importance share of drifted features)" in html
    assert "estimated_rmse" in html


def test_weighted_drift_refuses_p_value_methods(windows: list[pd.DataFrame], reference: pd.DataFrame) -> None:
    metric = WeightedDrift(columns=NUMERIC, importance=IMPORTANCE, num_method="ks")
    with pytest.raises(ValueError, match="distance method"):
        Report([metric]).run(_dataset(windows[0]), _dataset(reference))


def test_monitor_value_is_one_metric_whatever_its_value(snapshots: list[Snapshot]) -> None:
    assert MonitorValue(name="live_rmse", value=1.0).get_fingerprint() == (
        MonitorValue(name="live_rmse", value=2.0).get_fingerprint()
    )
    assert MonitorValue(name="live_rmse", value=1.0).get_fingerprint() != (
        MonitorValue(name="estimated_rmse", value=1.0).get_fingerprint()
    )
    stored = [
        {k: v for k, v in m["config"].items() if k != "tests"}
        for s in snapshots
        for m in _metrics(s, "MonitorValue")
    ]
    assert {json.dumps(c, sort_keys=True) for c in stored} == {
        json.dumps({"type": "evidently:metric_v2:MonitorValue", "name": name}, sort_keys=True)
        for name in ("estimated_rmse", "live_rmse", "domain_classifier_auc")
    }


def _numbers(value: object) -> Iterator[float]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, float):
        yield value


def _check_served(base: str, ids: list[str], snapshots: list[Snapshot]) -> None:
    """One project, its snapshots, its panels, and one series per panel line across the windows."""
    status, listed = http_json("GET", f"{base}/api/projects")
    assert status == 200
    assert [(p["name"], p["id"]) for p in listed] == [(MODEL, str(project_id_for(MODEL)))]
    project = listed[0]["id"]
    status, runs = http_json("GET", f"{base}/api/projects/{project}/snapshots")
    assert status == 200
    assert sorted(run["id"] for run in runs) == sorted(ids)
    status, served = http_json("GET", f"{base}/api/v2/dashboards/{project}")
    assert status == 200
    assert sorted(p["title"] for p in served["panels"]) == sorted(p.title for p in dashboard_panels("rmse"))
    assert [len(tab["panels"]) for tab in served["tabs"]] == [len(served["panels"])]

    monitor = "evidently:metric_v2:MonitorValue"
    assert data_series(base, project, monitor, {"name": "live_rmse"}) == [LIVE]
    assert data_series(base, project, monitor, {"name": "estimated_rmse"}) == [ESTIMATED]
    assert data_series(base, project, monitor, {"name": "domain_classifier_auc"}) == [DOMAIN_AUC]
    assert data_series(base, project, "evidently:metric_v2:RowCount") == [[float(r) for r in ROWS]]
    weighted = [_metrics(s, "WeightedDrift")[0]["value"] for s in snapshots]
    assert data_series(base, project, "evidently:metric_v2:WeightedDrift") == [weighted]
    shares = [_metrics(s, "DriftedColumnsCount")[0]["value"]["share"] for s in snapshots]
    assert data_series(base, project, "evidently:metric_v2:DriftedColumnsCount", {"value_type": "share"}) == [
        shares
    ]


def test_snapshots_land_in_one_local_project_without_rows_and_the_ui_serves_them(
    snapshots: list[Snapshot], windows: list[pd.DataFrame], reference: pd.DataFrame, tmp_path: Path
) -> None:
    storage = (tmp_path / "storage").as_uri()
    ids = [add_snapshot(workspace_url(storage), MODEL, snapshot) for snapshot in snapshots]
    assert len(set(ids)) == 3

    root = tmp_path / "storage" / "evidently"
    assert [p.name for p in root.iterdir()] == [str(project_id_for(MODEL))]
    project = root / str(project_id_for(MODEL))
    assert sorted(f.name for f in project.iterdir()) == ["dashboard.json", "metadata.json", "snapshots"]
    assert sorted(f.stem for f in (project / "snapshots").iterdir()) == sorted(ids)
    dashboard = json.loads((project / "dashboard.json").read_text(encoding="utf-8"))
    assert sorted(p["title"] for p in dashboard["panels"]) == sorted(
        p.title for p in dashboard_panels("rmse")
    )

    for snapshot_id, window in zip(ids, windows, strict=True):
        stored = set(_numbers(json.loads((project / "snapshots" / f"{snapshot_id}.json").read_text("utf-8"))))
        for frame in (window, reference):
            for column in NUMERIC:
                # Histogram edges hold each column's minimum and maximum; no other value of a row.
                assert stored & set(frame[column]) <= {frame[column].min(), frame[column].max()}

    with history_ui(storage, tmp_path) as base:
        _check_served(base, ids, snapshots)


def test_snapshots_on_s3_and_the_ui_serves_them(
    moto_endpoint: str, snapshots: list[Snapshot], tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    storage = f"s3://{BUCKET}/prod"
    ids = [add_snapshot(workspace_url(storage), MODEL, snapshot) for snapshot in snapshots]

    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="prod/evidently/")["Contents"]}
    folder = f"prod/evidently/{project_id_for(MODEL)}"
    snapshot_keys = {f"{folder}/snapshots/{snapshot_id}.json" for snapshot_id in ids}
    assert keys == {f"{folder}/metadata.json", f"{folder}/dashboard.json", *snapshot_keys}
    with history_ui(storage, tmp_path) as base:
        _check_served(base, ids, snapshots)


def test_the_dashboard_gains_the_metric_panel_once_a_snapshot_names_the_metric(tmp_path: Path) -> None:
    frame = _frame(50, 0.0, seed=3)
    workspace = workspace_url(str(tmp_path))

    def figures(*values: MonitorValue) -> Snapshot:
        return Report([RowCount(), *values]).run(_dataset(frame), None)

    add_snapshot(workspace, MODEL, figures())
    add_snapshot(workspace, MODEL, figures(MonitorValue(name="estimated_roc_auc", value=0.81)))
    add_snapshot(workspace, MODEL, figures(MonitorValue(name="live_roc_auc", value=0.8)))
    dashboard = json.loads(
        (tmp_path / "evidently" / str(project_id_for(MODEL)) / "dashboard.json").read_text()
    )
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert sorted(titles) == sorted(panel.title for panel in dashboard_panels("roc_auc"))
    assert "Estimated and live roc_auc" in titles
    (metric_panel,) = (
        panel for panel in dashboard["panels"] if panel["title"] == "Estimated and live roc_auc"
    )
    assert [v["metric_labels"] for v in metric_panel["values"]] == [
        {"name": "estimated_roc_auc"},
        {"name": "unreliable_estimated_roc_auc"},
        {"name": "live_roc_auc"},
    ]
