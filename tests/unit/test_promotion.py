import pytest

from tasks.promotion import decide_promotion


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
