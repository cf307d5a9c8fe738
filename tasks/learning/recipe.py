"""What a model was trained from, recorded on its registered version and reused by its retrains.

Every registered version carries its data source, dataset spec, candidate families and data
policy as tags. A retrain (a run started by the drift trigger or the schedule) takes them from
the current champion, so one worker with default settings serves any number of models: its
own settings only fill what neither the run's parameters nor the champion say. A version
registered before these tags existed has none, and its retrains use the settings as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from tasks.core.dataset_spec import DatasetSpec, DatasetSpecError, load_dataset_spec, spec_problems
from tasks.core.settings import Settings, split_list
from tasks.learning.families import family_names
from tasks.learning.retrain_data import RetrainData

SOURCE_TAG = "data_source"
SPEC_TAG = "dataset_spec"
FAMILIES_TAG = "candidate_families"
POLICY_TAG = "retrain_data"
RECENT_DAYS_TAG = "retrain_recent_days"
HALF_LIFE_TAG = "recency_half_life_days"


class TrainingRecipe(BaseModel):
    """The inputs of one training run, as recorded on the version it registers."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_source: str
    dataset: DatasetSpec
    families: list[str]
    retrain_data: RetrainData
    retrain_recent_days: float
    recency_half_life_days: float
    origins: dict[str, str] = {}  # where each input came from: parameter, champion v<N> or settings

    def version_tags(self) -> dict[str, str]:
        """The tags a registered version keeps: enough to load the same data the same way again."""
        return {
            SOURCE_TAG: recorded_source(self.data_source),
            SPEC_TAG: self.dataset.model_dump_json(),
            FAMILIES_TAG: ",".join(self.families),
            POLICY_TAG: self.retrain_data,
            RECENT_DAYS_TAG: repr(self.retrain_recent_days),
            HALF_LIFE_TAG: repr(self.recency_half_life_days),
        }

    def describe(self) -> str:
        """One line for the run log: each input and where it came from."""
        values = {
            "data source": self.data_source,
            "dataset spec": repr(self.dataset.name),
            "families": ",".join(self.families),
            "data policy": self.retrain_data,
        }
        return "; ".join(
            f"{key} {value} ({self.origins.get(key, 'settings')})" for key, value in values.items()
        )


class RecordedRecipe(BaseModel):
    """What a champion's tags say it was trained from; a field its version lacks is None."""

    model_config = ConfigDict(frozen=True)

    version: str
    data_source: str | None = None
    dataset: DatasetSpec | None = None
    families: list[str] | None = None
    retrain_data: RetrainData | None = None
    retrain_recent_days: float | None = None
    recency_half_life_days: float | None = None


def recorded_source(source: str) -> str:
    """A local path as an absolute path (a retrain may run from another folder); URLs as they are."""
    if "://" in source:
        return source
    return str(Path(source).expanduser().resolve())


def read_recorded_recipe(model_name: str, version: str, tags: Mapping[str, str]) -> RecordedRecipe:
    """The recipe in a version's tags; a spec tag that no longer validates names the tag to fix."""
    spec = None
    if SPEC_TAG in tags:
        try:
            spec = DatasetSpec.model_validate(json.loads(tags[SPEC_TAG]))
        except (json.JSONDecodeError, ValidationError) as error:
            problem = spec_problems(error) if isinstance(error, ValidationError) else str(error)
            msg = f"{model_name} v{version}: its tag {SPEC_TAG!r} is not a valid dataset spec: {problem}"
            raise DatasetSpecError(msg) from None
    fields = {
        "version": version,
        "data_source": tags.get(SOURCE_TAG),
        "dataset": spec,
        "families": list(split_list(tags.get(FAMILIES_TAG))) or None,
        "retrain_data": tags.get(POLICY_TAG),
        "retrain_recent_days": tags.get(RECENT_DAYS_TAG),
        "recency_half_life_days": tags.get(HALF_LIFE_TAG),
    }
    try:
        return RecordedRecipe.model_validate(fields)
    except ValidationError as error:
        msg = f"{model_name} v{version}: its training tags are invalid: {spec_problems(error)}"
        raise DatasetSpecError(msg) from None


class RecipeRequest(BaseModel):
    """What the run's own parameters say (None: not said)."""

    model_config = ConfigDict(frozen=True)

    data_source: str | None = None
    dataset: DatasetSpec | None = None
    families: list[str] | None = None
    retrain_data: RetrainData | None = None


def choose_recipe(
    request: RecipeRequest, recorded: RecordedRecipe | None, settings: Settings
) -> TrainingRecipe:
    """Each input from the run's parameters, else the champion's record (retrains), else the settings.

    The settings' dataset spec is read only when it is needed, so a retrain of one model does not
    depend on the spec file another model's settings point at.
    """
    kept = recorded or RecordedRecipe(version="")
    origins: dict[str, str] = {}

    def note(key: str, given: object, recorded_value: object) -> None:
        champion = f"champion v{kept.version}"
        origins[key] = (
            "parameter" if given is not None else "settings" if recorded_value is None else champion
        )

    dataset = request.dataset or kept.dataset or load_dataset_spec(settings.dataset_spec)
    note("dataset spec", request.dataset, kept.dataset)
    families = request.families or kept.families or settings.families or family_names(dataset.task)
    note("families", request.families, kept.families)
    source = request.data_source or kept.data_source or settings.data_source
    note("data source", request.data_source, kept.data_source)
    policy = request.retrain_data or kept.retrain_data or settings.retrain_data
    note("data policy", request.retrain_data, kept.retrain_data)
    return TrainingRecipe(
        data_source=source,
        dataset=dataset,
        families=families,
        retrain_data=policy,
        retrain_recent_days=_either(kept.retrain_recent_days, settings.retrain_recent_days),
        recency_half_life_days=_either(kept.recency_half_life_days, settings.recency_half_life_days),
        origins=origins,
    )


def _either(recorded: float | None, setting: float) -> float:
    return setting if recorded is None else recorded
