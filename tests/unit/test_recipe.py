"""What a model was trained from: recorded as version tags, read back, and chosen for a retrain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.core.dataset_spec import AMES_SPEC, DatasetSpec, DatasetSpecError
from tasks.core.settings import Settings, load_settings
from tasks.learning.recipe import RecipeRequest, TrainingRecipe, choose_recipe, read_recorded_recipe

CHURN = DatasetSpec(name="churn", target="Churned", task="classification", drop=[], categorical=[])


def _churn_recipe(source: str) -> TrainingRecipe:
    return TrainingRecipe(
        data_source=source,
        dataset=CHURN,
        families=["logistic_regression"],
        retrain_data="weighted",
        retrain_recent_days=30.0,
        recency_half_life_days=7.5,
    )


def _worker_settings(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A worker's settings: Ames, every family, the `all` policy; its spec file is broken."""
    broken = mlops_env / "broken-spec.json"
    broken.write_text("{", encoding="utf-8")
    monkeypatch.setenv("MLOPS_DATASET_SPEC", str(broken))
    return load_settings()


def test_tags_give_back_the_recipe_with_local_paths_made_absolute(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (mlops_env / "data").mkdir()
    tags = _churn_recipe("data/churn.csv").version_tags()

    assert tags["data_source"] == str(mlops_env.resolve() / "data" / "churn.csv")
    assert json.loads(tags["dataset_spec"])["target"] == "churned"
    assert (
        _churn_recipe("s3://bucket/churn.parquet").version_tags()["data_source"]
        == "s3://bucket/churn.parquet"
    )
    recorded = read_recorded_recipe("churn", "4", tags)
    assert recorded.dataset == CHURN
    assert (recorded.families, recorded.retrain_data) == (["logistic_regression"], "weighted")
    assert (recorded.retrain_recent_days, recorded.recency_half_life_days) == (30.0, 7.5)

    settings = _worker_settings(mlops_env, monkeypatch)
    chosen = choose_recipe(RecipeRequest(), recorded, settings)  # the worker's spec file is never read
    expected = _churn_recipe(tags["data_source"])
    assert chosen.model_dump(exclude={"origins"}) == expected.model_dump(exclude={"origins"})
    assert set(chosen.origins.values()) == {"champion v4"}
    assert "families logistic_regression (champion v4)" in chosen.describe()


def test_the_run_parameters_come_first_then_the_champion_then_the_settings(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = read_recorded_recipe("churn", "2", _churn_recipe("s3://bucket/churn.parquet").version_tags())
    settings = load_settings()
    request = RecipeRequest(data_source="s3://bucket/churn-2027.parquet", retrain_data="recent")

    chosen = choose_recipe(request, recorded, settings)

    assert (chosen.data_source, chosen.retrain_data) == ("s3://bucket/churn-2027.parquet", "recent")
    assert (chosen.dataset, chosen.families) == (CHURN, ["logistic_regression"])
    assert chosen.origins == {
        "data source": "parameter",
        "data policy": "parameter",
        "dataset spec": "champion v2",
        "families": "champion v2",
    }
    manual = choose_recipe(RecipeRequest(), None, settings)  # a manual run: the settings
    assert (manual.data_source, manual.dataset) == (settings.data_source, AMES_SPEC)
    assert manual.families == ["ridge", "random_forest", "gradient_boosting", "lightgbm"]
    assert set(manual.origins.values()) == {"settings"}


def test_a_version_without_tags_keeps_the_settings(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_CANDIDATE_FAMILIES", "ridge")
    monkeypatch.setenv("MLOPS_RETRAIN_DATA", "recent")
    older = read_recorded_recipe("ames", "1", {"data_digest": "abc", "family": "ridge"})

    chosen = choose_recipe(RecipeRequest(), older, load_settings())

    assert (chosen.dataset, chosen.families, chosen.retrain_data) == (AMES_SPEC, ["ridge"], "recent")
    assert set(chosen.origins.values()) == {"settings"}


def test_a_spec_tag_that_no_longer_validates_names_the_version_and_tag() -> None:
    tags = {"dataset_spec": json.dumps({"name": "churn", "target": "y", "task": "ranking"})}
    with pytest.raises(
        DatasetSpecError, match=r"churn v3: its tag 'dataset_spec' is not a valid dataset spec: task="
    ):
        read_recorded_recipe("churn", "3", tags)
    with pytest.raises(DatasetSpecError, match=r"churn v3: its training tags are invalid: retrain_data="):
        read_recorded_recipe("churn", "3", {"retrain_data": "newest"})
