"""The monitoring flow: prediction logs → Evidently drift report → verdict → at most one retrain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from prefect import flow, get_run_logger

from deployments.lambda_handler.contract import ACTUAL
from flows.commands import command_parameters
from flows.permanent_errors import fails_in_one_line
from flows.temporary_server import run_flow
from monitoring.summary import MonitoringSummary, served_versions
from monitoring.window import Window
from tasks.errors import quiet_permanent_errors, run_command
from tasks.monitoring import (
    assess_quality,
    attach_labels,
    build_reports,
    compact_logs,
    drifted_features,
    load_reference,
    log_to_mlflow,
    publish_summary,
    read_live_version,
    read_prediction_logs,
    record_history,
    report_link,
    verdict_for,
)
from tasks.retrain_trigger import DRIFT_EVENT, emit_drift_event, guard_retrain, record_retrain, retrain_mode
from tasks.settings import Settings, load_settings


def start_retrain(
    settings: Settings,
    model_name: str,
    now: datetime,
    payload: dict,
    *,
    ignore_cooldown: bool,
    data_source: str | None,
) -> str:
    """Start one retrain (event or inline) unless one of this model is in flight or its cooldown holds."""
    mode = retrain_mode(settings)
    if mode == "off":
        return "not started: MLOPS_RETRAIN_MODE=off"
    guard = guard_retrain(settings, model_name, now, ignore_cooldown=ignore_cooldown)
    if not guard.allowed:
        return f"not started: {guard.reason}"
    record_retrain(settings, model_name, now, {"mode": mode, **payload})
    if mode == "event":
        event_id = emit_drift_event(model_name, payload)
        return f"event {DRIFT_EVENT} emitted ({event_id}); the train deployment's trigger starts the run"
    from flows.training import train_model

    result = train_model(
        data_source=data_source,
        model_name=model_name,
        reason="drift",
        production_hours=payload["production_hours"],
    )
    outcome = f"promoted v{result.model_version}" if result.promoted else f"not promoted ({result.reason})"
    return f"retrained in this process: {outcome}"


@flow(name="monitor")
@fails_in_one_line
def monitor_model(
    model_name: str | None = None,
    window_hours: float | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    ignore_cooldown: bool = False,
    drift_threshold: float | None = None,
    drift_measure: Literal["weighted", "share"] | None = None,
    max_quality_drop: float | None = None,
    retrain_mode: Literal["auto", "event", "inline", "off"] | None = None,
    retrain_data_source: str | None = None,
) -> MonitoringSummary:
    """Compare a window of live predictions with the champion's reference and act on drift.

    The window is the last `window_hours` (default `MLOPS_MONITOR_WINDOW_HOURS`, 24), or
    `start`..`end` when both are given. `ignore_cooldown` lets a manual run start a retrain
    within the cooldown (never while a training run of the model is in flight). The drift threshold and
    measure (`weighted`: importance share of drifted inputs, or `share`), the allowed quality
    drop and the retrain mode override their settings for this run; `retrain_data_source` is the training
    data of a retrain this run starts inline (the data the champion was trained from otherwise).
    """
    quiet_permanent_errors()
    settings = load_settings().with_values(
        drift_threshold=drift_threshold,
        drift_measure=drift_measure,
        max_quality_drop=max_quality_drop,
        retrain_mode=retrain_mode,
        monitor_window_hours=window_hours,
    )
    name = model_name or settings.model_name
    now = datetime.now(UTC)
    window = Window(start, end) if start and end else Window.last(settings.monitor_window_hours, now)
    context = load_reference(settings, name)
    logs = read_prediction_logs(settings, context, window)
    rows, labels = attach_labels(settings, context, logs, window)
    quality = assess_quality(settings, context, rows)
    figures, snapshot, report_url, quality_url = build_reports(settings, context, rows, window, quality)
    verdict = verdict_for(settings, figures, len(rows), quality)
    link = report_link(settings, report_url)  # what a browser opens
    retrain = "not needed"
    if verdict.retrain:
        payload = {
            "model_name": name,
            "champion_version": context.version,
            "drift_share": None if figures is None else figures.drift_share,
            "weighted_drift": None if figures is None else figures.weighted_drift,
            "drift_measure": settings.drift_measure,
            "threshold": settings.drift_threshold,
            "estimated_metrics": quality.estimated,
            "window_start": window.start.isoformat(),
            "window_end": window.end.isoformat(),
            "report_url": report_url,
            "report_link": link,
            "reasons": verdict.reasons,
            "production_hours": settings.production_lookback_hours,
        }
        retrain = start_retrain(
            settings, name, now, payload, ignore_cooldown=ignore_cooldown, data_source=retrain_data_source
        )
    stats = logs.stats
    summary = MonitoringSummary(
        model_name=name,
        model_version=context.version,
        served_versions=served_versions(logs),
        live_version=read_live_version(settings, name),
        window_start=window.start,
        window_end=window.end,
        rows=stats.rows,
        objects=stats.objects,
        bad_lines=stats.bad_lines,
        bad_objects=stats.bad_objects,
        quarantine_url=logs.quarantine_url,
        sampled=stats.sampled,
        batch_rows=stats.batch_rows,
        batch_rows_included=settings.monitor_batch == "include",
        drift_share=None if figures is None else figures.drift_share,
        weighted_drift=None if figures is None else figures.weighted_drift,
        drift_measure=settings.drift_measure,
        drift_threshold=settings.drift_threshold,
        drifted_features=drifted_features(figures),
        excluded_features=list(context.schema.monitor_exclude),
        prediction_drift=None if figures is None or figures.prediction is None else figures.prediction.score,
        labelled_rows=int(rows[ACTUAL].notna().sum()),
        labels_set_aside=labels.set_aside,
        estimated_metrics=quality.estimated,
        live_metrics=quality.live,
        estimation_error=quality.estimation_error,
        verdict=verdict,
        report_url=report_url,
        quality_report_url=quality_url,
        report_link=link,
        quality_report_link=report_link(settings, quality_url),
        figures_url=None,
        retrain=retrain,
    )
    summary.figures_url = publish_summary(settings, summary)
    log_to_mlflow(settings, summary)
    record_history(settings, context, snapshot)
    compact_logs(settings, context, now)
    get_run_logger().info("%s: %s; retrain %s", summary.verdict.status, "; ".join(verdict.reasons), retrain)
    return summary


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.monitoring [options]`: monitor once (`--help` lists the options)."""
    run_command(lambda: run_flow(monitor_model, command_parameters("monitoring", argv)))


if __name__ == "__main__":
    main()
