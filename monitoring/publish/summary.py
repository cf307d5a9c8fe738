"""What one monitoring run read, found, decided and did: the summary and its Prefect artifact text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from pydantic import BaseModel

from monitoring.logs.reader import PredictionLogs
from monitoring.profiles.window_rows import WindowRows
from monitoring.publish.findings import WindowFindings
from monitoring.verdict.decision import MEASURE_TEXT, Verdict
from tasks.core.settings import DriftMeasure

TOP_FEATURES = 10


class MonitoringSummary(BaseModel):
    """What one monitoring run read, found, decided and did."""

    model_name: str
    model_version: str  # the champion the window was compared with
    served_versions: dict[str, float]  # model version -> share of the window's rows it answered
    live_version: str | None = None  # the model version behind `live` on the target as the run ended
    window_start: datetime
    window_end: datetime
    rows: int
    objects: int
    bad_lines: int
    bad_objects: int
    quarantine_url: str | None
    sampled: bool  # whether the report and the estimate saw a sample (drift counts every row)
    sample_rows: int = 0  # rows of that sample (MLOPS_MONITOR_ROW_CAP at most)
    batch_rows: int = 0
    batch_rows_included: bool = False
    drift_share: float | None  # share of the verdict's inputs that drifted
    weighted_drift: float | None  # importance share of the verdict's inputs that drifted
    drift_measure: DriftMeasure = "weighted"  # which of the two the verdict compares with the threshold
    drift_threshold: float
    drifted_features: list[dict[str, Any]]  # column, method, score, threshold, importance
    excluded_features: list[str] = []  # monitored, left out of the verdict (monitor_exclude)
    prediction_drift: float | None
    labelled_rows: int
    labels_set_aside: dict[str, int] = {}  # stored labels the read skipped, by reason
    estimated_metrics: dict[str, float] = {}  # without labels: DLE (regression) or CBPE (classification)
    live_metrics: dict[str, float]  # from the labelled rows the compared champion answered
    estimation_error: dict[str, float] = {}  # estimated minus realized, on the same labelled rows
    domain_classifier_auc: float | None = None  # window rows told from holdout rows: 0.5 alike, 1 apart
    estimate_reliable: bool = True  # False where the window left the holdout's support
    estimate_unreliable_reasons: list[str] = []
    verdict: Verdict
    report_url: str | None
    quality_report_url: str | None
    report_link: str | None = None  # what a browser opens: HTTP locally, presigned HTTPS on S3
    quality_report_link: str | None = None
    figures_url: str | None
    retrain: str


def build_summary(
    findings: WindowFindings,
    *,
    drift_measure: DriftMeasure,
    drift_threshold: float,
    batch_rows_included: bool,
    live_version: str | None,
    figures_url: str,
    retrain: str,
) -> MonitoringSummary:
    """The run's summary, in one place, from what its tasks found and what it did."""
    stats, reports = findings.logs.stats, findings.reports
    return MonitoringSummary(
        model_name=findings.model_name,
        model_version=findings.model_version,
        served_versions=served_versions(findings.logs),
        live_version=live_version,
        window_start=findings.window.start,
        window_end=findings.window.end,
        rows=stats.rows,
        objects=stats.objects,
        bad_lines=stats.bad_lines,
        bad_objects=stats.bad_objects,
        quarantine_url=findings.logs.quarantine_url,
        sampled=findings.logs.table.num_rows < stats.rows,
        sample_rows=findings.logs.table.num_rows,
        batch_rows=stats.batch_rows,
        batch_rows_included=batch_rows_included,
        drift_share=findings.drift_share,
        weighted_drift=findings.weighted_drift,
        drift_measure=drift_measure,
        drift_threshold=drift_threshold,
        drifted_features=findings.drifted_features,
        excluded_features=list(findings.excluded_features),
        prediction_drift=findings.prediction_drift,
        labelled_rows=findings.labelled_rows,
        labels_set_aside=findings.labels_set_aside,
        estimated_metrics=findings.quality.estimated,
        live_metrics=findings.quality.live,
        estimation_error=findings.quality.estimation_error,
        domain_classifier_auc=findings.quality.domain_auc,
        estimate_reliable=findings.quality.estimate_reliable,
        estimate_unreliable_reasons=list(findings.quality.estimate_unreliable_reasons),
        verdict=findings.verdict,
        report_url=reports.report_url,
        quality_report_url=reports.quality_report_url,
        report_link=reports.report_link,
        quality_report_link=reports.quality_report_link,
        figures_url=figures_url,
        retrain=retrain,
    )


def served_versions(logs: PredictionLogs) -> dict[str, float]:
    """Each model version that answered rows of the window, with its share of them, largest first."""
    keys = logs.keys if isinstance(logs, WindowRows) and logs.keys is not None else logs.table
    versions = keys.column("model_version").to_pandas() if keys.num_rows else pd.Series(dtype=object)
    shares = versions.dropna().astype(str).value_counts(normalize=True)
    return {str(version): float(share) for version, share in shares.items()}


