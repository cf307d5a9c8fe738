"""Prefect tasks of the training flow; each wraps plain functions from this package."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import PrefectFuture

from deployments.lambda_handler.contract import ServingSchema
from monitoring.logs.window import Window
from tasks.core.data_source import data_hint
from tasks.core.dataset_spec import DatasetSpec
from tasks.core.errors import TRANSIENT_RETRIES
from tasks.core.metrics import primary_score
from tasks.core.settings import Settings
from tasks.learning.bundle import MonitoringBaseline, build_schema, reference_sample
from tasks.learning.candidate_selection import (
    DeployableModel,
    FittedCandidate,
    fit_candidate,
    select_deployable,
)
from tasks.learning.champion_scoring import ChampionScore, onnx_metrics, score_champion
from tasks.learning.cross_validation import Fold, TrialScore, cv_folds, score_trial
from tasks.learning.data import DataValidationError, PreparedData, describe_bounds, prepare_data, read_table
from tasks.learning.data_snapshot import Snapshot, write_snapshot
from tasks.learning.ensemble import ensemble_candidate
from tasks.learning.gate_statistics import (
    TOP_ERRORS,
    bootstrap_interval,
    error_concentration,
    paired_bootstrap,
)
from tasks.learning.importance import FeatureImportance, measure_importance
from tasks.learning.onnx_export import create_session, onnx_scores
from tasks.learning.production_data import ProductionRows, append_production_rows, labelled_production_rows
from tasks.learning.promotion import (
    PromotionDecision,
    RecentCheck,
    apply_shadow_check,
    decide_promotion,
    promotion_markdown,
)
from tasks.learning.retrain_data import RetrainRows, RetrainRule, choose_retrain_rows, split_retrain_rows
from tasks.learning.shadow import Challenger, Champion, shadow_check
from tasks.learning.split import Split
from tasks.learning.tracking import RunContext, TrainingRecord, record_training_run
from tasks.learning.tuning import TuningBudget, TuningResult, tune_families
from tasks.registry.model_files import load_model_context
from tasks.registry.model_registry import mlflow_client
from tasks.steps.prefect_artifacts import artifact_key
from tasks.steps.step import step

PRODUCTION_ROW_CAP = 1_000_000


@step(**TRANSIENT_RETRIES)
def load_training_data(source: str, spec: DatasetSpec, min_rows: int) -> PreparedData:
    """Read and validate the training table; a bad file or spec fails at once, naming what to fix."""
    try:
        data = prepare_data(read_table(source, spec.missing_values), spec, source, min_rows)
    except DataValidationError as error:
        msg = f"{error} ({data_hint(spec.name)})"
        raise DataValidationError(msg) from None
    logger = get_run_logger()
    logger.info(
        "Loaded %d rows from %s: %d numeric and %d categorical features, target %r",
        len(data.frame),
        source,
        len(data.numeric),
        len(data.categorical),
        data.target,
    )
    if data.dropped_empty:
        logger.warning("Dropped columns with no values: %s", ", ".join(data.dropped_empty))
    if data.out_of_bounds:
        bounds = ", ".join(describe_bounds(name, low, high) for name, (low, high) in data.row_bounds.items())
        logger.info("Left out %d rows outside the spec's row_bounds (%s)", data.out_of_bounds, bounds)
    return data


@step(**TRANSIENT_RETRIES)
def add_production_rows(
    settings: Settings, model_name: str, data: PreparedData, hours: float
) -> tuple[PreparedData, ProductionRows]:
    """Append the labelled production rows of the last `hours` (drift-triggered retrains)."""
    logger = get_run_logger()
    try:
        context = load_model_context(settings, model_name)
    except LookupError:
        logger.warning("No champion yet, so no production logs to learn from")
        return data, ProductionRows(pd.DataFrame())
    window = Window.last(hours)
    rows = labelled_production_rows(settings.storage, model_name, context.schema, window, PRODUCTION_ROW_CAP)
    combined, added = append_production_rows(data, rows)
    logger.info("Added %d labelled production rows from %s", len(added), window.name)
    return combined, ProductionRows(added, context.version)


@step(**TRANSIENT_RETRIES)
def snapshot_training_data(data: PreparedData, storage_url: str, dataset_name: str) -> Snapshot:
    """Store the exact training table under its content digest."""
    snapshot = write_snapshot(data.frame, storage_url, dataset_name)
    state = "wrote" if snapshot.created else "reused"
    get_run_logger().info("Data snapshot %s (%s)", snapshot.url, state)
    return snapshot


@step
def split_training_data(
    data: PreparedData, spec: DatasetSpec, settings: Settings, production: ProductionRows | None
) -> tuple[Split, RetrainRows]:
    """Choose the rows by the retrain data policy, set the recent slice aside and hold out rows."""
    rule = RetrainRule(
        settings.retrain_data,
        settings.retrain_recent_days,
        settings.recency_half_life_days,
        settings.recent_holdout_fraction,
        settings.recent_holdout_min_rows,
        settings.min_rows,
    )
    rows = choose_retrain_rows(data, production, rule)
    split = split_retrain_rows(data, rows, spec.time_column, settings.holdout_fraction, settings.random_seed)
    logger = get_run_logger()
    for warning in rows.warnings:
        logger.warning(warning)
    if production is None:
        logger.info(
            "Not a drift retrain: all %d rows used (MLOPS_RETRAIN_DATA applies to drift retrains)",
            len(data.frame),
        )
    else:
        logger.info("Retrain data %s: %s", rows.policy, ", ".join(f"{k}={v}" for k, v in rows.params.items()))
    if rows.recent_note:
        logger.info("No recent slice: %s", rows.recent_note)
    return split, rows


@step(task_run_name="trial-{family}")
def score_trial_task(
    family: str, params: dict[str, Any], data: PreparedData, split: Split, folds: list[Fold], seed: int
) -> TrialScore:
    """Score one tuning trial by cross-validation on the training rows."""
    return score_trial(family, params, data, split, folds, seed)


def tune_candidates(
    families: list[str], data: PreparedData, split: Split, settings: Settings
) -> dict[str, TuningResult]:
    """Tune the families side by side, each trial a `score_trial_task` on the flow's task runner."""
    if settings.tuning_trials == 0:
        return {}
    seed = settings.random_seed
    folds = cv_folds(data, split, seed)

    def submit(family: str, params: dict[str, Any]) -> PrefectFuture[TrialScore]:
        return score_trial_task.submit(family, params, data, split, folds, seed)

    budget = TuningBudget(settings.tuning_trials, settings.tuning_timeout_seconds)
    started = time.perf_counter()
    results = tune_families(families, data, split, submit, budget, seed)
    logger = get_run_logger()
    for family, result in results.items():
        failed = sum(1 for trial in result.trials if trial.error)
        logger.info(
            "%s: %d trials (%d failed), best cross-validated %s=%s with %s",
            family,
            len(result.trials),
            failed,
            result.metric,
            "none" if result.cv_score is None else f"{result.cv_score:.6g}",
            result.params,
        )
    if results:
        logger.info(
            "Tuned %d families in %.1fs on %d folds", len(results), time.perf_counter() - started, len(folds)
        )
    return results


