"""What a monitor run found in one window, as its tasks returned it: the input of the summary and event."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from monitoring.drift.window_reports import DriftFigures
from monitoring.logs.reader import PredictionLogs
from monitoring.logs.window import Window
from monitoring.quality.figures import QualityFigures
from monitoring.verdict.decision import Verdict


@dataclass(frozen=True)
class ReportLocations:
    """Where the window's reports were stored, and the links a browser opens."""

    report_url: str | None = None
    quality_report_url: str | None = None
    report_link: str | None = None
    quality_report_link: str | None = None


@dataclass(frozen=True)
class WindowFindings:
    """One window's logs, labels, quality, drift, verdict and reports for one compared champion."""

    model_name: str
    model_version: str
    excluded_features: tuple[str, ...]
    window: Window
    logs: PredictionLogs
    labelled_rows: int
    labels_set_aside: dict[str, int]
    quality: QualityFigures
    drift: DriftFigures | None
    verdict: Verdict
    reports: ReportLocations

    @property
    def drift_share(self) -> float | None:
        """Share of the verdict's inputs that drifted (None without rows)."""
        return None if self.drift is None else self.drift.drift_share

    @property
    def weighted_drift(self) -> float | None:
        """Importance share of the verdict's inputs that drifted (None without rows)."""
        return None if self.drift is None else self.drift.weighted_drift

    @property
    def prediction_drift(self) -> float | None:
        """The drift score of the predictions (None without rows)."""
        return None if self.drift is None or self.drift.prediction is None else self.drift.prediction.score

    @property
    def drifted_features(self) -> list[dict[str, Any]]:
        """Drifted inputs of the verdict as plain dicts, most important first."""
        return [] if self.drift is None else [asdict(item) for item in self.drift.drifted]
