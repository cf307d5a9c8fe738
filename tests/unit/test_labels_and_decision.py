"""Ground-truth labels, the drift verdict and the retrain guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from monitoring.decision import Evidence, Policy, decide
from monitoring.labels import LabelError, join_labels, read_labels, upload_labels
from monitoring.retrain_guard import check_guard, last_trigger, record_trigger
from monitoring.window import Window


def test_labels_round_trip_and_later_uploads_win(tmp_path: Path) -> None:
    root = tmp_path.as_uri()
    upload_labels(pd.DataFrame({"request_id": ["a", "b"], "actual": [100.0, 200.0]}), root, "m", "regression")
    upload_labels(pd.DataFrame({"request_id": ["b"], "row": [0], "actual": [250.0]}), root, "m", "regression")
    labels = read_labels(root, "m", Window.last(1))
    assert labels.set_index("request_id")["actual"].to_dict() == {"a": 100.0, "b": 250.0}
    logs = pd.DataFrame({"request_id": ["a", "b", "c"], "row": [0, 0, 0], "prediction": [1.0, 2.0, 3.0]})
    joined = join_labels(logs, labels)
    assert joined["actual"].tolist()[:2] == [100.0, 250.0]
    assert pd.isna(joined["actual"].iloc[2])


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"request_id": ["a"]}), "missing: actual"),
        (pd.DataFrame({"id": ["a"], "actual": [1]}), "missing: request_id"),
        (
            pd.DataFrame({"request_id": ["a"], "actual": ["cheap"]}),
            "must be a finite number \\(row 1: 'cheap'\\)",
        ),
        (pd.DataFrame({"request_id": ["a"], "row": [-1], "actual": [1.0]}), "non-negative integers"),
        (pd.DataFrame({"request_id": [None], "actual": [1.0]}), "empty request_id or actual"),
    ],
)
def test_bad_label_files_are_refused_and_nothing_is_written(
    tmp_path: Path, frame: pd.DataFrame, message: str
) -> None:
    with pytest.raises(LabelError, match=message):
        upload_labels(frame, tmp_path.as_uri(), "m", "regression")
    assert not any(tmp_path.rglob("*.jsonl"))


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
