"""Tasks of the monitoring flow: read logs, compare with the reference, decide, trigger."""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from deployments.lambda_handler.contract import (
    METADATA_FILE,
    REFERENCE_FILE,
    ServingSchema,
)
from deployments.targets import target_for
from monitoring.compaction import compact_closed_hours
from monitoring.decision import Verdict, decide
from monitoring.labels import join_labels, read_labels
from monitoring.quality import labelled_by_version
from monitoring.reader import LogReader, PredictionLogs
from monitoring.report import DriftFigures, DriftThresholds, build_drift_report, build_quality_report
from monitoring.report_server import report_address
from monitoring.retrain_guard import GuardDecision, check_guard, last_trigger, record_trigger
from monitoring.summary import MonitoringSummary, summary_markdown
from monitoring.window import Window
from tasks.artifacts import artifact_key
from tasks.errors import TRANSIENT_RETRIES
from tasks.registry import ensure_experiment, fetch_bundle, mlflow_client
from tasks.settings import Settings
from tasks.storage import join_url, s3_client, write_bytes

DRIFT_EVENT = "loopml.model.drift-detected"


@dataclass(frozen=True)
class ModelContext:
    """The model version the window is compared against: its schema, reference and metrics."""

    model_name: str
    version: str
    schema: ServingSchema
    reference: pd.DataFrame
    holdout_metrics: dict[str, float]


def load_model_context(settings: Settings, model_name: str, version: str | None = None) -> ModelContext:
    """Fetch a registered version's bundle (the champion by default) and read what monitoring needs."""
    with tempfile.TemporaryDirectory() as folder:
        bundle, resolved = fetch_bundle(settings.tracking_uri, model_name, version, Path(folder))
        schema = ServingSchema.load(bundle)
        reference = pd.read_parquet(bundle / REFERENCE_FILE)
        metadata = json.loads((bundle / METADATA_FILE).read_text("utf-8"))
    return ModelContext(model_name, resolved, schema, reference, metadata.get("metrics", {}))


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
def attach_labels(settings: Settings, model_name: str, logs: PredictionLogs, window: Window) -> pd.DataFrame:
    """The window's rows with ground truth joined where it has arrived."""
    return join_labels(logs.frame, read_labels(settings.storage, model_name, window))


def _save_html(snapshot: Any, url: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "report.html"
        snapshot.save_html(str(path))
        return write_bytes(url, path.read_bytes())


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


@task(cache_policy=NO_CACHE)
def build_reports(
    settings: Settings, context: ModelContext, rows: pd.DataFrame, window: Window
) -> tuple[DriftFigures | None, str | None, str | None]:
    """Run Evidently and store the HTML report(s) under `reports/<model>/`."""
    if rows.empty:
        return None, None, None
    thresholds = DriftThresholds(
        numeric=settings.drift_numeric_threshold,
        categorical=settings.drift_categorical_threshold,
        share=settings.drift_threshold,
    )
    snapshot, figures = build_drift_report(rows, context.reference, context.schema, thresholds)
    base = join_url(settings.storage, "reports", context.model_name, window.name)
    report_url = _save_html(snapshot, f"{base}.html")
    quality_url = None
    labelled = labelled_by_version(rows, context.version)
    if len(labelled) >= settings.min_labelled_rows:
        quality_url = _save_html(
            build_quality_report(labelled, context.reference, context.schema), f"{base}-quality.html"
        )
    get_run_logger().info("Drift report: %s", report_url)
    return figures, report_url, quality_url


def retrain_in_flight() -> int:
    """Training flow runs that are running, pending, or scheduled and already due."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["train"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(
                        any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED]
                    )
                )
            ),
        )
    now = datetime.now(UTC)
    due = [
        run
        for run in runs
        if run.state_type != StateType.SCHEDULED or (run.expected_start_time or now) <= now
    ]
    return len(due)


def retrain_mode(settings: Settings) -> str:
    """`event` with a Prefect server (its automation starts the deployment), else `inline`."""
    if settings.retrain_mode != "auto":
        return settings.retrain_mode
    from prefect.settings import get_current_settings

    return "event" if get_current_settings().api.url else "inline"


@task(cache_policy=NO_CACHE)
def guard_retrain(
    settings: Settings, model_name: str, now: datetime, *, ignore_cooldown: bool = False
) -> GuardDecision:
    """Check cooldown (unless a manual run says to ignore it) and runs in flight before any retrain."""
    cooldown = timedelta(hours=0 if ignore_cooldown else settings.retrain_cooldown_hours)
    return check_guard(last_trigger(settings.storage, model_name), now, cooldown, retrain_in_flight())


@task(cache_policy=NO_CACHE)
def emit_drift_event(model_name: str, payload: dict[str, Any]) -> str | None:
    """Emit the drift event; the `train` deployment's trigger starts one training run."""
    from prefect.events import emit_event

    event = emit_event(
        event=DRIFT_EVENT,
        resource={"prefect.resource.id": f"loopml.model.{model_name}", "prefect.resource.name": model_name},
        payload=payload,
    )
    return None if event is None else str(event.id)


@task(cache_policy=NO_CACHE)
def record_retrain(settings: Settings, model_name: str, now: datetime, detail: dict[str, Any]) -> None:
    """Remember when the retrain started, for the cooldown."""
    record_trigger(settings.storage, model_name, now, detail)


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
        client.set_model_version_tag(
            summary.model_name, summary.model_version, "last_monitor_verdict", summary.verdict.status
        )
    return run.info.run_id


def verdict_for(
    settings: Settings, figures: DriftFigures | None, rows: int, quality_drop: float | None
) -> Verdict:
    """The verdict from the figures and settings."""
    return decide(
        rows,
        settings.monitor_min_rows,
        None if figures is None else figures.drift_share,
        settings.drift_threshold,
        quality_drop,
        settings.max_quality_drop,
    )


def drifted_features(figures: DriftFigures | None) -> list[dict[str, Any]]:
    """Drifted features as plain dicts, largest score first."""
    return [] if figures is None else [asdict(item) for item in figures.drifted]
