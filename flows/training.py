"""The training flow: data snapshot → candidates → MLflow registry → champion gate → ONNX bundle."""

from __future__ import annotations

from prefect import flow, get_run_logger
from pydantic import BaseModel

from deployments.lambda_handler.contract import PREDICTIONS_PREFIX
from flows.cli.failed_runs import fails_in_one_line
from flows.cli.options import command_parameters
from flows.cli.temporary_server import run_flow
from flows.deploy import deploy_model
from tasks.core.dataset_spec import DatasetSpec
from tasks.core.errors import quiet_permanent_errors, run_command
from tasks.core.settings import Settings, load_settings
from tasks.core.storage import join_url
from tasks.learning.recipe import RecipeRequest, TrainingRecipe
from tasks.learning.retrain_data import RetrainData
from tasks.learning.tracking import RunContext
from tasks.steps.recipe_steps import choose_training_recipe
from tasks.steps.task_runner import ConfiguredTaskRunner
from tasks.steps.train_steps import (
    add_ensemble_candidate,
    add_production_rows,
    fit_candidate_task,
    gate_promotion,
    load_training_data,
    measure_feature_importance,
    record_training,
    score_current_champion,
    select_deployable_candidate,
    shadow_gate,
    snapshot_training_data,
    split_training_data,
    tune_candidates,
)
from tasks.steps.training_slot import training_slot


class TrainingSummary(BaseModel):
    """What a training run produced and decided."""

    model_name: str
    run_id: str
    family: str
    metrics: dict[str, float]
    promoted: bool
    reason: str
    model_version: str | None
    data_digest: str


@flow(name="train", task_runner=ConfiguredTaskRunner())
@fails_in_one_line
def train_model(
    data_source: str | None = None,
    dataset: DatasetSpec | None = None,
    model_name: str | None = None,
    families: list[str] | None = None,
    reason: str = "manual",
    production_hours: float | None = None,
    promotion_margin: float | None = None,
    deploy_on_promotion: bool | None = None,
    retrain_data: RetrainData | None = None,
) -> TrainingSummary:
    """Train candidate models, register the best and make it champion if it beats the current one.

    Unset parameters come from the settings (`MLOPS_DATA_SOURCE`, `MLOPS_DATASET_SPEC`,
    `MLOPS_MODEL_NAME`, `MLOPS_CANDIDATE_FAMILIES`, `MLOPS_RETRAIN_DATA`); a retrain
    (`reason` drift or schedule) takes them from what its champion was trained from instead,
    recorded on the registered version. `families` limits the candidates (all of the task's by default).
    With `production_hours` (drift-triggered runs), the labelled production rows of that many
    past hours are added to the source data and recorded as a second dataset input; the data
    policy (`retrain_data`) then chooses or weights the rows, and the newest production
    rows are held out for the gate's recent check.
    `promotion_margin` and `deploy_on_promotion` override their settings for this run.
    Each family is first tuned by cross-validation on the training rows (`MLOPS_TUNING_TRIALS`).
    One run of a model trains at a time (the concurrency limit `train-<model>`).
    """
    quiet_permanent_errors()
    settings = load_settings().with_values(
        promotion_margin=promotion_margin, deploy_on_promotion=deploy_on_promotion
    )
    name = model_name or settings.model_name
    request = RecipeRequest(
        data_source=data_source, dataset=dataset, families=families, retrain_data=retrain_data
    )
    recipe = choose_training_recipe(settings, name, request, reason)
    settings = settings.with_values(
        retrain_data=recipe.retrain_data,
        retrain_recent_days=recipe.retrain_recent_days,
        recency_half_life_days=recipe.recency_half_life_days,
    )
    with training_slot(name):
        summary = _train(settings, name, recipe, reason, production_hours)
        get_run_logger().info("Training finished: %s", summary.model_dump_json())
        if summary.promoted and settings.deploy_on_promotion:
            deploy_model(name, summary.model_version)
    return summary


def _train(
    settings: Settings, name: str, recipe: TrainingRecipe, reason: str, production_hours: float | None
) -> TrainingSummary:
    """The run's tasks, from loading the data to registering the model."""
    spec, source, tracking_uri = recipe.dataset, recipe.data_source, settings.tracking_uri
    data = load_training_data(source, spec, settings.min_rows)
    production = None
    if production_hours:
        data, production = add_production_rows(settings, name, data, production_hours)
    snapshot = snapshot_training_data(data, settings.storage, spec.name)
    split, retrain_rows = split_training_data(data, spec, settings, production)
    chosen_families = recipe.families
    tuning = tune_candidates(chosen_families, data, split, settings)
    futures = [
        fit_candidate_task.submit(family, data, split, settings.random_seed, tuning.get(family))
        for family in chosen_families
    ]
    candidates = add_ensemble_candidate([future.result() for future in futures], data, split)
    deployable = select_deployable_candidate(candidates, data, split, settings.onnx_tolerance)
    champion = score_current_champion(tracking_uri, name, data, split)
    decision = gate_promotion(
        name, data, deployable, champion, split, settings.promotion_margin, settings.promotion_confidence
    )
    decision = shadow_gate(settings, name, data, split, deployable, decision)
    context = RunContext(
        name,
        spec.name,
        source,
        split.method,
        reason,
        split.train,
        data.target,
        None if production is None else production.rows,
        join_url(settings.storage, PREDICTIONS_PREFIX, name),
        retrain_rows.params,
        recipe.version_tags(),
    )
    importance = measure_feature_importance(
        deployable, data, split, settings.importance_repeats, settings.random_seed
    )
    record = record_training(
        context, data, split, snapshot, candidates, deployable, decision, importance, settings
    )
    return TrainingSummary(
        model_name=name,
        run_id=record.run_id,
        family=deployable.candidate.family,
        metrics=deployable.onnx_metrics,
        promoted=record.promoted,
        reason=decision.reason,
        model_version=record.model_version,
        data_digest=snapshot.digest,
    )


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.training [options]`: train once (`--help` lists the options)."""
    run_command(lambda: run_flow(train_model, command_parameters("training", argv)))


if __name__ == "__main__":
    main()
