"""Model families, one module each: the only place a family is declared.

A module here defines `FAMILY`, a `ModelFamily` with its estimator per task, its search space,
how its inputs are prepared, the types its saved model may hold and the packages it needs, and
any ONNX converter it brings. Adding a family is adding a module (and its library to
`pyproject.toml`); it is found by its folder.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from optuna.distributions import BaseDistribution
from sklearn.base import BaseEstimator

from tasks.core.metric_names import TaskType

EstimatorFactory = Callable[[int], BaseEstimator]  # seed -> an unfitted estimator
SearchSpace = dict[str, BaseDistribution]


@dataclass(frozen=True)
class ModelFamily:
    """Everything training, tuning, ONNX export and tracking need to know about one family.

    Every search space holds the family's fixed parameters (tuning scores them first) and bounds
    tree counts, depths and leaves so that any trial converts to a small ONNX graph (the
    function zip stays under 2 MB; `tasks.learning.onnx_export.check_size`).
    """

    name: str
    estimators: Mapping[TaskType, EstimatorFactory]
    search_spaces: Mapping[TaskType, SearchSpace]
    listing_order: int  # where the family comes in "every family of the task"
    scale_inputs: bool = False  # standardise numbers first (linear models)
    float32_inputs: bool = False  # cast inputs to float32 first, as the ONNX graph sees them
    trusted_types: tuple[str, ...] = ()  # type-name prefixes its saved model may hold beyond scikit-learn
    requirements: Mapping[str, str] = field(default_factory=dict)  # type prefix -> pip package it needs
    register_converters: Callable[[], None] | None = None  # ONNX converters skl2onnx lacks


@functools.cache
def all_families() -> dict[str, ModelFamily]:
    """Every family module in this folder, by name, in listing order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        family: ModelFamily = module.FAMILY
        if family.name != info.name:
            msg = f"{module.__name__} declares family {family.name!r}; name the module after it"
            raise ValueError(msg)
        found.append(family)
    return {family.name: family for family in sorted(found, key=lambda item: item.listing_order)}


def family_names(task: TaskType) -> list[str]:
    """The families that serve a task, in listing order."""
    return [name for name, family in all_families().items() if task in family.estimators]


def family_for(name: str, task: TaskType) -> ModelFamily:
    """A family that serves the task; an unknown one is an error naming the known ones."""
    family = all_families().get(name)
    if family is None or task not in family.estimators:
        known = ", ".join(family_names(task))
        msg = f"unknown {task} model family {name!r} (MLOPS_CANDIDATE_FAMILIES or families); known: {known}"
        raise ValueError(msg)
    return family


def search_space(name: str, task: TaskType) -> SearchSpace:
    """What tuning may vary for a family on a task."""
    return family_for(name, task).search_spaces[task]


@functools.cache
def register_converters() -> None:
    """Register every family's ONNX converters with skl2onnx (once per process)."""
    for family in all_families().values():
        if family.register_converters is not None:
            family.register_converters()
