"""How far a window's rows are from the holdout: a domain classifier and its density-ratio weights.

NannyML answers the limit of CBPE and DLE under covariate shift (M-CBPE, PAPE) by re-weighting
the reference towards the analysed rows with a classifier that tells the two apart: for a
holdout row x, p(window | x) / p(holdout | x) times n_holdout / n_window estimates the density
ratio window(x) / holdout(x). The classifier's probabilities are cross-fitted (out of fold), so
no row is weighed by a model that saw it, and their ROC AUC is a multivariate drift figure:
0.5 when the window looks like the holdout, 1 when the two do not overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

SEED = 0
FOLDS = 5
MAX_WINDOW_ROWS = 5_000  # the window rows the classifier learns from, drawn deterministically
PROBABILITY_CLIP = 0.005  # keeps each odds ratio finite: at most ~200 times the holdout's odds


@dataclass(frozen=True)
class DomainShift:
    """The domain classifier's verdict on a window, and the holdout weights it implies."""

    auc: float | None  # out-of-fold ROC AUC of holdout rows against window rows; None: too few rows
    weights: np.ndarray  # one per holdout row, mean 1: the window's density over the holdout's

    @property
    def effective_rows(self) -> float:
        """Kish's effective sample size of the weights, sum(w)^2 / sum(w^2): the holdout rows that count."""
        return float(self.weights.sum() ** 2 / np.square(self.weights).sum())


def window_sample(rows: int, limit: int = MAX_WINDOW_ROWS) -> np.ndarray:
    """Positions of at most `limit` of `rows` window rows, the same on every run, in order."""
    if rows <= limit:
        return np.arange(rows)
    return np.sort(np.random.default_rng(SEED).choice(rows, size=limit, replace=False))


def domain_shift(reference: np.ndarray, current: np.ndarray, categorical: np.ndarray) -> DomainShift:
    """Fit the domain classifier on encoded holdout and window rows (window subsampled); its weights.

    With fewer than `FOLDS` rows on either side there is nothing to cross-fit: equal weights.
    """
    current = current[window_sample(len(current))]
    if min(len(reference), len(current)) < FOLDS:
        return DomainShift(auc=None, weights=np.ones(len(reference)))
    inputs = np.vstack([reference, current])
    is_window = np.r_[np.zeros(len(reference)), np.ones(len(current))].astype("int64")
    probability = np.empty(len(inputs))
    splits = StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(inputs, is_window)
    for fit_rows, test_rows in splits:
        model = _classifier(categorical).fit(inputs[fit_rows], is_window[fit_rows])
        probability[test_rows] = model.predict_proba(inputs[test_rows])[:, 1]
    auc = float(roc_auc_score(is_window, probability))
    held = np.clip(probability[: len(reference)], PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    odds = held / (1.0 - held) * len(reference) / len(current)
    return DomainShift(auc=auc, weights=odds / odds.mean())


def _classifier(categorical: np.ndarray) -> HistGradientBoostingClassifier:
    """A small, regularised booster: it must tell real shifts apart, not memorise a few hundred rows."""
    return HistGradientBoostingClassifier(
        learning_rate=0.1,
        max_iter=50,
        max_depth=3,
        min_samples_leaf=20,
        l2_regularization=1.0,
        categorical_features=categorical,
        early_stopping=False,
        random_state=SEED,
    )
