"""Tasks of the monitoring flow: read logs, compare with the reference, decide, trigger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import mlflow
import pandas as pd
from evidently.core.report import Snapshot
from prefect import get_run_logger
from prefect.artifacts import create_link_artifact, create_markdown_artifact

from deployments.targets.selection import target_for
from monitoring.drift.report_html import REPORT_SUFFIX, save_html
from monitoring.drift.window_drift import window_drift
from monitoring.drift.window_reports import (
    DriftFigures,
    DriftThresholds,
    ReportSubject,
    build_drift_report,
    build_quality_report,
)
from monitoring.labels.commands import join_labels, labelled_rows
from monitoring.labels.label_read import LabelReadStats, quarantine_labels, read_window_labels
from monitoring.labels.label_rules import LabelRules
from monitoring.logs.compaction import compact_closed_hours
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from monitoring.profiles.bins import reference_bins
from monitoring.profiles.window_rows import WindowRows, read_window_rows
from monitoring.publish.history import add_snapshot, workspace_url
from monitoring.publish.summary import MonitoringSummary, summary_markdown
from monitoring.quality.estimation import estimated_metric
from monitoring.quality.figures import DOMAIN_AUC, QualityFigures
from monitoring.quality.live_quality import (
    estimation_error,
    labelled_by_version,
    live_quality,
    quality_drop,
    rows_of_version,
)
from monitoring.quality.reliability import Assessment, assess_estimate
from monitoring.verdict.decision import Evidence, Policy, Verdict, decide
from tasks.core.errors import TRANSIENT_RETRIES
from tasks.core.settings import Settings
from tasks.core.storage import join_url, write_bytes
from tasks.registry.model_files import ModelContext, load_model_context
from tasks.registry.model_registry import ensure_experiment, mlflow_client
from tasks.steps.prefect_artifacts import artifact_key
from tasks.steps.step import step


@step
def load_reference(settings: Settings, model_name: str, version: str | None = None) -> ModelContext:
    """The schema and reference sample of the champion, or of a given version."""
    return load_model_context(settings, model_name, version)


@step(**TRANSIENT_RETRIES)
def read_prediction_logs(
    settings: Settings, context: ModelContext, window: Window, now: datetime | None = None
) -> WindowRows:
    """Profile every row of the window (stored hour digests reused), keep a sample; bad lines set aside."""
    reader = LogReader(
        settings.storage,
        context.model_name,
        context.schema,
        row_cap=settings.monitor_row_cap,
        include_batch=settings.monitor_batch == "include",
    )
    bins = reference_bins(context.reference, context.schema)
    logs = read_window_rows(
        reader, window, bins, context.version, now or datetime.now(UTC), settings.monitor_row_cap
    )
    logs.quarantine_url = reader.quarantine(logs.stats, window)
    stats = logs.stats
    logger = get_run_logger()
    logger.info(
        "Profiled %d rows from %d objects (%d compacted hours, %d hours from stored profiles) in %s",
        stats.rows,
        stats.objects,
        stats.compacted_hours,
        logs.stored_hours,
        window.name,
    )
    for folder, reason in logs.digests_set_aside:
        logger.warning("Read the hour again: its stored profile %s is unreadable (%s)", folder, reason)
    if stats.bad_lines:
        logger.warning(
            "Set aside %d bad lines (%d bad objects); sample in %s",
            stats.bad_lines,
            stats.bad_objects,
            logs.quarantine_url,
        )
    if stats.batch_rows:
        logger.info(
            "%d batch-scored rows %s (MLOPS_MONITOR_BATCH=%s)",
            stats.batch_rows,
            "included" if settings.monitor_batch == "include" else "left out",
            settings.monitor_batch,
        )
    if logs.table.num_rows < stats.rows:
        logger.info(
            "Drift counts all %d rows; the report and the estimate a sample of %d (MLOPS_MONITOR_ROW_CAP)",
            stats.rows,
            logs.table.num_rows,
        )
    return logs


@step
def compact_logs(settings: Settings, context: ModelContext, now: datetime) -> int:
    """Compact closed hours into Parquet so later windows read them in one request."""
    reader = LogReader(settings.storage, context.model_name, context.schema, row_cap=settings.monitor_row_cap)
    compacted = compact_closed_hours(reader, now, delete_originals=settings.compact_delete_originals)
    if compacted:
        get_run_logger().info("Compacted %d closed hours", len(compacted))
    return len(compacted)


@step
def read_live_version(settings: Settings, model_name: str) -> str | None:
    """The model version behind `live` on the target, or None (nothing deployed, or unreadable)."""
    try:
        versions = target_for(settings, model_name).versions()
    except Exception as error:  # noqa: BLE001 - the verdict does not depend on it; say why it is missing
        get_run_logger().warning(
            "Could not read the live version from the %s target: %s", settings.target, error
        )
        return None
    return next((item.model_version for item in versions if item.live), None)


@dataclass
class LabelledRows:
    """The window's sample with labels joined, every labelled row, and what the label read set aside."""

    sample: pd.DataFrame
    labelled: pd.DataFrame
    stats: LabelReadStats


