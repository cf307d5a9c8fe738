"""Tasks of the monitoring flow: read logs, compare with the reference, decide, trigger."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from evidently.core.report import Snapshot
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from deployments.lambda_handler.contract import (
    ACTUAL,
    HOLDOUT_FILE,
    IMPORTANCE_FILE,
    METADATA_FILE,
    REFERENCE_FILE,
    ServingSchema,
)
from deployments.targets import target_for
from monitoring.compaction import compact_closed_hours
from monitoring.decision import Evidence, Policy, Verdict, decide
from monitoring.estimation import fit_estimator
from monitoring.history import add_snapshot, workspace_url
from monitoring.label_read import LabelReadStats, quarantine_labels, read_window_labels
from monitoring.label_rules import LabelRules
from monitoring.labels import join_labels
from monitoring.quality import (
    estimated_quality,
    estimation_error,
    labelled_by_version,
    live_quality,
    quality_drop,
)
from monitoring.reader import LogReader, PredictionLogs
from monitoring.report import (
    DriftFigures,
    DriftThresholds,
    ReportSubject,
    build_drift_report,
    build_quality_report,
)
from monitoring.report_html import report_html
from monitoring.report_server import report_address
from monitoring.summary import MonitoringSummary, summary_markdown
from monitoring.window import Window
from tasks.artifacts import artifact_key
from tasks.errors import TRANSIENT_RETRIES
from tasks.evaluate import PRIMARY_METRIC
from tasks.registry import ensure_experiment, fetch_bundle, mlflow_client
from tasks.settings import Settings
from tasks.storage import join_url, s3_client, write_bytes


@dataclass(frozen=True)
class ModelContext:
    """The model version the window is compared against: its schema, baselines and metrics.

    Bundles from before the holdout baseline and importance existed have neither: their
    quality is compared with the training rows and every input weighs the same.
    """

    model_name: str
    version: str
    schema: ServingSchema
    reference: pd.DataFrame  # training rows: the drift baseline
    holdout_metrics: dict[str, float]
    holdout: pd.DataFrame | None = None  # out-of-sample predictions: the quality baseline
    importance: dict[str, float] | None = None

    @property
    def quality_reference(self) -> pd.DataFrame:
        """What live quality is compared with: the holdout when the bundle has it."""
        return self.reference if self.holdout is None else self.holdout


def load_model_context(settings: Settings, model_name: str, version: str | None = None) -> ModelContext:
    """Fetch a registered version's bundle (the champion by default) and read what monitoring needs."""
    with tempfile.TemporaryDirectory() as folder:
        bundle, resolved = fetch_bundle(settings.tracking_uri, model_name, version, Path(folder))
        schema = ServingSchema.load(bundle)
        reference = pd.read_parquet(bundle / REFERENCE_FILE)
        metadata = json.loads((bundle / METADATA_FILE).read_text("utf-8"))
        holdout_path, importance_path = bundle / HOLDOUT_FILE, bundle / IMPORTANCE_FILE
        holdout = pd.read_parquet(holdout_path) if holdout_path.exists() else None
        importance = (
            json.loads(importance_path.read_text("utf-8"))["shares"] if importance_path.exists() else None
        )
    return ModelContext(
        model_name, resolved, schema, reference, metadata.get("metrics", {}), holdout, importance
    )


@task(cache_policy=NO_CACHE)
def load_reference(settings: Settings, model_name: str, version: str | None = None) -> ModelContext:
    """The schema and reference sample of the champion, or of a given version."""
    return load_model_context(settings, model_name, version)


@task(**TRANSIENT_RETRIES, cache_policy=NO_CACHE)
def read_prediction_logs(settings: Settings, context: ModelContext, window: Window) -> PredictionLogs:
    """Read the window's logs; bad lines are counted and a sample is quarantined."""
    reader = LogReader(
        settings.storage,
        context.model_name,
        context.schema,
        row_cap=settings.monitor_row_cap,
        include_batch=settings.monitor_batch == "include",
    )
    logs = reader.read(window)
    logs.quarantine_url = reader.quarantine(logs.stats, window)
    stats = logs.stats
    logger = get_run_logger()
    logger.info(
        "Read %d rows from %d objects (%d compacted hours) in %s",
        stats.rows,
        stats.objects,
        stats.compacted_hours,
        window.name,
    )
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
    if stats.sampled:
        logger.info("Sampled %d of %d rows (MLOPS_MONITOR_ROW_CAP)", stats.rows, stats.rows_before_sampling)
    return logs


