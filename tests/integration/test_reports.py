"""HTML reports agree with the verdict and name the model, its version and the window."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from evidently.core.report import Snapshot

from deployments.lambda_handler.contract import ACTUAL, PREDICTION
from monitoring.drift.report_html import report_html
from monitoring.drift.window_reports import DriftThresholds, build_drift_report, build_quality_report
from monitoring.publish.history import add_snapshot, project_id_for, workspace_url
from monitoring.verdict.decision import Evidence, Policy, decide
from tests.support.reports import (
    IMPORTANCE,
    SCHEMA,
    SUBJECT,
    TITLE_SPAN,
    counters,
    dashboard_widgets,
    data_texts,
    frame,
    page_data,
)

pytestmark = pytest.mark.integration

THRESHOLD = 0.15
WEIGHTED_ABOVE = {"x0": 1.0}  # weighted drift 58%, drifted share 12.5%
SHARE_ABOVE = {"x1": 1.0, "x2": 1.0}  # weighted drift 12%, drifted share 25%
CASES = {
    "weighted above, share below; verdict on weighted": (
        WEIGHTED_ABOVE,
        "weighted",
        "Drift is detected",
        (
            "Weighted drift (importance share of drifted inputs) 58.0% is above the threshold 15.0%"
            " (MLOPS_DRIFT_MEASURE=weighted)"
        ),
        ("Weighted drift (importance share of drifted features): Less or Equal 0.150", "fail"),
    ),
    "weighted above, share below; verdict on share": (
        WEIGHTED_ABOVE,
        "share",
        "Drift is NOT detected",
        "Drifted-input share 12.5% is within the threshold 15.0% (MLOPS_DRIFT_MEASURE=share)",
        ("Share of Drifted Columns: Less or Equal 0.150", "success"),
    ),
    "share above, weighted below; verdict on weighted": (
        SHARE_ABOVE,
        "weighted",
        "Drift is NOT detected",
        (
            "Weighted drift (importance share of drifted inputs) 12.0% is within the threshold 15.0%"
            " (MLOPS_DRIFT_MEASURE=weighted)"
        ),
        ("Weighted drift (importance share of drifted features): Less or Equal 0.150", "success"),
    ),
    "share above, weighted below; verdict on share": (
        SHARE_ABOVE,
        "share",
        "Drift is detected",
        "Drifted-input share 25.0% is above the threshold 15.0% (MLOPS_DRIFT_MEASURE=share)",
        ("Share of Drifted Columns: Less or Equal 0.150", "fail"),
    ),
}
DATASET_TESTS = ("Weighted drift (importance share", "Share of Drifted Columns")


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return frame(1000, {}, seed=1)


def _dataset_tests(tests_widget: dict) -> list[tuple[str, str]]:
    return [
        (test["title"], test["state"])
        for test in tests_widget["params"]["tests"]
        if test["title"].startswith(DATASET_TESTS)
    ]


def _stored_weighted_drift(storage: Path, snapshot_id: str) -> float:
    path = (
        storage / "evidently" / str(project_id_for(SUBJECT.model_name)) / "snapshots" / f"{snapshot_id}.json"
    )
    metrics = Snapshot.load(path).dict()["metrics"]
    (value,) = [m["value"] for m in metrics if m["config"]["type"] == "evidently:metric_v2:WeightedDrift"]
    return float(value)


@pytest.mark.parametrize("case", list(CASES))
def test_the_headline_and_the_one_dataset_test_are_the_verdicts(
    case: str, reference: pd.DataFrame, tmp_path: Path
) -> None:
    shifts, measure, headline_value, headline_label, dataset_test = CASES[case]
    window = frame(400, shifts, seed=2)
    thresholds = DriftThresholds(drift=THRESHOLD, measure=measure)
    snapshot, figures = build_drift_report(window, reference, SCHEMA, thresholds, SUBJECT, IMPORTANCE)
    assert (figures.weighted_drift > THRESHOLD) != (figures.drift_share > THRESHOLD)  # the measures disagree
    policy = Policy(min_rows=100, drift_measure=measure, drift_threshold=THRESHOLD, max_quality_drop=0.2)
    verdict = decide(Evidence(len(window), figures.drift_share, figures.weighted_drift), policy)
    assert verdict.status == ("drift" if headline_value == "Drift is detected" else "ok")

    page = tmp_path / "report.html"
    page.write_text(report_html(snapshot), encoding="utf-8")
    html = page.read_text("utf-8")
    assert "Dataset Drift is" not in html  # Evidently's own share headline is gone
    report, *results = dashboard_widgets(page)
    (tests,) = [widget for widget in results if widget["type"] == "test_suite"]
    title, headline = report["widgets"][:2]
    assert counters(title) == [("", f"Drift of {TITLE_SPAN}")]
    assert counters(headline)[0] == (headline_value, headline_label)
    assert _dataset_tests(tests) == [dataset_test]

    stored = snapshot.to_snapshot_model()
    assert stored.name == f"Drift of {TITLE_SPAN}"
    assert stored.tags == ["report-model", "v3"]
    assert stored.metadata == {
        "model_name": "report-model",
        "model_version": "3",
        "window_start": "2026-11-23T10:00:00+00:00",
        "window_end": "2026-11-24T10:00:00+00:00",
        "report": "Drift",
    }

    # The verdict's weighted drift is the dashboard's: one number, from the report's snapshot.
    storage = tmp_path / "storage"
    snapshot_id = add_snapshot(workspace_url(str(storage)), SUBJECT.model_name, snapshot)
    assert _stored_weighted_drift(storage, snapshot_id) == figures.weighted_drift


def test_the_live_quality_report_names_the_model_version_and_window(tmp_path: Path) -> None:
    holdout = frame(300, {}, seed=3)
    holdout["price"] = holdout[PREDICTION] + frame(300, {}, seed=4)["x0"] * 20_000
    labelled = frame(200, {}, seed=5)
    labelled[ACTUAL] = labelled[PREDICTION] * 1.1
    snapshot = build_quality_report(labelled, holdout, SCHEMA, SUBJECT)
    page = tmp_path / "quality.html"
    page.write_text(report_html(snapshot), encoding="utf-8")
    title = dashboard_widgets(page)[0]["widgets"][0]
    assert counters(title) == [("", f"Live quality of {TITLE_SPAN}")]
    assert snapshot.to_snapshot_model().metadata["report"] == "Live quality"
    assert snapshot.to_snapshot_model().tags == ["report-model", "v3"]


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _without_ids(item) for key, item in value.items() if key != "id"}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


def _drawn(html: str) -> list[Any]:
    """The page's dashboard and details graphs, in that order, without their per-render ids."""
    data = page_data(html)
    return [_without_ids(data[name]) for name in sorted(data, key=lambda name: name.startswith("additional"))]


def test_the_escaped_page_draws_what_evidentlys_own_page_draws(reference: pd.DataFrame) -> None:
    snapshot, _ = build_drift_report(
        frame(400, WEIGHTED_ABOVE, seed=2), reference, SCHEMA, DriftThresholds(), SUBJECT, IMPORTANCE
    )
    ours, evidentlys = report_html(snapshot), snapshot.get_html_str(as_iframe=False)
    assert ">=" in json.dumps(_drawn(evidentlys))  # a test description: "Actual value 0.580 >= 0.150"
    assert _drawn(ours) == _drawn(evidentlys)
    assert not set("<>&") & set("".join(data_texts(ours).values()))
