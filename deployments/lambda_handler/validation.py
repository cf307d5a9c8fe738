"""Check request instances against the training schema and turn them into model inputs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .contract import CATEGORICAL_INPUT, MISSING_CATEGORY, NUMERIC_INPUT, ServingSchema

FLOAT32_MAX = float(np.finfo(np.float32).max)


class RequestError(ValueError):
    """A request the function refuses; becomes a 4xx JSON answer."""

    def __init__(
        self, message: str, *, status: int = 400, field: str | None = None, index: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.index = index

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body."""
        body: dict[str, Any] = {"error": str(self)}
        if self.field is not None:
            body["field"] = self.field
        if self.index is not None:
            body["instance"] = self.index
        return body


@dataclass(frozen=True)
class FeatureRule:
    """One input as the schema describes it."""

    name: str
    is_number: bool
    nullable: bool
    categories: frozenset[str] = frozenset()


@dataclass
class ValidatedBatch:
    """Model feeds plus the cleaned instances, categories training never saw, and fields left out."""

    feeds: dict[str, np.ndarray]  # the numeric and the categorical matrix, columns in schema order
    instances: list[dict[str, Any]]
    unknown_categories: list[list[str]] = field(default_factory=list)
    missing_fields: list[list[str]] = field(default_factory=list)


def _refuse_constant(name: str) -> float:
    msg = f"{name} is not a valid JSON number"
    raise RequestError(msg)


def parse_json(text: str | bytes) -> Any:
    """Parse a JSON body, refusing NaN and Infinity, which JSON does not allow."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RequestError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):
        msg = "body is not valid JSON"
        raise RequestError(msg) from None


def rules_from_schema(schema: ServingSchema) -> list[FeatureRule]:
    """Validation rules for each feature of the model's schema."""
    return [
        FeatureRule(
            name=feature.name,
            is_number=feature.is_number,
            nullable=feature.nullable,
            categories=frozenset(feature.categories),
        )
        for feature in schema.features
    ]


def instances_from_body(body: Any, max_rows: int) -> list[Any]:
    """The list of instances from `{"instances": [...]}` or a single instance object."""
    if not isinstance(body, dict):
        msg = 'body must be a JSON object: {"instances": [{...}, ...]} or one instance'
        raise RequestError(msg)
    instances = body.get("instances", [body])
    if not isinstance(instances, list):
        msg = "'instances' must be a list of objects"
        raise RequestError(msg, field="instances")
    if not instances:
        msg = "'instances' is empty; send at least one instance"
        raise RequestError(msg, field="instances")
    if len(instances) > max_rows:
        msg = f"batch of {len(instances)} instances is over the limit of {max_rows}"
        raise RequestError(msg, status=413, field="instances")
    return instances


def _number(rule: FeatureRule, value: Any, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"instance {index}: field {rule.name!r} must be a number, got {_json_type(value)}"
        raise RequestError(msg, field=rule.name, index=index)
    number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    if not math.isfinite(number) or abs(number) > FLOAT32_MAX:
        msg = f"instance {index}: field {rule.name!r} must be a finite number within float32 range"
        raise RequestError(msg, field=rule.name, index=index)
    return number


def _category(rule: FeatureRule, value: Any, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        msg = f"instance {index}: field {rule.name!r} must be a string, got {_json_type(value)}"
        raise RequestError(msg, field=rule.name, index=index)
    return str(value)


def _json_type(value: Any) -> str:
    names = {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


@dataclass
class _Row:
    """One checked instance: its values by name, model inputs by kind, and what it lacked."""

    values: dict[str, Any] = field(default_factory=dict)
    numbers: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    unseen: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def _check_instance(
    instance: Any, index: int, rules: list[FeatureRule], known: set[str], *, reject_missing: bool
) -> _Row:
    if not isinstance(instance, dict):
        msg = f"instance {index} must be a JSON object, got {_json_type(instance)}"
        raise RequestError(msg, index=index)
    extra = sorted(set(instance) - known)
    if extra:
        msg = f"instance {index}: unknown field {extra[0]!r}"
        raise RequestError(msg, field=str(extra[0]), index=index)
    row = _Row()
    required = None
    for rule in rules:
        value = instance.get(rule.name)
        if value is None:
            # reported after the type checks: a wrong value is the more useful message
            row.left_out.append(rule.name)
            if reject_missing and not rule.nullable:
                required = required or rule.name
            if rule.is_number:
                row.numbers.append(math.nan)
            else:
                row.categories.append(MISSING_CATEGORY)
        elif rule.is_number:
            value = _number(rule, value, index)
            row.numbers.append(value)
        else:
            value = _category(rule, value, index)
            if value not in rule.categories:
                row.unseen.append(rule.name)
            row.categories.append(value)
        row.values[rule.name] = value
    if required is not None:
        msg = f"instance {index}: field {required!r} is required (MISSING_FIELDS=reject)"
        raise RequestError(msg, field=required, index=index)
    return row


def validate_instances(
    instances: list[Any], rules: list[FeatureRule], *, reject_missing: bool = False
) -> ValidatedBatch:
    """Check every instance; the first problem found becomes a RequestError naming it.

    A field left out (or null) is imputed by the model's pipeline and listed in
    `missing_fields`; with `reject_missing`, fields training never saw missing are required.
    """
    known = {rule.name for rule in rules}
    rows = [
        _check_instance(instance, index, rules, known, reject_missing=reject_missing)
        for index, instance in enumerate(instances)
    ]
    feeds = {}
    if any(rule.is_number for rule in rules):
        feeds[NUMERIC_INPUT] = np.array([row.numbers for row in rows], dtype=np.float32)
    if not all(rule.is_number for rule in rules):
        feeds[CATEGORICAL_INPUT] = np.array([row.categories for row in rows], dtype=object)
    return ValidatedBatch(
        feeds,
        [row.values for row in rows],
        [row.unseen for row in rows],
        [row.left_out for row in rows],
    )