@task(cache_policy=NO_CACHE)
def compact_logs(settings: Settings, context: ModelContext, now: datetime) -> int:
    """Compact closed hours into Parquet so later windows read them in one request."""
    reader = LogReader(settings.storage, context.model_name, context.schema, row_cap=settings.monitor_row_cap)
    compacted = compact_closed_hours(reader, now, delete_originals=settings.compact_delete_originals)
    if compacted:
        get_run_logger().info("Compacted %d closed hours", len(compacted))
    return len(compacted)


@task(cache_policy=NO_CACHE)
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


@task(cache_policy=NO_CACHE)
def attach_labels(
    settings: Settings, context: ModelContext, logs: PredictionLogs, window: Window
) -> tuple[pd.DataFrame, LabelReadStats]:
    """The window's rows with ground truth joined where it has arrived, and what the label read set aside.

    Only the label partitions of the window's hours are read (and older-layout objects), and
    only labels of the window's requests are kept; labels that fail the checks are counted.
    """
    rules = LabelRules.for_schema(context.schema)
    labels, stats = read_window_labels(
        settings.storage, context.model_name, window, rules, request_ids=logs.table.column("request_id")
    )
    rows = join_labels(logs.frame, labels)
    logger = get_run_logger()
    logger.info(
        "Labelled %d of %d rows (%d labels of the window's requests in %d objects)",
        int(rows[ACTUAL].notna().sum()),
        len(rows),
        stats.labels,
        stats.objects,
    )
    if stats.set_aside:
        logger.warning(
            "Set aside labels: %s; sample in %s",
            ", ".join(f"{count} {reason}" for reason, count in sorted(stats.set_aside.items())),
            quarantine_labels(settings.storage, context.model_name, window, stats),
        )
    return rows, stats


def _save_html(snapshot: Snapshot, url: str) -> str:
    return write_bytes(url, report_html(snapshot).encode("utf-8"))


def report_link(settings: Settings, url: str | None, expires_seconds: int = 7 * 24 * 3600) -> str | None:
    """A link a browser can open: a presigned HTTPS URL on S3; locally, the report server's address."""
    if url is None:
        return None
    if url.startswith("s3://"):
        bucket, key = url.removeprefix("s3://").split("/", 1)
        return s3_client(settings.aws_region).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
        )
    return report_address(url, settings.storage, settings.reports_url)


@dataclass(frozen=True)
class QualityFigures:
    """The compared champion's quality in the window: estimated, realized, and the drops."""

    estimated: dict[str, float]
    live: dict[str, float]
    estimation_error: dict[str, float]
    estimated_drop: float | None
    live_drop: float | None

    def window_values(self) -> dict[str, float]:
        """`estimated_<metric>` and `live_<metric>` values for the snapshot and its dashboard."""
        return {
            **{f"estimated_{name}": value for name, value in self.estimated.items()},
            **{f"live_{name}": value for name, value in self.live.items()},
        }


@task(cache_policy=NO_CACHE)
def assess_quality(settings: Settings, context: ModelContext, rows: pd.DataFrame) -> QualityFigures:
    """Estimate the champion's metrics without labels and measure them where labels arrived."""
    schema, version, baseline = context.schema, context.version, context.holdout_metrics
    live, live_drop = live_quality(rows, schema, version, baseline, settings.min_labelled_rows)
    estimator = None if context.holdout is None else fit_estimator(schema, context.holdout)
    estimated = estimated_quality(rows, version, estimator)
    figures = QualityFigures(
        estimated=estimated,
        live=live,
        estimation_error=estimation_error(rows, version, estimator, live),
        estimated_drop=quality_drop(schema, estimated, baseline),
        live_drop=live_drop,
    )
    if estimated:
        get_run_logger().info(
            "Estimated without labels: %s; realized: %s",
            ", ".join(f"{name}={value:.6g}" for name, value in estimated.items()),
            ", ".join(f"{name}={value:.6g}" for name, value in live.items()) or "not enough labels",
        )
    return figures


