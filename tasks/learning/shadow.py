"""The shadow check: before `live` moves, the challenger answers the last window's logged requests.

It compares the challenger with the champion on the traffic they would really serve, with no
labels needed: how far their answers agree, and each one's primary metric estimated from its
own holdout (direct loss estimation for regression, confidence-based for classification, as
the monitor does). Where labels of those requests have arrived, both models' realized metric
is shown too. A challenger whose estimate is worse than the champion's by more than the
tolerance is not promoted. An estimate the monitor would mark unreliable on these requests
(`monitoring.quality.reliability`: rows off the holdout's support, outside the spec's bounds,
or a model whose holdout errors lean one way) is shown but decides nothing, as in the monitor:
the gate's holdout and recent checks stand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel

from deployments.lambda_handler.contract import (
    ACTUAL,
    MISSING_CATEGORY,
    PREDICTION,
    PROBABILITY,
    ServingSchema,
)
from monitoring.labels.commands import join_labels, read_labels
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from monitoring.quality.live_quality import rows_of_version
from monitoring.quality.reliability import assess_estimate, within_row_bounds
from tasks.core.metric_names import DEFAULT_METRIC, higher_is_better
from tasks.core.metrics import holdout_metrics
from tasks.learning.data import PreparedData
from tasks.learning.onnx_export import create_session, onnx_scores

ROW_CAP = 50_000
MIN_ROWS = 30  # logged requests, and distinct inputs among them, needed to compare


class ShadowCheck(BaseModel):
    """The challenger beside the champion on the last window's logged requests."""

    window: str
    rows: int = 0
    agreement: float | None = None  # classification: same class; regression: within 10% of each other
    metric: str = ""
    challenger_estimate: float | None = None
    champion_estimate: float | None = None
    labelled_rows: int = 0
    challenger_realized: float | None = None
    champion_realized: float | None = None
    tolerance: float = 0.0
    passed: bool | None = None  # None: not compared (too few rows, no estimate), see note
    note: str = ""


@dataclass(frozen=True)
class Challenger:
    """The model that passed the gate: its ONNX graph, inputs, and holdout rows with its scores."""

    onnx_model: bytes
    data: PreparedData
    schema: ServingSchema  # what its bundle's schema.json would say
    holdout: pd.DataFrame
    holdout_scores: np.ndarray


@dataclass(frozen=True)
class Champion:
    """The serving champion: version, schema, and holdout rows with its out-of-sample predictions."""

    version: str
    schema: ServingSchema
    holdout: pd.DataFrame | None
    importance: dict[str, float] | None = None  # its inputs' shares of the permutation importance


def model_inputs(rows: pd.DataFrame, data: PreparedData) -> pd.DataFrame | None:
    """Logged rows typed as the challenger's inputs; None when the logs lack one of them."""
    if any(name not in rows.columns for name in data.features):
        return None
    frame = pd.DataFrame(index=rows.index)
    for name in data.numeric:
        frame[name] = pd.to_numeric(rows[name], errors="coerce").astype("float64")
    for name in data.categorical:
        frame[name] = rows[name].astype(object).where(rows[name].notna(), MISSING_CATEGORY).astype(str)
    return frame


def agreement(data: PreparedData, champion: np.ndarray, challenger: np.ndarray) -> float:
    """The share of rows on which both answer alike (same class, or within 10% of each other)."""
    if data.task == "classification":
        return float(np.mean((champion >= 0.5) == (challenger >= 0.5)))  # noqa: PLR2004 - the usual threshold
    scale = np.maximum(np.abs(champion), 1e-12)
    return float(np.mean(np.abs(challenger - champion) / scale <= 0.1))  # noqa: PLR2004 - within 10%


