"""An unreliable estimate shows as such: snapshot values, dashboard series, summary JSON and markdown."""

from __future__ import annotations

from datetime import UTC, datetime

from monitoring.publish.history import dashboard_panels
from monitoring.publish.summary import MonitoringSummary, summary_markdown
from monitoring.quality.figures import QualityFigures
from monitoring.verdict.decision import Verdict

REASON = "the holdout re-weighted towards the window keeps 12 effective rows of 270"


def _figures(*, reliable: bool) -> QualityFigures:
    return QualityFigures(
        estimated={"rmse": 34000.0},
        live={},
        estimation_error={},
        estimated_drop=0.3,
        live_drop=None,
        domain_auc=0.93,
        estimate_reliable=reliable,
        estimate_unreliable_reasons=[] if reliable else [REASON],
    )


def test_snapshot_values_keep_an_unreliable_estimate_in_its_own_series() -> None:
    assert _figures(reliable=True).window_values() == {
        "estimated_rmse": 34000.0,
        "domain_classifier_auc": 0.93,
        "estimate_reliable": 1.0,
    }
    assert _figures(reliable=False).window_values() == {
        "unreliable_estimated_rmse": 34000.0,
        "domain_classifier_auc": 0.93,
        "estimate_reliable": 0.0,
    }
    charted = {
        value.metric_labels.get("name")
        for panel in dashboard_panels("rmse")
        for value in panel.values
        if value.metric.endswith("MonitorValue")
    }
    assert {"unreliable_estimated_rmse", "domain_classifier_auc", "estimate_reliable"} <= charted


def _summary(*, reliable: bool) -> MonitoringSummary:
    return MonitoringSummary(
        model_name="ames",
        model_version="3",
        served_versions={"3": 1.0},
        window_start=datetime(2026, 12, 1, tzinfo=UTC),
        window_end=datetime(2026, 12, 2, tzinfo=UTC),
        rows=622,
        objects=622,
        bad_lines=0,
        bad_objects=0,
        quarantine_url=None,
        sampled=False,
        drift_share=0.1,
        weighted_drift=0.1,
        drift_threshold=0.15,
        drifted_features=[],
        prediction_drift=0.05,
        labelled_rows=0,
        estimated_metrics={"rmse": 34000.0},
        live_metrics={},
        domain_classifier_auc=0.93,
        estimate_reliable=reliable,
        estimate_unreliable_reasons=[] if reliable else [REASON],
        verdict=Verdict(status="ok", retrain=False, reasons=["weighted drift 10.0% is within"]),
        report_url=None,
        quality_report_url=None,
        figures_url=None,
        retrain="none",
    )


def test_the_summary_shows_the_domain_auc_and_an_unreliable_estimate_as_such() -> None:
    unreliable = _summary(reliable=False)
    stored = MonitoringSummary.model_validate_json(unreliable.model_dump_json())
    assert (stored.estimate_reliable, stored.estimate_unreliable_reasons) == (False, [REASON])
    assert stored.domain_classifier_auc == 0.93
    text = summary_markdown(unreliable)
    assert "| domain classifier ROC AUC (window vs holdout) | 0.930 |" in text
    assert "| metric of v3 | estimated (no labels), UNRELIABLE |" in text
    assert f"The estimate is unreliable: {REASON}." in text
    reliable = summary_markdown(_summary(reliable=True))
    assert "UNRELIABLE" not in reliable
    assert "| metric of v3 | estimated (no labels) |" in reliable
