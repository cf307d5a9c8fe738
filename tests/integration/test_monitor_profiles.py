"""Every row of a window counts: the monitor profiles all rows, stores closed hours once, reuses them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from deployments.lambda_handler.contract import prediction_key
from flows.monitor import monitor_model
from monitoring.drift.report_html import read_html
from monitoring.drift.window_reports import DriftFigures, DriftThresholds, ReportSubject, build_drift_report
from monitoring.labels.commands import upload_labels
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from tasks.core.settings import load_settings
from tasks.registry.model_files import load_model_context
from tests.support.handler import load_handler, logged_files
from tests.support.traffic import reference_traffic, send
from tests.support.training import monitor_settings, ridge_champion

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
MODEL = "ames-profiles"
ROW_CAP = 100  # the smallest sample the settings allow: the window below holds three times as many rows
WASSERSTEIN_TOLERANCE = 0.005


@pytest.fixture(scope="module")
def champion(
    ames_csv: Path, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    return ridge_champion(tmp_path_factory, tracking_uri, ames_csv, MODEL)


@pytest.fixture
def storage(champion: tuple[Path, Path], mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    store = mlops_env / "storage"
    return monitor_settings(monkeypatch, champion[0], store, MODEL, MLOPS_MONITOR_ROW_CAP=str(ROW_CAP))


@pytest.fixture
def app(champion: tuple[Path, Path], storage: Path) -> ModuleType:
    return load_handler(champion[1], storage)


def _exact_figures(storage: Path, window: Window) -> DriftFigures:
    """Evidently's drift figures on every row of the window, read without a cap."""
    settings = load_settings()
    context = load_model_context(settings, MODEL)
    rows = LogReader(storage.as_uri(), MODEL, context.schema, row_cap=10**9).read(window).frame
    subject = ReportSubject(MODEL, context.version, window)
    thresholds = DriftThresholds(drift=load_settings().drift_threshold)
    _, figures = build_drift_report(
        rows, context.reference, context.schema, thresholds, subject, context.importance
    )
    return figures


def test_a_window_above_the_row_cap_counts_every_row_and_every_label(
    app: ModuleType, champion: tuple[Path, Path], storage: Path
) -> None:
    instances, actuals = reference_traffic(champion[1], 300, seed=3, sample="holdout.parquet")
    answers = send(app, instances, per_request=1)
    ids = [answer["request_id"] for answer in answers]
    upload_labels(pd.DataFrame({"request_id": ids, "actual": actuals}), storage.as_uri(), MODEL, "regression")
    summary = monitor_model()
    assert summary.rows == 300  # every row, not the sample of ROW_CAP
    assert summary.labelled_rows == 300
    assert summary.live_metrics["rmse"] > 0
    window = Window(summary.window_start, summary.window_end)
    exact = _exact_figures(storage, window)
    assert exact.rows == 300
    assert summary.drift_share == pytest.approx(exact.drift_share)
    assert summary.weighted_drift == pytest.approx(exact.weighted_drift)
    assert summary.prediction_drift == pytest.approx(exact.prediction.score, abs=WASSERSTEIN_TOLERANCE)
    drifted = {item.column: item.score for item in exact.drifted}
    assert {item["column"] for item in summary.drifted_features} == set(drifted)
    for item in summary.drifted_features:
        assert item["score"] == pytest.approx(drifted[item["column"]], abs=WASSERSTEIN_TOLERANCE)
    html = read_html(summary.report_url)
    assert f"a sample of {ROW_CAP} of 300 rows" in html
    assert "all 300 rows" in html


def _move_to(storage: Path, hour: datetime) -> int:
    """Move every logged object into `hour`, its records stamped inside it; returns the rows moved."""
    moved = 0
    for number, path in enumerate(logged_files(storage)):
        lines = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            at = hour + timedelta(seconds=number)
            record["timestamp"] = at.isoformat().replace("+00:00", "Z")
            lines.append(json.dumps(record))
            moved += 1
        target = storage / prediction_key(MODEL, json.loads(lines[0])["request_id"], at)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines) + "\n")
        path.unlink()
    return moved


def test_closed_hours_are_profiled_once_and_a_corrupt_profile_is_read_again(
    app: ModuleType, champion: tuple[Path, Path], storage: Path
) -> None:
    instances, _ = reference_traffic(champion[1], 240, seed=4)
    send(app, instances, per_request=2)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    assert _move_to(storage, hour) == 240
    window = Window(hour, hour + timedelta(hours=1))
    first = monitor_model(start=window.start, end=window.end)
    assert first.rows == 240
    stored = sorted((storage / "profiles" / MODEL).rglob("profile.json"))
    assert len(stored) == 1
    assert f"dt={hour:%Y-%m-%d}/hour={hour:%H}" in str(stored[0])
    # the hour's logs are gone (expired, say): its stored profile still counts every row
    for path in logged_files(storage):
        path.unlink()
    for path in (storage / "predictions-compacted").rglob("*.parquet"):
        path.unlink()
    second = monitor_model(start=window.start, end=window.end)
    assert second.rows == 240
    assert (second.drift_share, second.weighted_drift) == (first.drift_share, first.weighted_drift)
    assert (second.prediction_drift, second.drifted_features) == (
        first.prediction_drift,
        first.drifted_features,
    )
    # a corrupt profile is set aside and its hour read again (here: nothing left to read)
    stored[0].write_text('{"profile": ')
    third = monitor_model(start=window.start, end=window.end)
    assert third.rows == 0
    assert third.verdict.status == "no_verdict"
