"""What one monitoring run read, found, decided and did: the summary and its Prefect artifact text."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from monitoring.decision import Verdict
from monitoring.reader import PredictionLogs

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
    sampled: bool
    batch_rows: int = 0
    batch_rows_included: bool = False
    drift_share: float | None
    drift_threshold: float
    drifted_features: list[dict[str, Any]]
    prediction_drift: float | None
    labelled_rows: int
    live_metrics: dict[str, float]
    verdict: Verdict
    report_url: str | None
    quality_report_url: str | None
    report_link: str | None = None  # what a browser opens: HTTP locally, presigned HTTPS on S3
    quality_report_link: str | None = None
    figures_url: str | None
    retrain: str


def served_versions(logs: PredictionLogs) -> dict[str, float]:
    """Each model version that answered rows of the window, with its share of them, largest first."""
    shares = logs.frame["model_version"].dropna().astype(str).value_counts(normalize=True)
    return {str(version): float(share) for version, share in shares.items()}


def served_text(served_versions: dict[str, float]) -> str:
    """`v1 (97%), v2 (3%)`: the versions that answered a window and their shares."""
    if not served_versions:
        return "no rows"
    return ", ".join(
        f"v{version} ({share:.0%})" if share >= 0.005 else f"v{version} (<1%)"  # noqa: PLR2004 - rounding
        for version, share in served_versions.items()
    )


def summary_markdown(summary: MonitoringSummary) -> str:
    """The Prefect UI artifact: verdict, what served the window, figures, drifted features, links."""
    verdict = {"drift": "DRIFT", "ok": "no drift", "no_verdict": "no verdict"}[summary.verdict.status]
    share = "n/a" if summary.drift_share is None else f"{summary.drift_share:.1%}"
    prediction_drift = "n/a" if summary.prediction_drift is None else f"{summary.prediction_drift:.3f}"
    sampled = " (sampled)" if summary.sampled else ""
    batch = "included" if summary.batch_rows_included else "left out (MLOPS_MONITOR_BATCH)"
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
        f"| drifted-feature share | {share} (threshold {summary.drift_threshold:.1%}) |",
        f"| prediction drift (normed Wasserstein) | {prediction_drift} |",
        f"| rows read | {summary.rows} from {summary.objects} objects{sampled} |",
        f"| batch-scored rows | {summary.batch_rows}, {batch} |",
        f"| quarantined | {summary.bad_lines} bad lines, {summary.bad_objects} bad objects |",
        f"| labelled rows | {summary.labelled_rows} |",
    ]
    for name, value in summary.live_metrics.items():
        lines.append(f"| live {name} of v{summary.model_version} | {value:.6g} |")
    if summary.drifted_features:
        lines += ["", "| top drifted feature | method | score | threshold |", "| --- | --- | --- | --- |"]
        lines += [
            f"| {f['column']} | {f['method']} | {f['score']:.3f} | {f['threshold']:.2f} |"
            for f in summary.drifted_features[:TOP_FEATURES]
        ]
    for title, link, stored in (
        ("drift report", summary.report_link, summary.report_url),
        ("live quality report", summary.quality_report_link, summary.quality_report_url),
    ):
        if link and stored:
            lines += ["", f"[Open the {title}]({link}) (stored at `{stored}`)"]
    return "\n".join(lines)