@step(task_run_name="fit-{family}")
def fit_candidate_task(
    family: str, data: PreparedData, split: Split, seed: int, tuning: TuningResult | None = None
) -> FittedCandidate:
    """Fit one candidate family (with its tuned parameters, if any), cross-validate and score it."""
    tuned = tuning is not None and bool(tuning.cv_metrics)
    candidate = fit_candidate(
        family, data, split, seed, tuning, None if tuned else cv_folds(data, split, seed)
    )
    metric, value, _ = primary_score(data.metric, candidate.metrics)
    cv = candidate.cv_metrics.get(metric)
    get_run_logger().info(
        "%s: cross-validated %s=%s, holdout %.6g, fitted in %.1fs",
        family,
        metric,
        "none" if cv is None else f"{cv:.6g}",
        value,
        candidate.fit_seconds,
    )
    return candidate


@step
def add_ensemble_candidate(
    candidates: list[FittedCandidate], data: PreparedData, split: Split
) -> list[FittedCandidate]:
    """The candidates, with the average of the best families when cross-validation prefers it."""
    ensemble = ensemble_candidate(candidates, data, split)
    logger = get_run_logger()
    if ensemble is None:
        logger.info("No average of the best families beats the best one by cross-validation")
        return candidates
    metric, value, _ = primary_score(data.metric, ensemble.metrics)
    logger.info(
        "ensemble of %s: cross-validated %s=%.6g, holdout %.6g",
        ensemble.params["members"],
        metric,
        ensemble.cv_metrics[metric],
        value,
    )
    return [*candidates, ensemble]


@step
def select_deployable_candidate(
    candidates: list[FittedCandidate], data: PreparedData, split: Split, tolerance: float
) -> DeployableModel:
    """Pick the best candidate that converts to ONNX and matches its pipeline."""
    deployable = select_deployable(candidates, data, split.holdout, tolerance)
    logger = get_run_logger()
    for family, reason in deployable.rejected.items():
        logger.warning("Skipped %s: %s", family, reason)
    logger.info(
        "Chose %s; ONNX parity max relative error %.2e on %d holdout rows",
        deployable.candidate.family,
        deployable.parity.max_rel_error,
        deployable.parity.rows,
    )
    return deployable


@step
def measure_feature_importance(
    deployable: DeployableModel, data: PreparedData, split: Split, repeats: int, seed: int
) -> FeatureImportance:
    """Permutation importance of the chosen model's inputs on the holdout (weights the drift verdict)."""
    importance = measure_importance(
        deployable.candidate.pipeline,
        split.holdout,
        data.features,
        data.target,
        data.task,
        repeats=repeats,
        seed=seed,
    )
    top = ", ".join(f"{name} {share:.0%}" for name, share in importance.top(5))
    get_run_logger().info("Permutation importance in %.1fs; top inputs: %s", importance.seconds, top)
    return importance


