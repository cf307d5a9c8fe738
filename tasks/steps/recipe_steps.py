"""Choose what a training run learns from: its parameters, its champion's record, the settings."""

from __future__ import annotations

from prefect import get_run_logger

from deployments.lambda_handler.contract import CHAMPION_ALIAS
from tasks.core.data_source import RETRAIN_REASONS
from tasks.core.errors import TRANSIENT_RETRIES
from tasks.core.settings import Settings
from tasks.learning.recipe import (
    RecipeRequest,
    RecordedRecipe,
    TrainingRecipe,
    choose_recipe,
    read_recorded_recipe,
)
from tasks.registry.model_registry import mlflow_client, version_by_alias
from tasks.steps.step import step


def champion_recipe(tracking_uri: str, model_name: str) -> RecordedRecipe | None:
    """What the champion was trained from, or None when there is no champion."""
    version = version_by_alias(mlflow_client(tracking_uri), model_name, CHAMPION_ALIAS)
    if version is None:
        return None
    return read_recorded_recipe(model_name, str(version.version), version.tags or {})


@step(**TRANSIENT_RETRIES)
def choose_training_recipe(
    settings: Settings, model_name: str, request: RecipeRequest, reason: str
) -> TrainingRecipe:
    """A retrain (drift or schedule) follows its champion's record; any other run, its settings.

    A manual run is someone choosing the data, through parameters or settings; a retrain is the
    loop repeating what the model was made from, whatever the worker's settings say.
    """
    recorded = champion_recipe(settings.tracking_uri, model_name) if reason in RETRAIN_REASONS else None
    recipe = choose_recipe(request, recorded, settings)
    get_run_logger().info("Training %s on: %s", model_name, recipe.describe())
    return recipe
