import pytest

from tasks.learning.promotion import RecentCheck, decide_promotion, promotion_markdown


def _decide(candidate: float, champion: float | None, *, higher: bool = False, margin: float = 0.0):
    return decide_promotion(
        "rmse",
        candidate,
        champion,
        None if champion is None else "3",
        higher_is_better=higher,
        margin=margin,
    )


def test_first_model_is_promoted() -> None:
    decision = _decide(25_000.0, None)
    assert decision.promoted
    assert decision.reason == "no champion yet"


def test_better_model_is_promoted_and_both_scores_are_kept() -> None:
    decision = _decide(24_000.0, 25_000.0)
    assert decision.promoted
    assert (decision.candidate_score, decision.champion_score, decision.champion_version) == (
        24_000.0,
        25_000.0,
        "3",
    )
    assert "beats champion v3" in decision.reason


def test_worse_model_is_not_promoted() -> None:
    decision = _decide(26_000.0, 25_000.0)
    assert not decision.promoted
    assert "does not beat champion v3" in decision.reason


def test_equal_model_is_not_promoted() -> None:
    assert not _decide(25_000.0, 25_000.0).promoted
    assert not _decide(0.95, 0.95, higher=True).promoted


def test_margin_must_be_exceeded() -> None:
    assert not _decide(24_000.0, 25_000.0, margin=0.05).promoted  # 4% better
    assert _decide(23_000.0, 25_000.0, margin=0.05).promoted  # 8% better


@pytest.mark.parametrize(("candidate", "promoted"), [(0.97, True), (0.95, False), (0.93, False)])
def test_higher_is_better_metrics(candidate: float, promoted: bool) -> None:
    assert _decide(candidate, 0.95, higher=True).promoted is promoted


def _recent(candidate: float, champion: float, rows: int = 40) -> RecentCheck:
    return RecentCheck(rows=rows, candidate_score=candidate, champion_score=champion)


def test_a_holdout_winner_that_loses_on_recent_traffic_is_refused() -> None:
    decision = decide_promotion(
        "rmse", 24_000.0, 25_000.0, "3", higher_is_better=False, margin=0.0, recent=_recent(31_000, 30_000)
    )
    assert not decision.promoted
    assert (decision.recent.candidate_score, decision.recent.champion_score) == (31_000, 30_000)
    assert decision.recent.passed is False
    assert decision.reason == (
        "candidate rmse=24000 beats champion v3 rmse=25000 by more than 0.00% (improvement +4.00%); "
        "on the 40 newest production rows it loses to the champion (rmse=31000 vs 30000)"
    )


@pytest.mark.parametrize(
    ("recent_candidate", "promoted"), [(29_000.0, True), (30_000.0, True), (30_001.0, False)]
)
def test_not_losing_on_recent_traffic_is_enough(recent_candidate: float, promoted: bool) -> None:
    recent = _recent(recent_candidate, 30_000.0)
    decision = decide_promotion(
        "rmse", 24_000.0, 25_000.0, "3", higher_is_better=False, margin=0.0, recent=recent
    )
    assert decision.promoted is promoted
    assert decision.recent.passed is promoted


def test_recent_traffic_cannot_rescue_a_holdout_loser() -> None:
    recent = _recent(0.99, 0.80)
    decision = decide_promotion("roc_auc", 0.90, 0.91, "3", higher_is_better=True, margin=0.0, recent=recent)
    assert not decision.promoted
    assert decision.recent.passed is True
    assert "does not beat champion v3" in decision.reason
    assert "it does not lose to the champion (roc_auc=0.99 vs 0.8)" in decision.reason


def test_a_skipped_recent_check_is_explained_and_the_holdout_decides() -> None:
    recent = RecentCheck(note="the 4 newest rows are too few")
    decision = decide_promotion(
        "rmse", 24_000.0, 25_000.0, "3", higher_is_better=False, margin=0.0, recent=recent
    )
    assert decision.promoted
    assert decision.recent.passed is None
    assert decision.reason.endswith("; recent check skipped: the 4 newest rows are too few")
    markdown = promotion_markdown(decision, "ridge")
    assert "| rmse | same holdout | no newest production rows |" in markdown
    assert "| candidate (ridge) | 24000 | not scored |" in markdown
    assert markdown.endswith("Recent check skipped: the 4 newest rows are too few.")


def test_the_artifact_shows_both_scores_on_both_slices() -> None:
    decision = decide_promotion(
        "rmse", 24_000.0, 25_000.0, "3", higher_is_better=False, margin=0.01, recent=_recent(31_000, 30_000)
    )
    lines = promotion_markdown(decision, "random_forest").splitlines()
    assert lines[0] == "# Keeping the champion"
    assert lines[4:] == [
        "| rmse | same holdout | 40 newest production rows |",
        "| --- | --- | --- |",
        "| candidate (random_forest) | 24000 | 31000 |",
        "| champion (v3) | 25000 | 30000 |",
        "| rule | better by > 1.00% | not worse |",
    ]


def test_a_run_without_production_rows_shows_the_holdout_only() -> None:
    markdown = promotion_markdown(_decide(24_000.0, None), "ridge")
    assert markdown.splitlines()[0] == "# Promoting"
    assert "| candidate (ridge) | 24000 |\n| champion | none |" in markdown
    assert "newest production rows" not in markdown
