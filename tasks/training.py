"""Prefect tasks of the training flow; each wraps plain functions from this package."""

from __future__ import annotations

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from monitoring.window import Window
from tasks.bundle import MonitoringBaseline, build_schema, reference_sample
from tasks.candidate_selection import DeployableModel, FittedCandidate, fit_candidate, select_deployable
from tasks.champion import ChampionScore, score_champion
from tasks.data import DataValidationError, PreparedData, prepare_data, read_table
from tasks.dataset import DatasetSpec
from tasks.errors import TRANSIENT_RETRIES
from tasks.evaluate import primary_score
from tasks.importance import FeatureImportance, measure_importance
from tasks.monitoring import load_model_context
from tasks.onnx_export import create_session, onnx_scores
from tasks.production_data import append_production_rows, labelled_production_rows
from tasks.promotion import PromotionDecision, decide_promotion
from tasks.registry import mlflow_client
from tasks.settings import Settings
from tasks.snapshot import Snapshot, write_snapshot
from tasks.split import Split, split_data
from tasks.tracking import RunContext, TrainingRecord, record_training_run

PRODUCTION_ROW_CAP = 1_000_000


@task(**TRANSIENT_RETRIES, cache_policy=NO_CACHE)
def load_training_data(source: str, spec: DatasetSpec, min_rows: int) -> PreparedData:
    """Read and validate the training table; a bad file or spec fails at once, naming what to fix."""
    try:
        data = prepare_data(read_table(source, spec.missing_values), spec, source, min_rows)
    except DataValidationError as error:
        hint = f"data: MLOPS_DATA_SOURCE or data_source; spec {spec.name!r}: MLOPS_DATASET_SPEC or dataset"
        msg = f"{error} ({hint})"
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
    return data


@task(**TRANSIENT_RETRIES, cache_policy=NO_CACHE)
def add_production_rows(
    settings: Settings, model_name: str, data: PreparedData, hours: float
) -> tuple[PreparedData, pd.DataFrame]:
    """Append the labelled production rows of the last `hours` (drift-triggered retrains)."""
    logger = get_run_logger()
    try:
        context = load_model_context(settings, model_name)
    except LookupError:
        logger.warning("No champion yet, so no production logs to learn from")
        return data, pd.DataFrame()
    window = Window.last(hours)
    rows = labelled_production_rows(settings.storage, model_name, context.schema, window, PRODUCTION_ROW_CAP)
    combined, added = append_production_rows(data, rows)
    logger.info("Added %d labelled production rows from %s", added, window.name)
    return combined, rows


@task(**TRANSIENT_RETRIES, cache_policy=NO_CACHE)
def snapshot_training_data(data: PreparedData, storage_url: str, dataset_name: str) -> Snapshot:
    """Store the exact training table under its content digest."""
    snapshot = write_snapshot(data.frame, storage_url, dataset_name)
    state = "wrote" if snapshot.created else "reused"
    get_run_logger().info("Data snapshot %s (%s)", snapshot.url, state)
    return snapshot


@task(cache_policy=NO_CACHE)
def split_training_data(data: PreparedData, spec: DatasetSpec, holdout_fraction: float, seed: int) -> Split:
    """Hold out rows for evaluation."""
    return split_data(data, spec.time_column, holdout_fraction, seed)


@task(cache_policy=NO_CACHE, task_run_name="fit-{family}")
def fit_candidate_task(family: str, data: PreparedData, split: Split, seed: int) -> FittedCandidate:
    """Fit one candidate family and score it on the holdout."""
    candidate = fit_candidate(family, data, split, seed)
    metric, value, _ = primary_score(data.task, candidate.metrics)
    get_run_logger().info("%s: holdout %s=%.6g in %.1fs", family, metric, value, candidate.fit_seconds)
    return candidate


@task(cache_policy=NO_CACHE)
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


@task(cache_policy=NO_CACHE)
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


@task(**TRANSIENT_RETRIES, cache_policy=NO_CACHE)
def score_current_champion(
    tracking_uri: str, model_name: str, data: PreparedData, split: Split
) -> ChampionScore | None:
    """Score the registered champion on this run's holdout."""
    return score_champion(mlflow_client(tracking_uri), model_name, data, split.holdout)


@task(cache_policy=NO_CACHE)
def gate_promotion(
    data: PreparedData, deployable: DeployableModel, champion: ChampionScore | None, margin: float
) -> PromotionDecision:
    """Decide whether the candidate replaces the champion, and say why."""
    metric, candidate_score, higher_is_better = primary_score(data.task, deployable.onnx_metrics)
    decision = decide_promotion(
        metric,
        candidate_score,
        None if champion is None else champion.score,
        None if champion is None else champion.version,
        higher_is_better=higher_is_better,
        margin=margin,
    )
    verdict = "Promoting" if decision.promoted else "Keeping the champion"
    get_run_logger().info("%s: %s", verdict, decision.reason)
    champion = (
        "none"
        if decision.champion_score is None
        else f"{decision.champion_score:.6g} (v{decision.champion_version})"
    )
    create_markdown_artifact(
        key="promotion-decision",
        description="Champion gate",
        markdown="\n".join(
            [
                f"# {verdict}",
                "",
                decision.reason,
                "",
                f"| {decision.metric} on the same holdout | value |",
                "| --- | --- |",
                f"| candidate ({deployable.candidate.family}) | {decision.candidate_score:.6g} |",
                f"| champion | {champion} |",
                f"| required relative improvement | > {decision.margin:.2%} |",
            ]
        ),
    )
    return decision


@task(cache_policy=NO_CACHE)
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
