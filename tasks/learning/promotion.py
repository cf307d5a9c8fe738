"""The promotion gate: a new model becomes champion only if it is better by a margin.

In a drift retrain it must also not lose to the champion on the recent slice: the newest
labelled production rows, held out from fitting.
"""

from __future__ import annotations

from pydantic import BaseModel

from tasks.learning.shadow import ShadowCheck


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
    bootstrap_share: float | None = None  # paired resamples of the holdout in which the candidate wins
    confidence: float = 0.0  # the share it needs (0: not checked)
    top_error_rows: int = 0
    top_error_share: float | None = None  # of the candidate's holdout loss, carried by its largest errors
    candidate_interval: tuple[float, float] | None = None  # its holdout score over 90% of resamples
    shadow: ShadowCheck | None = None  # the challenger on the last window's logged requests


def apply_shadow_check(decision: PromotionDecision, shadow: ShadowCheck) -> PromotionDecision:
    """The decision with the shadow check: a promotion stands only if the challenger did not fail it."""
    promoted, reason = decision.promoted, decision.reason
    if shadow.passed is None:
        reason += f"; shadow check not compared: {shadow.note or 'no estimate'}"
    else:
        mine, theirs = shadow.challenger_estimate, shadow.champion_estimate
        verdict = "within" if shadow.passed else "worse than"
        reason += (
            f"; on {shadow.rows} logged requests of {shadow.window} its estimated {shadow.metric} "
            f"{mine:.6g} is {verdict} the champion's {theirs:.6g} (tolerance {shadow.tolerance:.0%})"
        )
        promoted = promoted and shadow.passed
    return decision.model_copy(update={"promoted": promoted, "reason": reason, "shadow": shadow})


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
    bootstrap_share: float | None = None,
    confidence: float = 0.0,
    concentration: tuple[int, float] | None = None,
    interval: tuple[float, float] | None = None,
) -> PromotionDecision:
    """Promote when there is no champion, or when the candidate beats it by more than `margin`.

    Both scores come from the same holdout rows, so an equal score (the same data and code
    trained twice) is not an improvement and the champion stays. With `recent` scores the
    candidate must also not be worse than the champion on the recent slice (a tie passes).
    With a `bootstrap_share` and a `confidence` above 0 it must also win in at least that share
    of paired resamples of the holdout: a gain within the holdout's noise is a tie, not a win.
    `concentration` (rows, share) is reported: how much of the loss the largest errors carry, and
    so is `interval`, the candidate's score over 90% of resamples of the holdout.
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
        "bootstrap_share": bootstrap_share,
        "confidence": confidence,
        "top_error_rows": 0 if concentration is None else concentration[0],
        "top_error_share": None if concentration is None else concentration[1],
        "candidate_interval": interval,
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
    if bootstrap_share is not None and confidence > 0:
        sure = bootstrap_share >= confidence
        promoted = promoted and sure
        reason += (
            f"; it wins in {bootstrap_share:.0%} of paired resamples of the holdout "
            f"({'at least' if sure else 'fewer than'} the {confidence:.0%} needed)"
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
    if decision.bootstrap_share is not None:
        lines += [
            "",
            (
                f"Paired bootstrap of the holdout: the candidate wins in {decision.bootstrap_share:.0%} "
                f"of resamples (needs {decision.confidence:.0%})."
            ),
        ]
    if decision.top_error_share is not None:
        lines += [
            "",
            (
                f"The candidate's {decision.top_error_rows} largest holdout errors carry "
                f"{decision.top_error_share:.0%} of its {decision.metric} loss."
            ),
        ]
    if decision.candidate_interval is not None:
        low, high = decision.candidate_interval
        lines += [
            "",
            (
                f"Over resamples of the holdout rows the candidate's {decision.metric} lies between "
                f"{low:.6g} and {high:.6g} in 90% of them: differences inside that range may be the "
                "rows', not the model's."
            ),
        ]
    if recent.note:
        lines += ["", f"Recent check skipped: {recent.note}."]
    if decision.shadow is not None:
        lines += ["", *shadow_lines(decision.shadow)]
    return "\n".join(lines)


def shadow_lines(shadow: ShadowCheck) -> list[str]:
    """The shadow check as a Markdown table, or why it compared nothing."""

    def cell(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.6g}"

    head = f"Shadow check on {shadow.rows} logged requests of {shadow.window}"
    if shadow.passed is None and shadow.challenger_estimate is None:
        return [f"{head}: not compared ({shadow.note or 'no estimate'})."]
    agreement = "n/a" if shadow.agreement is None else f"{shadow.agreement:.0%}"
    if shadow.passed is None:
        notes = ["", f"Not compared: {shadow.note}."]
    else:
        notes = ["", f"{shadow.note[0].upper()}{shadow.note[1:]}."] if shadow.note else []
    return [
        f"{head}: answers agree on {agreement} of them.",
        *notes,
        "",
        f"| {shadow.metric} | estimated | realized ({shadow.labelled_rows} labelled) |",
        "| --- | --- | --- |",
        f"| challenger | {cell(shadow.challenger_estimate)} | {cell(shadow.challenger_realized)} |",
        f"| champion | {cell(shadow.champion_estimate)} | {cell(shadow.champion_realized)} |",
    ]