@task(cache_policy=NO_CACHE)
def build_reports(
    settings: Settings, context: ModelContext, rows: pd.DataFrame, window: Window, quality: QualityFigures
) -> tuple[DriftFigures | None, Snapshot | None, str | None, str | None]:
    """Run Evidently and store the HTML report(s) under `reports/<model>/`."""
    if rows.empty:
        return None, None, None, None
    thresholds = DriftThresholds(
        numeric=settings.drift_numeric_threshold,
        categorical=settings.drift_categorical_threshold,
        drift=settings.drift_threshold,
        measure=settings.drift_measure,
    )
    subject = ReportSubject(context.model_name, context.version, window)
    snapshot, figures = build_drift_report(
        rows,
        context.reference,
        context.schema,
        thresholds,
        subject,
        context.importance,
        window_values=quality.window_values(),
    )
    base = join_url(settings.storage, "reports", context.model_name, window.name)
    report_url = _save_html(snapshot, f"{base}.html")
    quality_url = None
    labelled = labelled_by_version(rows, context.version)
    if len(labelled) >= settings.min_labelled_rows:
        quality_report = build_quality_report(labelled, context.quality_reference, context.schema, subject)
        quality_url = _save_html(quality_report, f"{base}-quality.html")
    get_run_logger().info("Drift report: %s", report_url)
    return figures, snapshot, report_url, quality_url


@task(**TRANSIENT_RETRIES, cache_policy=NO_CACHE)
def record_history(settings: Settings, context: ModelContext, snapshot: Snapshot | None) -> str | None:
    """Add the window's snapshot (no raw rows) to the Evidently workspace: the model's history."""
    if snapshot is None:
        return None
    metric, _ = PRIMARY_METRIC[context.schema.task]
    workspace = workspace_url(settings.storage)
    snapshot_id = add_snapshot(workspace, context.model_name, snapshot, primary_metric=metric)
    get_run_logger().info("Added snapshot %s to the Evidently workspace %s", snapshot_id, workspace)
    return snapshot_id


@task(cache_policy=NO_CACHE)
def publish_summary(settings: Settings, summary: MonitoringSummary) -> str:
    """Save the key figures as JSON next to the report and publish the run's Prefect artifacts."""
    base = join_url(
        settings.storage, "reports", summary.model_name, Window(summary.window_start, summary.window_end).name
    )
    figures_url = write_bytes(f"{base}.json", summary.model_dump_json(indent=2).encode())
    key = artifact_key("drift", summary.model_name)
    create_markdown_artifact(markdown=summary_markdown(summary), key=key, description="Monitoring verdict")
    if summary.report_link:
        create_link_artifact(
            link=summary.report_link,
            link_text=f"Evidently drift report ({summary.report_url})",
            key=f"{key}-report",
            description="Drift report of the window",
        )
    return figures_url


@task(cache_policy=NO_CACHE)
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


def verdict_for(
    settings: Settings, figures: DriftFigures | None, rows: int, quality: QualityFigures
) -> Verdict:
    """The verdict from the figures and settings."""
    evidence = Evidence(
        rows=rows,
        drift_share=None if figures is None else figures.drift_share,
        weighted_drift=None if figures is None else figures.weighted_drift,
        live_drop=quality.live_drop,
        estimated_drop=quality.estimated_drop,
    )
    policy = Policy(
        min_rows=settings.monitor_min_rows,
        drift_measure=settings.drift_measure,
        drift_threshold=settings.drift_threshold,
        max_quality_drop=settings.max_quality_drop,
    )
    return decide(evidence, policy)


def drifted_features(figures: DriftFigures | None) -> list[dict[str, Any]]:
    """Drifted inputs of the verdict as plain dicts, most important first."""
    return [] if figures is None else [asdict(item) for item in figures.drifted]
