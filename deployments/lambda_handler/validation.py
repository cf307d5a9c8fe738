"""Check request instances against the training schema and turn them into model inputs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .contract import CATEGORICAL_INPUT, MISSING_CATEGORY, NUMERIC_INPUT, ServingSchema

FLOAT32_MAX = float(np.finfo(np.float32).max)
# A number farther than this many widths of its training range beyond that range is refused:
# far enough out that no real input (a house 30% bigger than any sold) is turned away, close
# enough that a model stays finite (a linear model fed 3.4e38 answers Infinity).
RANGE_WIDTHS = 10.0


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
    minimum: float | None = None  # the training range, when training saw numbers
    maximum: float | None = None
    accepted: tuple[float, float] | None = None  # numbers outside are refused
    flag_outside: bool = True  # a number outside the training range is named in the answer

    def outside_training(self, value: float) -> bool:
        """Whether a number lies outside the range training saw (the model extrapolates)."""
        return self.flag_outside and self.widths_outside(value) > 0

    def widths_outside(self, value: float) -> float:
        """How many range widths a number lies beyond the training range (0 inside it)."""
        if self.minimum is None or self.maximum is None:
            return 0.0
        return max(self.minimum - value, value - self.maximum, 0.0) / _width(self.minimum, self.maximum)


def _width(minimum: float, maximum: float) -> float:
    """A range's width, at least a tenth of its largest bound and at least 1.

    So an input that barely varied in training (a constant has width 0) is not held to a
    needle's eye.
    """
    return max(maximum - minimum, 0.1 * max(abs(minimum), abs(maximum)), 1.0)


def accepted_range(minimum: float | None, maximum: float | None) -> tuple[float, float] | None:
    """The numbers accepted for an input: its training range widened by `RANGE_WIDTHS` widths."""
    if minimum is None or maximum is None:
        return None
    width = _width(minimum, maximum)
    return minimum - RANGE_WIDTHS * width, maximum + RANGE_WIDTHS * width


@dataclass
class ValidatedBatch:
    """Model feeds plus the cleaned instances, and per row what the model did not learn from.

    That is: categories training never saw, fields left out, and numbers outside the training range.
    """

    feeds: dict[str, np.ndarray]  # the numeric and the categorical matrix, columns in schema order
    instances: list[dict[str, Any]]
    unknown_categories: list[list[str]] = field(default_factory=list)
    missing_fields: list[list[str]] = field(default_factory=list)
    outside_training: list[list[str]] = field(default_factory=list)


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
    """Validation rules for each feature of the model's schema.

    Numbers outside the training range are named in the answer, except for the inputs the
    monitor leaves out (`monitor_exclude`: a sale's year is past training on every new request).
    """
    rules = []
    excluded = set(schema.monitor_exclude)
    for feature in schema.features:
        minimum = None if feature.minimum is None else float(feature.minimum)
        maximum = None if feature.maximum is None else float(feature.maximum)
        rules.append(
            FeatureRule(
                name=feature.name,
                is_number=feature.is_number,
                nullable=feature.nullable,
                categories=frozenset(feature.categories),
                minimum=minimum,
                maximum=maximum,
                accepted=accepted_range(minimum, maximum) if feature.is_number else None,
                flag_outside=feature.name not in excluded,
            )
        )
    return rules


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
    accepted = rule.accepted
    if accepted is not None and not accepted[0] <= number <= accepted[1]:
        msg = (
            f"instance {index}: field {rule.name!r} is {number:g}, far outside the training range "
            f"{rule.minimum:g} to {rule.maximum:g} (accepted: {accepted[0]:g} to {accepted[1]:g})"
        )
        raise RequestError(msg, field=rule.name, index=index)
    return number


def check_text(text: str, what: str, *, field: str | None = None, index: int | None = None) -> str:
    """A string that encodes as UTF-8: an escaped lone surrogate in JSON decodes to one that does not."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            msg = f"{what} is not valid Unicode text (it holds a lone surrogate)"
            raise RequestError(msg, field=field, index=index) from None
    return text


def _category(rule: FeatureRule, value: Any, index: int) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        msg = f"instance {index}: field {rule.name!r} must be a string, got {_json_type(value)}"
        raise RequestError(msg, field=rule.name, index=index)
    if isinstance(value, int):
        return str(value)
    # training strips the whitespace around categories ("WD " in the Ames file is the category "WD")
    return check_text(value, f"instance {index}: field {rule.name!r}", field=rule.name, index=index).strip()


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
    outside: list[str] = field(default_factory=list)

    def take(self, rule: FeatureRule, value: Any, index: int) -> float | str:
        """Check a given value and add it to the model inputs, noting what training never saw."""
        if rule.is_number:
            number = _number(rule, value, index)
            if rule.outside_training(number):
                self.outside.append(rule.name)
            self.numbers.append(number)
            return number
        category = _category(rule, value, index)
        if category not in rule.categories:
            self.unseen.append(rule.name)
        self.categories.append(category)
        return category


def _check_instance(
    instance: Any, index: int, rules: list[FeatureRule], known: set[str], *, reject_missing: bool
) -> _Row:
    if not isinstance(instance, dict):
        msg = f"instance {index} must be a JSON object, got {_json_type(instance)}"
        raise RequestError(msg, index=index)
    extra = sorted(set(instance) - known)
    if extra:
        name = str(extra[0]).encode("utf-8", "backslashreplace").decode("utf-8")
        msg = f"instance {index}: unknown field {name!r}"
        raise RequestError(msg, field=name, index=index)
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
        else:
            value = row.take(rule, value, index)
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
        [row.outside for row in rows],
    )


def _farthest_input(instance: dict[str, Any], rules: list[FeatureRule]) -> tuple[FeatureRule, float] | None:
    """The numeric input of an instance that lies the most range widths outside training."""
    outside = [
        (rule.widths_outside(instance[rule.name]), rule)
        for rule in rules
        if rule.is_number and isinstance(instance.get(rule.name), float)
    ]
    widths, rule = max(outside, key=lambda item: item[0], default=(0.0, None))
    return None if rule is None or widths == 0.0 else (rule, widths)


def refuse_non_finite(
    values: list[Any],
    probabilities: list[dict[str, float]] | None,
    batch: ValidatedBatch,
    rules: list[FeatureRule],
) -> None:
    """Refuse a batch whose model output is not finite, naming the input that pushed it there.

    Inputs within the accepted ranges keep every family finite in practice; this is the last
    guard, before anything is logged or answered. A non-finite output with every input inside
    its training range is the model's fault, not the client's, and stays a server error.
    """
    for index, value in enumerate(values):
        finite = not isinstance(value, float) or math.isfinite(value)
        if probabilities is not None:
            finite = finite and all(math.isfinite(p) for p in probabilities[index].values())
        if finite:
            continue
        farthest = _farthest_input(batch.instances[index], rules)
        if farthest is None:
            msg = f"instance {index}: the model's output is not finite although every input is in range"
            raise ArithmeticError(msg)
        rule, widths = farthest
        msg = (
            f"instance {index}: the model cannot answer for these inputs (its output is not finite); "
            f"field {rule.name!r} is {batch.instances[index][rule.name]:g}, {widths:.3g} range widths "
            f"outside training ({rule.minimum:g} to {rule.maximum:g})"
        )
        raise RequestError(msg, status=422, field=rule.name, index=index)
