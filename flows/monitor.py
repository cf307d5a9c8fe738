"""The monitoring flow: prediction logs → Evidently drift report → verdict → at most one retrain."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from prefect import flow, get_run_logger

from flows.cli.failed_runs import fails_in_one_line
from flows.cli.options import command_parameters
from flows.cli.temporary_server import run_flow
from monitoring.logs.window import Window
from monitoring.publish.drift_event import DRIFT_EVENT, DriftEvent
from monitoring.publish.findings import ReportLocations, WindowFindings
from monitoring.publish.report_links import report_link
from monitoring.publish.summary import MonitoringSummary, build_summary
from tasks.core.errors import quiet_permanent_errors, run_command
from tasks.core.settings import DriftMeasure, Settings, load_settings
from tasks.steps.monitor_steps import (
    assess_quality,
    attach_labels,
    build_reports,
    compact_logs,
    decide_verdict,
    figures_url,
    load_reference,
    log_to_mlflow,
    publish_summary,
    read_live_version,
    read_prediction_logs,
    record_history,
)
from tasks.steps.retrain_trigger import (
    emit_drift_event,
    guard_retrain,
    record_retrain,
    retrain_mode,
)


def start_retrain(
    settings: Settings,
    model_name: str,
    now: datetime,
    event: DriftEvent,
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
    record_retrain(settings, model_name, now, {"mode": mode, **event.model_dump(mode="json")})
    if mode == "event":
        event_id = emit_drift_event(event)
        return f"event {DRIFT_EVENT} emitted ({event_id}); the train deployment's trigger starts the run"
    from flows.training import train_model

    result = train_model(
        data_source=data_source,
        model_name=model_name,
        reason="drift",
        production_hours=event.production_hours,
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
    drift_measure: DriftMeasure | None = None,
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
    compact_logs(settings, context, now)  # first: the window then reads one object per closed hour
    logs = read_prediction_logs(settings, context, window, now)
    rows = attach_labels(settings, context, logs, window)
    quality = assess_quality(settings, context, rows)
    figures, snapshot, report_url, quality_url = build_reports(settings, context, logs, rows, window, quality)
    verdict = decide_verdict(settings, figures, logs.stats.rows, quality)
    findings = WindowFindings(
        model_name=name,
        model_version=context.version,
        excluded_features=tuple(context.schema.monitor_exclude),
        window=window,
        logs=logs,
        labelled_rows=len(rows.labelled),
        labels_set_aside=rows.stats.set_aside,
        quality=quality,
        drift=figures,
        verdict=verdict,
        reports=ReportLocations(
            report_url, quality_url, report_link(settings, report_url), report_link(settings, quality_url)
        ),
    )
    retrain = "not needed"
    if verdict.retrain:
        event = DriftEvent.for_window(
            findings,
            drift_measure=settings.drift_measure,
            threshold=settings.drift_threshold,
            production_hours=settings.production_lookback_hours,
        )
        retrain = start_retrain(
            settings, name, now, event, ignore_cooldown=ignore_cooldown, data_source=retrain_data_source
        )
    summary = build_summary(
        findings,
        drift_measure=settings.drift_measure,
        drift_threshold=settings.drift_threshold,
        batch_rows_included=settings.monitor_batch == "include",
        live_version=read_live_version(settings, name),
        figures_url=figures_url(settings, name, window),
        retrain=retrain,
    )
    publish_summary(settings, summary)
    log_to_mlflow(settings, summary)
    record_history(settings, context, snapshot)
    get_run_logger().info("%s: %s; retrain %s", summary.verdict.status, "; ".join(verdict.reasons), retrain)
    return summary


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.monitor [options]`: monitor once (`--help` lists the options)."""
    run_command(lambda: run_flow(monitor_model, command_parameters("monitor", argv)))


if __name__ == "__main__":
    main()
