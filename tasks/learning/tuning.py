"""Tune every candidate family within a budget, with Optuna's ask/tell and any task runner.

The loop asks Optuna for a batch of trials per family, hands each to `submit` (the training
flow submits one Prefect task per trial, so a Dask runner spreads them over machines), waits
for the round, tells the scores, and repeats until each family's trials or time run out.
Families are tuned side by side: every round holds a batch of each. A trial that raises is
told as failed; it never stops the run.

Each family scores its fixed parameters first, so tuning never picks anything worse by
cross-validation than the untuned candidate. For a strictly positive, skewed regression target
that first trial is scored twice, on the target and on log(target), and the family keeps the
log target for all its trials only if that lowers the cross-validated RMSLE without raising the
RMSE (a like-for-like comparison that costs one trial, instead of halving the search by making
it one more dimension).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import optuna
import pandas as pd
from optuna.samplers import TPESampler
from optuna.trial import Trial, TrialState

from tasks.core.metric_names import higher_is_better
from tasks.learning.candidates import FAMILIES, LOG_TARGET
from tasks.learning.cross_validation import TrialScore, log_target_eligible, prefers_log_target
from tasks.learning.data import PreparedData
from tasks.learning.families import search_space
from tasks.learning.split import Split

TRIAL_BATCH = 4  # trials per family in flight at once


class TrialHandle(Protocol):
    """What `submit` returns: a Prefect future, or anything with a blocking `result()`."""

    def result(self) -> TrialScore:
        """The trial's score; raises what the trial raised."""
        ...


Submit = Callable[[str, dict[str, Any]], TrialHandle]


@dataclass(frozen=True)
class TuningBudget:
    """Trials per family (0: no tuning) and an optional wall-clock limit per family."""

    trials: int
    timeout_seconds: float | None = None


@dataclass(frozen=True)
class TrialRecord:
    """One scored set of parameters; `metrics` are out-of-fold, empty when the trial failed."""

    number: int
    params: dict[str, Any]
    metrics: dict[str, float]
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class TuningResult:
    """A family's best parameters (with `log_target` when it learns log(target)) and all its trials."""

    family: str
    params: dict[str, Any]
    metric: str
    cv_score: float | None
    trials: list[TrialRecord] = field(default_factory=list)
    best: TrialScore | None = None  # the best trial's out-of-fold metrics and scores

    @property
    def cv_metrics(self) -> dict[str, float]:
        """The best trial's out-of-fold metrics (empty when every trial failed)."""
        return {} if self.best is None else self.best.metrics

    def table(self) -> pd.DataFrame:
        """One row per trial: number, state, out-of-fold metrics, seconds, then the parameters."""
        frame = pd.DataFrame(
            [
                {
                    "trial": record.number,
                    "state": "failed" if record.error else "complete",
                    **{f"cv_{name}": value for name, value in record.metrics.items()},
                    "seconds": round(record.seconds, 3),
                    **record.params,
                    "error": record.error,
                }
                for record in self.trials
            ]
        )
        # one type per column: mixed categorical choices (None, 0.5, "sqrt") become text
        mixed = [name for name in frame.columns if frame[name].dtype == object]
        return frame.astype(dict.fromkeys(mixed, str))


def fixed_params(family: str, data: PreparedData) -> dict[str, Any]:
    """The family's fixed hyperparameters over its search space (the untuned candidate's)."""
    estimator = FAMILIES[data.task][family](0).get_params()
    return {name: estimator[name] for name in search_space(family, data.task)}


