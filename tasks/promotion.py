"""The promotion gate: a new model becomes champion only if it is better by a margin."""

from __future__ import annotations

from pydantic import BaseModel


class PromotionDecision(BaseModel):
    """Whether a candidate replaces the champion, with both scores and the reason."""

    promoted: bool
    reason: str
    metric: str
    higher_is_better: bool
    margin: float
    candidate_score: float
    champion_score: float | None = None
    champion_version: str | None = None


def relative_improvement(candidate: float, champion: float, *, higher_is_better: bool) -> float:
    """How much better the candidate is, as a fraction of the champion's score."""
    gain = candidate - champion if higher_is_better else champion - candidate
    return gain / max(abs(champion), 1e-12)


def decide_promotion(
    metric: str,
    candidate_score: float,
    champion_score: float | None,
    champion_version: str | None,
    *,
    higher_is_better: bool,
    margin: float,
) -> PromotionDecision:
    """Promote when there is no champion, or when the candidate beats it by more than `margin`.

    Both scores come from the same holdout rows, so an equal score (the same data and code
    trained twice) is not an improvement and the champion stays.
    """
    common = {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "margin": margin,
        "candidate_score": candidate_score,
        "champion_score": champion_score,
        "champion_version": champion_version,
    }
    if champion_score is None:
        return PromotionDecision(promoted=True, reason="no champion yet", **common)
    improvement = relative_improvement(candidate_score, champion_score, higher_is_better=higher_is_better)
    promoted = improvement > margin
    verdict = "beats" if promoted else "does not beat"
    reason = (
        f"candidate {metric}={candidate_score:.6g} {verdict} champion v{champion_version} "
        f"{metric}={champion_score:.6g} by more than {margin:.2%} "
        f"(improvement {improvement:+.2%})"
    )
    return PromotionDecision(promoted=promoted, reason=reason, **common)
