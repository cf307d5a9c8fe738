"""The promotion gate: a new model becomes champion only if it is better by a margin.

In a drift retrain it must also not lose to the champion on the recent slice: the newest
labelled production rows, held out from fitting.
"""

from __future__ import annotations

from pydantic import BaseModel


class RecentCheck(BaseModel):
    """Both models' primary metric on the recent slice, or why the slice was not scored."""

    rows: int = 0
    candidate_score: float | None = None
    champion_score: float | None = None
    note: str = ""  # why a drift retrain's recent slice was not scored
    passed: bool | None = None  # the candidate does not lose there (None: not compared)


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
    recent: RecentCheck = RecentCheck()


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
    recent: RecentCheck | None = None,
) -> PromotionDecision:
    """Promote when there is no champion, or when the candidate beats it by more than `margin`.

    Both scores come from the same holdout rows, so an equal score (the same data and code
    trained twice) is not an improvement and the champion stays. With `recent` scores the
    candidate must also not be worse than the champion on the recent slice (a tie passes).
    """
    recent = recent or RecentCheck()
    if recent.candidate_score is not None and recent.champion_score is not None:
        recent_gain = relative_improvement(
            recent.candidate_score, recent.champion_score, higher_is_better=higher_is_better
        )
        recent = recent.model_copy(update={"passed": recent_gain >= 0})
    common = {
        "metric": metric,
        "higher_is_better": higher_is_better,
        "margin": margin,
        "candidate_score": candidate_score,
        "champion_score": champion_score,
        "champion_version": champion_version,
        "recent": recent,
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
    if recent.passed is not None:
        promoted = promoted and recent.passed
        reason += (
            f"; on the {recent.rows} newest production rows it "
            f"{'does not lose' if recent.passed else 'loses'} to the champion "
            f"({metric}={recent.candidate_score:.6g} vs {recent.champion_score:.6g})"
        )
    elif recent.note:
        reason += f"; recent check skipped: {recent.note}"
    return PromotionDecision(promoted=promoted, reason=reason, **common)


def promotion_markdown(decision: PromotionDecision, family: str) -> str:
    """The gate's Prefect artifact: the verdict, the reason and both models' scores."""
    recent = decision.recent
    shown = recent.rows > 0 or bool(recent.note)  # a drift retrain: show the recent column

    def row(name: str, holdout: float | None, recent_score: float | None) -> str:
        cells = ["none" if holdout is None else f"{holdout:.6g}"]
        if shown:
            cells.append("not scored" if recent_score is None else f"{recent_score:.6g}")
        return f"| {name} | {' | '.join(cells)} |"

    champion = "champion" if decision.champion_version is None else f"champion (v{decision.champion_version})"
    recent_header = f" {recent.rows or 'no'} newest production rows |" if shown else ""
    lines = [
        f"# {'Promoting' if decision.promoted else 'Keeping the champion'}",
        "",
        decision.reason,
        "",
        f"| {decision.metric} | same holdout |{recent_header}",
        "| --- | --- |" + (" --- |" if shown else ""),
        row(f"candidate ({family})", decision.candidate_score, recent.candidate_score),
        row(champion, decision.champion_score, recent.champion_score),
        f"| rule | better by > {decision.margin:.2%} |" + (" not worse |" if shown else ""),
    ]
    if recent.note:
        lines += ["", f"Recent check skipped: {recent.note}."]
    return "\n".join(lines)
