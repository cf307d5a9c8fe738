"""The drift verdict and the retrain guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitoring.verdict.decision import Evidence, Policy, decide
from monitoring.verdict.retrain_guard import check_guard, last_trigger, record_trigger

WEIGHTED = Policy(min_rows=100, drift_measure="weighted", drift_threshold=0.15, max_quality_drop=0.2)
SHARE = Policy(min_rows=100, drift_measure="share", drift_threshold=0.15, max_quality_drop=0.2)


def test_verdicts_follow_the_chosen_drift_measure() -> None:
    assert decide(Evidence(10, None, None), WEIGHTED).status == "no_verdict"
    assert "only 10 rows" in decide(Evidence(10, 0.9, 0.9), WEIGHTED).reasons[0]
    # many unimportant inputs drifted: the share says drift, the weighted measure does not
    unimportant = Evidence(500, drift_share=0.4, weighted_drift=0.05)
    assert (decide(unimportant, WEIGHTED).status, decide(unimportant, WEIGHTED).retrain) == ("ok", False)
    assert decide(unimportant, SHARE).retrain
    assert "drifted-input share 40.0%" in decide(unimportant, SHARE).reasons[0]
    # one input the model leans on drifted
    important = Evidence(500, drift_share=0.02, weighted_drift=0.45)
    drift = decide(important, WEIGHTED)
    assert (drift.status, drift.retrain) == ("drift", True)
    assert "weighted drift (importance share of drifted inputs) 45.0%" in drift.reasons[0]
    assert decide(Evidence(500, 0.15, 0.15), WEIGHTED).status == "ok"  # must exceed the threshold


def test_quality_verdicts_use_labels_once_they_arrive_and_the_estimate_before() -> None:
    live = decide(Evidence(500, 0.0, 0.0, live_drop=0.3), WEIGHTED)
    assert live.retrain
    assert "live quality is 30.0% worse" in live.reasons[0]
    estimated = decide(Evidence(500, 0.0, 0.0, estimated_drop=0.3), WEIGHTED)
    assert estimated.retrain
    assert "estimated quality (no labels yet) is 30.0% worse" in estimated.reasons[0]
    # labels that show the model is fine overrule an estimate that feared the worst
    assert not decide(Evidence(500, 0.0, 0.0, live_drop=0.05, estimated_drop=0.3), WEIGHTED).retrain
    assert (
        "estimated quality within" in decide(Evidence(500, 0.0, 0.0, estimated_drop=0.1), WEIGHTED).reasons[0]
    )


def test_guard_cooldown_and_in_flight(tmp_path: Path) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    cooldown = timedelta(hours=6)
    assert check_guard(None, now, cooldown, 0).allowed
    assert not check_guard(None, now, cooldown, 1).allowed
    record_trigger(tmp_path.as_uri(), "m", now, {"window": "w"})
    state = last_trigger(tmp_path.as_uri(), "m")
    assert state["window"] == "w"
    assert not check_guard(state, now + timedelta(hours=1), cooldown, 0).allowed
    assert "cooldown" in check_guard(state, now + timedelta(hours=1), cooldown, 0).reason
    assert check_guard(state, now + timedelta(hours=7), cooldown, 0).allowed


def test_an_unreliable_estimate_never_decides_the_verdict_alone() -> None:
    unreliable = decide(Evidence(500, 0.0, 0.0, estimated_drop=0.3, estimate_reliable=False), WEIGHTED)
    assert (unreliable.status, unreliable.retrain) == ("ok", False)
    assert "estimated quality (no labels yet) is 30.0% worse" in unreliable.reasons[1]
    assert "the estimate is unreliable" in unreliable.reasons[1]
    assert "does not decide the verdict alone" in unreliable.reasons[1]
    # drift found otherwise still decides, and the unreliable estimate is noted beside it
    drifted = decide(Evidence(500, 0.0, 0.4, estimated_drop=0.3, estimate_reliable=False), WEIGHTED)
    assert drifted.retrain
    assert "weighted drift" in drifted.reasons[0]
    assert "unreliable" in drifted.reasons[1]
    # a small estimated drop from an unreliable estimate says which estimate it was
    small = decide(Evidence(500, 0.0, 0.0, estimated_drop=0.1, estimate_reliable=False), WEIGHTED)
    assert "(an unreliable estimate)" in small.reasons[0]
    # labels decide as before
    assert decide(Evidence(500, 0.0, 0.0, live_drop=0.3, estimate_reliable=False), WEIGHTED).retrain