class _FamilyTuner:
    """One family's study, budget and trial log."""

    def __init__(
        self, family: str, data: PreparedData, split: Split, budget: TuningBudget, seed: int, batch_size: int
    ) -> None:
        self.family = family
        self.space = search_space(family, data.task)
        self.metric = data.metric
        self.budget = budget
        self.study = optuna.create_study(
            direction="maximize" if higher_is_better(self.metric) else "minimize",
            sampler=TPESampler(
                seed=seed,
                multivariate=True,
                constant_liar=True,
                n_startup_trials=max(batch_size, budget.trials // 3),
            ),
        )
        self.fixed = fixed_params(family, data)
        self.study.enqueue_trial(self.fixed)
        self.compare_log = log_target_eligible(data, split) and budget.trials >= 2  # noqa: PLR2004 - two variants
        self.log_target: bool | None = None if self.compare_log else False
        self.records: list[TrialRecord] = []
        self.scored: dict[int, TrialScore] = {}  # Optuna trial number -> its out-of-fold score
        self.started = time.monotonic()

    def next_batch(self, size: int) -> list[tuple[Trial | None, dict[str, Any]]]:
        """Trials to run now (a `None` trial is the log-target twin of the first); empty when done."""
        remaining = self.budget.trials - len(self.records)
        timeout = self.budget.timeout_seconds
        timed_out = timeout is not None and time.monotonic() - self.started >= timeout
        if remaining <= 0 or (timed_out and self.records):  # the first batch always runs
            return []
        if self.log_target is None:
            first = self.study.ask(self.space)
            return [(first, {**first.params, LOG_TARGET: False}), (None, {**first.params, LOG_TARGET: True})]
        trials = [self.study.ask(self.space) for _ in range(min(size, remaining))]
        extra = {LOG_TARGET: self.log_target} if self.compare_log else {}
        return [(trial, {**trial.params, **extra}) for trial in trials]

    def tell(self, outcomes: list[tuple[Trial | None, dict[str, Any], TrialScore | Exception]]) -> None:
        """Record the round's outcomes and tell Optuna each trial's score or failure."""
        for _, params, outcome in outcomes:
            number = len(self.records)
            if isinstance(outcome, Exception):
                self.records.append(
                    TrialRecord(number, params, {}, 0.0, f"{type(outcome).__name__}: {outcome}")
                )
            else:
                self.records.append(TrialRecord(number, params, outcome.metrics, outcome.seconds))
        if self.log_target is None:
            (first, raw_params, raw), (_, _, log) = outcomes
            self.log_target = isinstance(log, TrialScore) and (
                not isinstance(raw, TrialScore) or prefers_log_target(raw.metrics, log.metrics, self.metric)
            )
            outcomes = [(first, raw_params, log if self.log_target else raw)]
        for trial, _, outcome in outcomes:
            if trial is None:
                continue
            value = math.nan if isinstance(outcome, Exception) else outcome.metrics[self.metric]
            if isinstance(outcome, TrialScore) and math.isfinite(value):
                self.scored[trial.number] = outcome
                self.study.tell(trial, value)
            else:
                self.study.tell(trial, state=TrialState.FAIL)

    def result(self) -> TuningResult:
        """The best trial's parameters, or the fixed ones if every trial failed."""
        completed = [trial for trial in self.study.trials if trial.state == TrialState.COMPLETE]
        if not completed:
            return TuningResult(self.family, dict(self.fixed), self.metric, None, self.records)
        best = self.study.best_trial
        params = {**best.params, **({LOG_TARGET: True} if self.log_target else {})}
        return TuningResult(
            self.family, params, self.metric, best.value, self.records, self.scored.get(best.number)
        )


def tune_families(
    families: list[str],
    data: PreparedData,
    split: Split,
    submit: Submit,
    budget: TuningBudget,
    seed: int,
    batch_size: int = TRIAL_BATCH,
) -> dict[str, TuningResult]:
    """Each family's best parameters by cross-validation on `split.train`; empty when tuning is off.

    `submit(family, params)` starts scoring one trial (`tasks.learning.cross_validation.score_trial`
    on the training rows' folds) and returns a handle whose `result()` waits for its score.
    """
    if budget.trials <= 0:
        return {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tuners = [_FamilyTuner(family, data, split, budget, seed, batch_size) for family in families]
    while True:
        running = [
            (tuner, trial, params, submit(tuner.family, params))
            for tuner in tuners
            for trial, params in tuner.next_batch(batch_size)
        ]
        if not running:
            return {tuner.family: tuner.result() for tuner in tuners}
        outcomes: dict[str, list[tuple[Trial | None, dict[str, Any], TrialScore | Exception]]] = {}
        for tuner, trial, params, handle in running:
            try:
                outcome: TrialScore | Exception = handle.result()
            except Exception as error:  # noqa: BLE001 - a failed trial is told as failed, not fatal
                outcome = error
            outcomes.setdefault(tuner.family, []).append((trial, params, outcome))
        for tuner in tuners:
            if tuner.family in outcomes:
                tuner.tell(outcomes[tuner.family])