def shadow_check(
    storage_url: str,
    model_name: str,
    champion: Champion,
    challenger: Challenger,
    window: Window,
    tolerance: float,
) -> ShadowCheck:
    """Score the window's requests the champion answered with the challenger, and compare the two."""
    check = ShadowCheck(window=window.name, tolerance=tolerance)
    logs = LogReader(storage_url, model_name, champion.schema, row_cap=ROW_CAP).read(window)
    rows = rows_of_version(logs.frame, champion.version)
    if len(rows) < MIN_ROWS:
        return check.model_copy(
            update={"rows": len(rows), "note": f"{len(rows)} logged requests of the champion"}
        )
    data = challenger.data
    inputs = model_inputs(rows, data)
    distinct = 0 if inputs is None else len(inputs.drop_duplicates())
    if inputs is not None and distinct < MIN_ROWS:  # the same few requests again: no sample of the traffic
        note = f"only {distinct} distinct inputs among {len(rows)} logged requests"
        return check.model_copy(update={"rows": len(rows), "note": note})
    if inputs is None:
        return check.model_copy(
            update={"rows": len(rows), "note": "the logs lack inputs the challenger needs"}
        )
    ours = onnx_scores(
        create_session(challenger.onnx_model), inputs, data.numeric, data.categorical, data.task
    )
    score_column = PREDICTION if data.task == "regression" else PROBABILITY
    theirs = rows[champion.schema.score_column].to_numpy("float64")
    check = check.model_copy(update={"rows": len(rows), "agreement": agreement(data, theirs, ours)})
    check = _with_estimates(check, champion, challenger, rows, ours, score_column)
    return _with_realized(check, storage_url, model_name, window, rows, ours, data)


def _with_estimates(
    check: ShadowCheck,
    champion: Champion,
    challenger: Challenger,
    rows: pd.DataFrame,
    ours: np.ndarray,
    score_column: str,
) -> ShadowCheck:
    data = challenger.data
    if champion.holdout is None:
        return check.model_copy(update={"note": "the champion's bundle has no holdout to estimate from"})
    reference = challenger.holdout.assign(**{score_column: challenger.holdout_scores})
    inside = within_row_bounds(rows, champion.schema) & within_row_bounds(rows, challenger.schema)
    rows, ours = rows[inside], ours[inside]
    beyond = (
        "" if inside.all() else f"; {int((~inside).sum())} requests outside the spec's row_bounds left out"
    )
    if len(rows) < MIN_ROWS:
        return check.model_copy(update={"note": f"{len(rows)} logged requests within the spec's row_bounds"})
    # the inputs the champion leans on, as the monitor does (the challenger's are measured after the gate)
    theirs = assess_estimate(champion.schema, champion.holdout, rows, champion.importance)
    mine = assess_estimate(
        challenger.schema, reference, rows.assign(**{score_column: ours}), champion.importance
    )
    metric = data.metric if data.metric in mine.metrics else DEFAULT_METRIC[data.task]
    if metric not in mine.metrics or metric not in theirs.metrics:
        return check.model_copy(update={"note": "no estimate of the primary metric from the holdouts"})
    ours_estimate, champions = mine.metrics[metric], theirs.metrics[metric]
    estimates = {
        "metric": metric,
        "challenger_estimate": ours_estimate,
        "champion_estimate": champions,
        "rows": len(rows),
        "note": beyond.removeprefix("; "),
    }
    doubts = [
        f"{'both' if reason in mine.reasons else 'the champion'}: {reason}" for reason in theirs.reasons
    ]
    doubts += [f"the challenger: {reason}" for reason in mine.reasons if reason not in theirs.reasons]
    if doubts:
        note = f"the estimates are unreliable on these requests ({'; '.join(doubts)}){beyond}"
        return check.model_copy(update={**estimates, "note": note})
    gap = champions - ours_estimate if higher_is_better(metric) else ours_estimate - champions
    worse = gap / max(abs(champions), 1e-12)
    return check.model_copy(update={**estimates, "passed": worse <= check.tolerance})


def _with_realized(
    check: ShadowCheck,
    storage_url: str,
    model_name: str,
    window: Window,
    rows: pd.DataFrame,
    ours: np.ndarray,
    data: PreparedData,
) -> ShadowCheck:
    labelled = join_labels(rows, read_labels(storage_url, model_name, window))
    known = labelled[ACTUAL].notna().to_numpy()
    if known.sum() < MIN_ROWS:
        return check.model_copy(update={"labelled_rows": int(known.sum())})
    if data.task == "regression":
        actual = pd.to_numeric(labelled[ACTUAL][known]).to_numpy("float64")
        theirs = labelled[PREDICTION][known].to_numpy("float64")
    else:
        positive = data.classes[1]
        actual = (labelled[ACTUAL][known].astype(str) == positive).astype("int64").to_numpy()
        theirs = labelled[PROBABILITY][known].to_numpy("float64")
    metric = check.metric or data.metric  # the estimate's metric, so the table compares like with like
    mine = holdout_metrics(data.task, actual, ours[known]).get(metric)
    champions = holdout_metrics(data.task, actual, theirs).get(metric)
    return check.model_copy(
        update={
            "labelled_rows": int(known.sum()),
            "challenger_realized": mine,
            "champion_realized": champions,
        }
    )