def served_text(served_versions: dict[str, float]) -> str:
    """`v1 (97%), v2 (3%)`: the versions that answered a window and their shares."""
    if not served_versions:
        return "no rows"
    return ", ".join(
        f"v{version} ({share:.0%})" if share >= 0.005 else f"v{version} (<1%)"  # noqa: PLR2004 - rounding
        for version, share in served_versions.items()
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _quality_rows(summary: MonitoringSummary) -> list[str]:
    """Estimated and realized metrics side by side, with the estimate's error where both exist."""
    names = [
        *summary.estimated_metrics,
        *(n for n in summary.live_metrics if n not in summary.estimated_metrics),
    ]
    if not names:
        return []
    version = f"v{summary.model_version}"
    estimated = "estimated (no labels)" if summary.estimate_reliable else "estimated (no labels), UNRELIABLE"
    lines = ["", f"| metric of {version} | {estimated} | live (labelled rows) | estimate error |"]
    lines.append("| --- | --- | --- | --- |")
    for name in names:
        cells = [
            f"{values[name]:.6g}" if name in values else "n/a"
            for values in (summary.estimated_metrics, summary.live_metrics, summary.estimation_error)
        ]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    if summary.estimated_metrics and not summary.estimate_reliable:
        lines += ["", "The estimate is unreliable: " + "; ".join(summary.estimate_unreliable_reasons) + "."]
    return lines


def _labels_set_aside(summary: MonitoringSummary) -> list[str]:
    """The table row of stored labels the read skipped, when there were any."""
    if not summary.labels_set_aside:
        return []
    counts = ", ".join(f"{count} {reason}" for reason, count in summary.labels_set_aside.items())
    return [f"| labels set aside | {counts} |"]


def summary_markdown(summary: MonitoringSummary) -> str:
    """The Prefect UI artifact: verdict, what served the window, figures, drifted features, links."""
    verdict = {"drift": "DRIFT", "ok": "no drift", "no_verdict": "no verdict"}[summary.verdict.status]
    prediction_drift = "n/a" if summary.prediction_drift is None else f"{summary.prediction_drift:.3f}"
    auc = summary.domain_classifier_auc
    domain_auc = "n/a" if auc is None else f"{auc:.3f}"
    sampled = f" (report and estimate on a sample of {summary.sample_rows:,})" if summary.sampled else ""
    batch = "included" if summary.batch_rows_included else "left out (MLOPS_MONITOR_BATCH)"
    threshold = f"threshold {summary.drift_threshold:.1%}, MLOPS_DRIFT_MEASURE={summary.drift_measure}"
    excluded = ", ".join(summary.excluded_features) or "none"
    lines = [
        f"# {summary.model_name}: {verdict} against champion v{summary.model_version}",
        "",
        (
            f"Window {summary.window_start:%Y-%m-%d %H:%M} to {summary.window_end:%Y-%m-%d %H:%M} UTC, "
            f"served by {served_text(summary.served_versions)}; compared with the reference data of champion "
            f"v{summary.model_version}"
            + (f"; v{summary.live_version} is live now." if summary.live_version else ".")
        ),
        "",
        *[f"- {reason}" for reason in summary.verdict.reasons],
        f"- retrain: {summary.retrain}",
        "",
        "| figure | value |",
        "| --- | --- |",
        f"| {MEASURE_TEXT['weighted']} | {_percent(summary.weighted_drift)} |",
        f"| {MEASURE_TEXT['share']} | {_percent(summary.drift_share)} |",
        f"| verdict uses | {MEASURE_TEXT[summary.drift_measure]} ({threshold}) |",
        f"| left out of the verdict | {excluded} |",
        f"| prediction drift (normed Wasserstein) | {prediction_drift} |",
        f"| domain classifier ROC AUC (window vs holdout) | {domain_auc} |",
        f"| rows read | {summary.rows} from {summary.objects} objects{sampled} |",
        f"| batch-scored rows | {summary.batch_rows}, {batch} |",
        f"| quarantined | {summary.bad_lines} bad lines, {summary.bad_objects} bad objects |",
        f"| labelled rows | {summary.labelled_rows} |",
        *_labels_set_aside(summary),
        *_quality_rows(summary),
    ]
    if summary.drifted_features:
        lines += [
            "",
            "| drifted input | importance | method | score | threshold |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {item['column']} | {item['importance']:.1%} | {item['method']} | {item['score']:.3f} "
            f"| {item['threshold']:.2f} |"
            for item in summary.drifted_features[:TOP_FEATURES]
        ]
    for title, link, stored in (
        ("drift report", summary.report_link, summary.report_url),
        ("live quality report", summary.quality_report_link, summary.quality_report_url),
    ):
        if link and stored:
            lines += ["", f"[Open the {title}]({link}) (stored at `{stored}`)"]
    return "\n".join(lines)
