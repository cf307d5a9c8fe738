"""The ensemble candidate: averaged out-of-fold scores rank it, and it exports to ONNX like a family."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks.core.dataset_spec import AMES_SPEC, DatasetSpec
from tasks.learning.candidate_selection import fit_candidate, rank_candidates, select_deployable
from tasks.learning.cross_validation import cv_folds
from tasks.learning.data import prepare_data, read_table
from tasks.learning.ensemble import ENSEMBLE, ensemble_candidate
from tasks.learning.split import split_data


def _prepared(csv: Path, spec: DatasetSpec):
    data = prepare_data(read_table(str(csv), spec.missing_values), spec, str(csv), 50)
    return data, split_data(data, None, 0.2, 42)


@pytest.mark.parametrize("kind", ["regression", "classification"])
def test_the_average_of_the_best_families_competes_and_exports(
    kind: str, ames_csv: Path, breast_cancer_csv: Path
) -> None:
    if kind == "regression":
        data, split = _prepared(ames_csv, AMES_SPEC)
        families = ["ridge", "lightgbm", "gradient_boosting"]
    else:
        spec = DatasetSpec(name="cancer", target="target", task="classification", drop=[], categorical=[])
        data, split = _prepared(breast_cancer_csv, spec)
        families = ["logistic_regression", "random_forest", "lightgbm"]
    folds = cv_folds(data, split, 0)
    singles = [fit_candidate(family, data, split, 0, folds=folds) for family in families]
    ensemble = ensemble_candidate(singles, data, split)
    assert ensemble is not None
    members = ensemble.params["members"].split("+")
    best = rank_candidates(singles, data)
    assert members == [candidate.family for candidate in best[: len(members)]]
    # its cross-validated score is that of its members' averaged out-of-fold scores
    average = np.mean([c.cross_validation.scores for c in best[: len(members)]], axis=0)
    np.testing.assert_allclose(ensemble.cross_validation.scores, average)
    assert rank_candidates([*singles, ensemble], data)[0].family == ENSEMBLE
    deployable = select_deployable([ensemble], data, split.holdout, 1e-4)
    assert deployable.parity.rows == len(split.holdout)
    assert deployable.onnx_metrics[data.metric] == pytest.approx(ensemble.metrics[data.metric], rel=1e-4)


def test_no_ensemble_when_no_average_beats_the_best_family(ames_csv: Path) -> None:
    data, split = _prepared(ames_csv, AMES_SPEC)
    folds = cv_folds(data, split, 0)
    singles = [fit_candidate("ridge", data, split, 0, folds=folds)]
    assert ensemble_candidate(singles, data, split) is None
