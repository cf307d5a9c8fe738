"""The monitoring verdict: no verdict, no drift, or drift (which starts a retrain)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class Verdict(BaseModel):
    """What the monitor concluded about a window, and why."""

    status: Literal["no_verdict", "ok", "drift"]
    retrain: bool
    reasons: list[str]


def decide(
    rows: int,
    min_rows: int,
    drift_share: float | None,
    drift_threshold: float,
    quality_drop: float | None = None,
    max_quality_drop: float | None = None,
) -> Verdict:
    """Drift when the drifted-feature share exceeds its threshold or live quality fell too far.

    `quality_drop` is how much worse the live primary metric is than the champion's holdout
    value, as a fraction; it is None until enough labels have arrived.
    """
    if rows < min_rows or drift_share is None:
        return Verdict(
            status="no_verdict",
            retrain=False,
            reasons=[f"only {rows} rows in the window; at least {min_rows} are needed for a verdict"],
        )
    reasons = []
    if drift_share > drift_threshold:
        reasons.append(
            f"drifted-feature share {drift_share:.1%} is above the threshold {drift_threshold:.1%}"
        )
    if quality_drop is not None and max_quality_drop is not None and quality_drop > max_quality_drop:
        reasons.append(
            f"live quality is {quality_drop:.1%} worse than on the holdout (allowed {max_quality_drop:.1%})"
        )
    if reasons:
        return Verdict(status="drift", retrain=True, reasons=reasons)
    summary = f"drifted-feature share {drift_share:.1%} is within the threshold {drift_threshold:.1%}"
    if quality_drop is not None:
        summary += f"; live quality within {max_quality_drop:.1%} of the holdout"
    return Verdict(status="ok", retrain=False, reasons=[summary])