@step
def attach_labels(
    settings: Settings, context: ModelContext, logs: WindowRows, window: Window
) -> LabelledRows:
    """Ground truth joined to the sample and to the key columns of every row, where it has arrived.

    Only the label partitions of the window's hours are read (and older-layout objects), and
    only labels of the window's requests are kept; labels that fail the checks are counted.
    """
    rules = LabelRules.for_schema(context.schema)
    keys = logs.table if logs.keys is None else logs.keys
    labels, stats = read_window_labels(
        settings.storage, context.model_name, window, rules, request_ids=keys.column("request_id")
    )
    sample = join_labels(logs.frame, labels)
    labelled = labelled_rows(keys, labels)
    logger = get_run_logger()
    logger.info(
        "Labelled %d of %d rows (%d labels of the window's requests in %d objects)",
        len(labelled),
        keys.num_rows,
        stats.labels,
        stats.objects,
    )
    if stats.set_aside:
        logger.warning(
            "Set aside labels: %s; sample in %s",
            ", ".join(f"{count} {reason}" for reason, count in sorted(stats.set_aside.items())),
            quarantine_labels(settings.storage, context.model_name, window, stats),
        )
    return LabelledRows(sample, labelled, stats)


@step
def assess_quality(settings: Settings, context: ModelContext, rows: LabelledRows) -> QualityFigures:
    """Estimate the champion's metrics on the sample without labels; measure them on every labelled row.

    The estimate re-weights the holdout towards the sampled rows the champion answered, and is
    marked unreliable where those rows leave the holdout's support.
    """
    schema, version, baseline = context.schema, context.version, context.holdout_metrics
    live, live_drop = live_quality(rows.labelled, schema, version, baseline, settings.min_labelled_rows)
    answered = rows_of_version(rows.sample, version)
    assessment = (
        Assessment({})
        if context.holdout is None or answered.empty
        else assess_estimate(schema, context.holdout, answered, context.importance)
    )
    estimated = assessment.metrics
    sampled_live, _ = live_quality(rows.sample, schema, version, baseline, settings.min_labelled_rows)
    figures = QualityFigures(
        estimated=estimated,
        live=live,
        estimation_error=estimation_error(rows.sample, version, assessment.estimator, sampled_live),
        estimated_drop=quality_drop(schema, estimated, baseline),
        live_drop=live_drop,
        domain_auc=assessment.domain_auc,
        estimate_reliable=assessment.reliable,
        estimate_unreliable_reasons=assessment.reasons,
    )
    logger = get_run_logger()
    if estimated:
        logger.info(
            "Estimated without labels: %s (domain classifier AUC %s); realized: %s",
            ", ".join(f"{name}={value:.6g}" for name, value in estimated.items()),
            "n/a" if assessment.domain_auc is None else f"{assessment.domain_auc:.3f}",
            ", ".join(f"{name}={value:.6g}" for name, value in live.items()) or "not enough labels",
        )
    if assessment.reasons:
        logger.warning("The estimate is unreliable: %s", "; ".join(assessment.reasons))
    return figures


@step
def build_reports(
    settings: Settings,
    context: ModelContext,
    logs: WindowRows,
    rows: LabelledRows,
    window: Window,
    quality: QualityFigures,
) -> tuple[DriftFigures | None, Snapshot | None, str | None, str | None]:
    """Drift figures over every row, and Evidently's HTML report(s) of the sample under `reports/<model>/`."""
    if rows.sample.empty or logs.profile is None or logs.bins is None:
        return None, None, None, None
    thresholds = DriftThresholds(
        numeric=settings.drift_numeric_threshold,
        categorical=settings.drift_categorical_threshold,
        drift=settings.drift_threshold,
        measure=settings.drift_measure,
    )
    figures = window_drift(
        logs.profile, logs.bins, context.schema, thresholds, context.importance, len(context.reference)
    )
    subject = ReportSubject(context.model_name, context.version, window)
    snapshot, figures = build_drift_report(
        rows.sample,
        context.reference,
        context.schema,
        thresholds,
        subject,
        context.importance,
        window_values=quality.window_values(),
        window_figures=figures,
    )
    base = report_base(settings, context.model_name, window)
    report_url = save_html(snapshot, f"{base}{REPORT_SUFFIX}")
    quality_url = None
    labelled = labelled_by_version(rows.labelled, context.version)
    if len(labelled) >= settings.min_labelled_rows:
        labelled = labelled.iloc[: settings.monitor_row_cap]  # in hour, then key order: a bounded report
        quality_report = build_quality_report(labelled, context.quality_reference, context.schema, subject)
        quality_url = save_html(quality_report, f"{base}-quality{REPORT_SUFFIX}")
    get_run_logger().info("Drift report: %s", report_url)
    return figures, snapshot, report_url, quality_url


