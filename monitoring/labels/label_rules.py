"""What makes a label valid: the same rules when it is uploaded and when the monitor reads it back.

A label is `(request_id, row, actual)`. The request id must not be empty (and is never
stripped: an id with stray spaces is simply an id nobody logged); `row` is the instance's index
in its request, so an integer from 0 to one less than the function's largest batch; `actual`
is a finite number for regression and one of the schema's classes (compared as text) for
classification. Each rule gives one reason, so refusals are counted by what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deployments.lambda_handler.config import DEFAULT_MAX_BATCH_ROWS
from deployments.lambda_handler.contract import ServingSchema, Task

MAX_ROW = DEFAULT_MAX_BATCH_ROWS - 1
EMPTY_ID = "empty request_id"
BAD_ROW = f"row is not an integer from 0 to {MAX_ROW}"
NOT_FINITE = "actual is not a finite number"
ROW_DIGITS = 18  # below int64's range, far above MAX_ROW


def not_a_class(classes: tuple[str, ...]) -> str:
    """The reason for a classification label outside the model's classes."""
    return f"actual is not one of the classes {', '.join(classes)}"


@dataclass(frozen=True)
class LabelRules:
    """The model's task and classes: what an `actual` must be."""

    task: Task | None  # None: only request id and row are checked (the caller checks `actual`)
    classes: tuple[str, ...] = ()

    @classmethod
    def for_schema(cls, schema: ServingSchema) -> LabelRules:
        """The rules of a model's schema."""
        return cls(schema.task, schema.classes)

    @property
    def actual_type(self) -> pa.DataType:
        """How a valid `actual` is stored: a float for regression, the class as text otherwise."""
        return pa.float64() if self.task == "regression" else pa.string()


def rows_from_text(text: pa.Array) -> pa.Array:
    """CSV `row` cells as integers; null where a cell is not plain digits (`1e20`, `-1`, `1.5`, ``)."""
    digits = pc.match_substring_regex(text, f"^[0-9]{{1,{ROW_DIGITS}}}$")
    usable = pc.fill_null(digits, fill_value=False)
    return pc.if_else(usable, pc.cast(pc.if_else(usable, text, "0"), pa.int64()), None)


def actuals_from_text(text: pa.Array, rules: LabelRules) -> pa.Array:
    """CSV `actual` cells typed for the task; null where a regression cell is not a number."""
    if rules.task != "regression":
        return text
    numbers = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False), dtype=object), errors="coerce")
    return pa.array(numbers.to_numpy(dtype="float64"), type=pa.float64(), from_pandas=True)


def refusal_reasons(request_id: pa.Array, row: pa.Array, actual: pa.Array, rules: LabelRules) -> pa.Array:
    """Per label, why it is refused (null where it is valid); the first failing rule names it."""
    checks: list[tuple[pa.Array, str]] = [
        (pc.or_kleene(pc.is_null(request_id), pc.equal(pc.utf8_length(request_id), 0)), EMPTY_ID),
        (
            pc.or_kleene(
                pc.is_null(row), pc.invert(pc.and_(pc.greater_equal(row, 0), pc.less_equal(row, MAX_ROW)))
            ),
            BAD_ROW,
        ),
    ]
    if rules.task == "regression":
        finite = pc.fill_null(pc.is_finite(actual), fill_value=False)
        checks.append((pc.invert(finite), NOT_FINITE))
    elif rules.task == "classification":
        known = pc.fill_null(
            pc.is_in(actual, value_set=pa.array(rules.classes, pa.string())), fill_value=False
        )
        checks.append((pc.invert(known), not_a_class(rules.classes)))
    reasons = pa.nulls(len(request_id), pa.string())
    for failed, reason in reversed(checks):  # the first rule wins: apply it last
        reasons = pc.if_else(pc.fill_null(failed, fill_value=True), reason, reasons)
    return reasons


def count_reasons(reasons: pa.Array) -> dict[str, int]:
    """How many labels each reason refused."""
    counts = pc.value_counts(reasons.drop_null())
    return {str(item["values"]): int(item["counts"]) for item in counts.to_pylist()}


def bucket_of(request_id: pa.Array, buckets: int) -> np.ndarray:
    """A stable bucket per request id, so every label and log record of an id meet in one bucket."""
    hashes = pd.util.hash_array(request_id.to_numpy(zero_copy_only=False).astype(object))
    buckets_of: np.ndarray = (hashes % np.uint64(buckets)).astype(np.int64)
    return buckets_of
