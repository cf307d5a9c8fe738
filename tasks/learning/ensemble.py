"""The ensemble candidate: the average of the best families, when cross-validation says it is better.

Members are the fitted candidates ranked best by their cross-validated primary metric. The
ensemble's own cross-validated score is that of the averaged out-of-fold scores of its
members (the same folds, so no row is ever scored by a model that saw it), and it competes
with the single families on that score. It is scikit-learn's `VotingRegressor` (or soft-voting
`VotingClassifier`) over the already fitted pipelines, which skl2onnx converts like any other.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch

from tasks.core.metric_names import best_first
from tasks.core.metrics import holdout_metrics
from tasks.learning.candidate_selection import FittedCandidate, rank_candidates
from tasks.learning.cross_validation import TrialScore
from tasks.learning.data import PreparedData
from tasks.learning.onnx_export import pipeline_scores
from tasks.learning.split import Split

ENSEMBLE = "ensemble"
MEMBER_COUNTS = (2, 3)  # averages of the best two, then the best three


def voting_model(members: list[FittedCandidate], data: PreparedData) -> VotingRegressor | VotingClassifier:
    """A voting model over pipelines that are already fitted (nothing is refitted)."""
    pipelines = [(member.family, member.pipeline) for member in members]
    if data.task == "regression":
        model: VotingRegressor | VotingClassifier = VotingRegressor(pipelines)
    else:
        model = VotingClassifier(pipelines, voting="soft", flatten_transform=False)
        model.le_ = LabelEncoder().fit(members[0].pipeline.classes_)
        model.classes_ = model.le_.classes_
    model.estimators_ = [pipeline for _, pipeline in pipelines]
    model.named_estimators_ = Bunch(**dict(pipelines))
    model.feature_names_in_ = members[0].pipeline.feature_names_in_
    return model


def _averaged(members: list[FittedCandidate], data: PreparedData, split: Split) -> TrialScore | None:
    """The members' averaged out-of-fold scores, or None when they were not scored on the same rows."""
    rows: np.ndarray | None = None
    columns: list[np.ndarray] = []
    for member in members:
        score = member.cross_validation
        if score is None or score.rows is None or score.scores is None:
            return None
        if rows is not None and not np.array_equal(score.rows, rows):
            return None
        rows = score.rows
        columns.append(score.scores)
    if rows is None:
        return None
    mean = np.mean(columns, axis=0)
    actual = split.train[data.target].to_numpy()[rows]
    return TrialScore(holdout_metrics(data.task, actual, mean), 0.0, rows, mean)


def ensemble_candidate(
    candidates: list[FittedCandidate], data: PreparedData, split: Split
) -> FittedCandidate | None:
    """The best average of the top families if its cross-validated score beats every single family's."""
    ranked = [candidate for candidate in rank_candidates(candidates, data) if candidate.cross_validation]
    if len(ranked) < min(MEMBER_COUNTS):
        return None
    averages = []
    for members in (ranked[:count] for count in MEMBER_COUNTS if count <= len(ranked)):
        score = _averaged(members, data, split)
        if score is None:
            return None
        averages.append((best_first(data.metric, score.metrics[data.metric]), members, score))
    key, members, score = min(averages, key=lambda average: average[0])
    if key >= best_first(data.metric, ranked[0].cv_metrics[data.metric]):
        return None
    model = voting_model(members, data)
    holdout = pipeline_scores(model, split.holdout[data.features], data.task)
    metrics = holdout_metrics(data.task, split.holdout[data.target].to_numpy(), holdout)
    params = {"members": "+".join(member.family for member in members)}
    seconds = sum(member.fit_seconds for member in members)
    return FittedCandidate(ENSEMBLE, model, metrics, seconds, params, None, score)