@step(**TRANSIENT_RETRIES)
def score_current_champion(
    tracking_uri: str, model_name: str, data: PreparedData, split: Split
) -> ChampionScore | None:
    """Score the registered champion on this run's holdout and recent slice."""
    return score_champion(mlflow_client(tracking_uri), model_name, data, split.holdout, split.recent)


@step
def gate_promotion(
    model_name: str,
    data: PreparedData,
    deployable: DeployableModel,
    champion: ChampionScore | None,
    split: Split,
    margin: float,
    confidence: float = 0.0,
) -> PromotionDecision:
    """Decide whether the candidate replaces the champion, and say why (and how sure)."""
    metric, candidate_score, higher_is_better = primary_score(data.metric, deployable.onnx_metrics)
    recent = RecentCheck(note=split.recent_note)
    if split.recent is not None and champion is not None and champion.recent_score is not None:
        metrics = onnx_metrics(deployable.onnx_model, split.recent, data.numeric, data.categorical, data)
        _, score, _ = primary_score(data.metric, metrics)
        recent = RecentCheck(
            rows=len(split.recent), candidate_score=score, champion_score=champion.recent_score
        )
    actual = split.holdout[data.target].to_numpy()
    share = None
    if champion is not None and champion.holdout_scores is not None:
        share = paired_bootstrap(metric, data.task, actual, deployable.onnx_scores, champion.holdout_scores)
    concentration = error_concentration(metric, data.task, actual, deployable.onnx_scores)
    decision = decide_promotion(
        metric,
        candidate_score,
        None if champion is None else champion.score,
        None if champion is None else champion.version,
        higher_is_better=higher_is_better,
        margin=margin,
        recent=recent,
        bootstrap_share=share,
        confidence=confidence,
        concentration=(TOP_ERRORS, concentration),
        interval=bootstrap_interval(metric, data.task, actual, deployable.onnx_scores),
    )
    verdict = "Promoting" if decision.promoted else "Keeping the champion"
    get_run_logger().info("%s: %s", verdict, decision.reason)
    create_markdown_artifact(
        key=artifact_key("promotion", model_name),
        description="Champion gate",
        markdown=promotion_markdown(decision, deployable.candidate.family),
    )
    return decision


@step
def record_training(
    context: RunContext,
    data: PreparedData,
    split: Split,
    snapshot: Snapshot,
    candidates: list[FittedCandidate],
    deployable: DeployableModel,
    decision: PromotionDecision,
    importance: FeatureImportance,
    settings: Settings,
) -> TrainingRecord:
    """Log everything to MLflow and, when promoted, register and alias the model."""
    schema = build_schema(data, split.train)
    rows, seed = settings.reference_rows, settings.random_seed
    baseline = MonitoringBaseline(
        reference=reference_sample(data, split.train, _train_scores(deployable, data, split), rows, seed),
        holdout=reference_sample(data, split.holdout, deployable.onnx_scores, rows, seed),
        importance=importance,
    )
    record = record_training_run(
        context,
        snapshot,
        candidates,
        deployable,
        decision,
        schema,
        baseline,
        settings.tracking_uri,
        settings.artifact_root,
    )
    if record.promoted:
        get_run_logger().info("Registered %s v%s as champion", context.model_name, record.model_version)
    return record


def _train_scores(deployable: DeployableModel, data: PreparedData, split: Split) -> np.ndarray:
    session = create_session(deployable.onnx_model)
    return onnx_scores(session, split.train, data.numeric, data.categorical, data.task)


@step
def shadow_gate(
    settings: Settings,
    model_name: str,
    data: PreparedData,
    split: Split,
    deployable: DeployableModel,
    decision: PromotionDecision,
) -> PromotionDecision:
    """A challenger that passed the gate first answers the last window's requests beside the champion."""
    if not (decision.promoted and decision.champion_version and settings.shadow_check):
        return decision
    context = load_model_context(settings, model_name)
    schema = ServingSchema.from_dict(build_schema(data, split.train).model_dump())
    challenger = Challenger(deployable.onnx_model, data, schema, split.holdout, deployable.onnx_scores)
    champion = Champion(context.version, context.schema, context.holdout, context.importance)
    window = Window.last(settings.monitor_window_hours)
    shadow = shadow_check(
        settings.storage, model_name, champion, challenger, window, settings.shadow_tolerance
    )
    checked = apply_shadow_check(decision, shadow)
    get_run_logger().info(
        "%s: %s", "Promoting" if checked.promoted else "Keeping the champion", checked.reason
    )
    create_markdown_artifact(
        key=artifact_key("promotion", model_name),
        description="Champion gate",
        markdown=promotion_markdown(checked, deployable.candidate.family),
    )
    return checked