@step(**TRANSIENT_RETRIES)
def record_history(settings: Settings, context: ModelContext, snapshot: Snapshot | None) -> str | None:
    """Add the window's snapshot (no raw rows) to the Evidently workspace: the model's history."""
    if snapshot is None:
        return None
    metric = estimated_metric(context.schema)  # the dashboard charts the estimate beside the realized value
    workspace = workspace_url(settings.storage)
    snapshot_id = add_snapshot(workspace, context.model_name, snapshot, primary_metric=metric)
    get_run_logger().info("Added snapshot %s to the Evidently workspace %s", snapshot_id, workspace)
    return snapshot_id


def report_base(settings: Settings, model_name: str, window: Window) -> str:
    """Where a window's reports and figures are stored, without the suffix."""
    return join_url(settings.storage, "reports", model_name, window.name)


def figures_url(settings: Settings, model_name: str, window: Window) -> str:
    """Where a window's summary is saved as JSON, next to its report."""
    return f"{report_base(settings, model_name, window)}.json"


@step
def publish_summary(settings: Settings, summary: MonitoringSummary) -> str:
    """Save the key figures as JSON next to the report and publish the run's Prefect artifacts."""
    url = summary.figures_url or figures_url(
        settings, summary.model_name, Window(summary.window_start, summary.window_end)
    )
    write_bytes(url, summary.model_dump_json(indent=2).encode())
    key = artifact_key("drift", summary.model_name)
    create_markdown_artifact(markdown=summary_markdown(summary), key=key, description="Monitoring verdict")
    if summary.report_link:
        create_link_artifact(
            link=summary.report_link,
            link_text=f"Evidently drift report ({summary.report_url})",
            key=f"{key}-report",
            description="Drift report of the window",
        )
    return url


@step
def log_to_mlflow(settings: Settings, summary: MonitoringSummary) -> str:
    """Log the key figures as a monitoring run tagged with the live model version."""
    client = mlflow_client(settings.tracking_uri)
    experiment_id = ensure_experiment(client, summary.model_name, settings.artifact_root)
    metrics = {
        "rows": summary.rows,
        "bad_lines": summary.bad_lines,
        "labelled_rows": summary.labelled_rows,
        **({"drift_share": summary.drift_share} if summary.drift_share is not None else {}),
        **({"weighted_drift": summary.weighted_drift} if summary.weighted_drift is not None else {}),
        **{f"estimated_{name}": value for name, value in summary.estimated_metrics.items()},
        **({"prediction_drift": summary.prediction_drift} if summary.prediction_drift is not None else {}),
        **{f"live_{name}": value for name, value in summary.live_metrics.items()},
        **({DOMAIN_AUC: summary.domain_classifier_auc} if summary.domain_classifier_auc is not None else {}),
        **({"estimate_reliable": float(summary.estimate_reliable)} if summary.estimated_metrics else {}),
    }
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=f"monitor-{summary.window_end:%Y%m%dT%H%M}"
    ) as run:
        mlflow.set_tags(
            {
                "kind": "monitoring",
                "model_version": summary.model_version,
                "verdict": summary.verdict.status,
                "report_url": summary.report_url or "",
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_dict(json.loads(summary.model_dump_json()), "monitoring.json")
    if summary.drift_share is not None:
        client.set_model_version_tag(
            summary.model_name, summary.model_version, "last_drift_share", f"{summary.drift_share:.4f}"
        )
        if summary.weighted_drift is not None:
            client.set_model_version_tag(
                summary.model_name,
                summary.model_version,
                "last_weighted_drift",
                f"{summary.weighted_drift:.4f}",
            )
        client.set_model_version_tag(
            summary.model_name, summary.model_version, "last_monitor_verdict", summary.verdict.status
        )
    return run.info.run_id


@step
def decide_verdict(
    settings: Settings, figures: DriftFigures | None, rows: int, quality: QualityFigures
) -> Verdict:
    """The window's verdict (drift, quality drop or too few rows) from its figures and the settings."""
    evidence = Evidence(
        rows=rows,
        drift_share=None if figures is None else figures.drift_share,
        weighted_drift=None if figures is None else figures.weighted_drift,
        live_drop=quality.live_drop,
        estimated_drop=quality.estimated_drop,
        estimate_reliable=quality.estimate_reliable,
    )
    policy = Policy(
        min_rows=settings.monitor_min_rows,
        drift_measure=settings.drift_measure,
        drift_threshold=settings.drift_threshold,
        max_quality_drop=settings.max_quality_drop,
    )
    return decide(evidence, policy)
