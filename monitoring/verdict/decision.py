"""The monitoring verdict: no verdict, no drift, or drift (which starts a retrain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from tasks.core.settings import DriftMeasure

MEASURE_TEXT: dict[DriftMeasure, str] = {
    "weighted": "weighted drift (importance share of drifted inputs)",
    "share": "drifted-input share",
}


class Verdict(BaseModel):
    """What the monitor concluded about a window, and why."""

    status: Literal["no_verdict", "ok", "drift"]
    retrain: bool
    reasons: list[str]


@dataclass(frozen=True)
class Evidence:
    """What a window showed. Quality drops are fractions: how much worse than on the holdout."""

    rows: int
    drift_share: float | None
    weighted_drift: float | None
    live_drop: float | None = None  # from labelled rows; None until enough labels arrived
    estimated_drop: float | None = None  # estimated without labels (DLE or CBPE)
    estimate_reliable: bool = True  # False where the window left the holdout's support


@dataclass(frozen=True)
class Policy:
    """When a window counts as drift."""

    min_rows: int
    drift_measure: DriftMeasure
    drift_threshold: float
    max_quality_drop: float


def _quality_reasons(evidence: Evidence, allowed: float) -> list[str]:
    """Realized quality decides once labels are in; until then a reliable estimate does."""
    limit = f"than on the holdout (allowed {allowed:.1%})"
    if evidence.live_drop is not None:
        return (
            [f"live quality is {evidence.live_drop:.1%} worse {limit}"]
            if evidence.live_drop > allowed
            else []
        )
    drop = evidence.estimated_drop
    if drop is not None and drop > allowed and evidence.estimate_reliable:
        return [f"estimated quality (no labels yet) is {drop:.1%} worse {limit}"]
    return []


def _unreliable_note(evidence: Evidence, allowed: float) -> list[str]:
    """What an unreliable estimate of a drop would have said, and why it does not decide."""
    drop = evidence.estimated_drop
    if evidence.live_drop is not None or drop is None or evidence.estimate_reliable or drop <= allowed:
        return []
    return [
        (
            f"estimated quality (no labels yet) is {drop:.1%} worse than on the holdout (allowed "
            f"{allowed:.1%}), but the estimate is unreliable (the window left the holdout's support), "
            "so it does not decide the verdict alone"
        )
    ]


def decide(evidence: Evidence, policy: Policy) -> Verdict:
    """Drift when the chosen drift measure exceeds its threshold or quality (live, else estimated) fell."""
    measured = evidence.weighted_drift if policy.drift_measure == "weighted" else evidence.drift_share
    if evidence.rows < policy.min_rows or measured is None:
        return Verdict(
            status="no_verdict",
            retrain=False,
            reasons=[f"only {evidence.rows} rows in the window; at least {policy.min_rows} are needed"],
        )
    name = MEASURE_TEXT[policy.drift_measure]
    reasons = []
    if measured > policy.drift_threshold:
        reasons.append(f"{name} {measured:.1%} is above the threshold {policy.drift_threshold:.1%}")
    reasons += _quality_reasons(evidence, policy.max_quality_drop)
    note = _unreliable_note(evidence, policy.max_quality_drop)
    if reasons:
        return Verdict(status="drift", retrain=True, reasons=reasons + note)
    summary = f"{name} {measured:.1%} is within the threshold {policy.drift_threshold:.1%}"
    if evidence.live_drop is not None:
        summary += f"; live quality within {policy.max_quality_drop:.1%} of the holdout"
    elif evidence.estimated_drop is not None and not note:
        reliability = "" if evidence.estimate_reliable else " (an unreliable estimate)"
        summary += f"; estimated quality within {policy.max_quality_drop:.1%} of the holdout{reliability}"
    return Verdict(status="ok", retrain=False, reasons=[summary, *note])
