"""The drift event a monitor run emits: its name and its typed payload.

`prefect.yaml` (the train deployment's trigger) reads `model_name` and `production_hours`;
the notification template reads `model_name`, `champion_version`, `reasons`, `window_start`,
`window_end` and `report_link`. Every field is documented in the README's drift-event table.
"""

from __future__ import annotations

from pydantic import BaseModel

from monitoring.publish.findings import WindowFindings
from tasks.core.settings import DriftMeasure

DRIFT_EVENT = "loopml.model.drift-detected"


class DriftEvent(BaseModel):
    """The payload of a drift event: which model drifted, why, and where the report is."""

    model_name: str
    champion_version: str
    drift_share: float | None
    weighted_drift: float | None
    drift_measure: DriftMeasure
    threshold: float
    estimated_metrics: dict[str, float]
    window_start: str  # ISO 8601
    window_end: str
    report_url: str | None
    report_link: str | None
    reasons: list[str]
    production_hours: float  # labelled production rows a retrain adds, looking back this many hours

    @classmethod
    def for_window(
        cls,
        findings: WindowFindings,
        *,
        drift_measure: DriftMeasure,
        threshold: float,
        production_hours: float,
    ) -> DriftEvent:
        """The event of a window whose verdict asks for a retrain."""
        return cls(
            model_name=findings.model_name,
            champion_version=findings.model_version,
            drift_share=findings.drift_share,
            weighted_drift=findings.weighted_drift,
            drift_measure=drift_measure,
            threshold=threshold,
            estimated_metrics=findings.quality.estimated,
            window_start=findings.window.start.isoformat(),
            window_end=findings.window.end.isoformat(),
            report_url=findings.reports.report_url,
            report_link=findings.reports.report_link,
            reasons=findings.verdict.reasons,
            production_hours=production_hours,
        )
