"""Typical values of the inputs (median or most frequent) from the bundle's training rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deployments.lambda_handler.contract import MISSING_CATEGORY, REFERENCE_FILE, ServingSchema


@dataclass(frozen=True)
class Typical:
    """An input's typical value as the form shows it ("" when most rows leave it out)."""

    text: str
    integer: bool = False  # every training value is a whole number


def _number_text(value: float, integer: bool) -> str:
    if integer:
        return str(round(value))
    return f"{value:.6g}"


def _typical_number(values: pd.Series) -> Typical:
    present = pd.to_numeric(values, errors="coerce").dropna()
    integer = bool(len(present)) and bool((present % 1 == 0).all())
    if len(present) * 2 < len(values) or not len(present):  # mostly missing: leave it to the model
        return Typical("", integer)
    median = float(present.median())
    return Typical(_number_text(median, integer) if math.isfinite(median) else "", integer)


def _typical_category(values: pd.Series) -> Typical:
    counts = values.fillna(MISSING_CATEGORY).astype(str).value_counts(sort=False)
    if counts.empty:
        return Typical("")
    top = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable").index[0]
    return Typical("" if top == MISSING_CATEGORY else str(top))


def typical_values(bundle: Path, schema: ServingSchema) -> dict[str, Typical]:
    """Each input's median (numbers) or most frequent value (categories) in the training rows.

    A bundle without training rows falls back to the schema's example row.
    """
    path = bundle / REFERENCE_FILE
    if not path.is_file():
        example = schema.example or {}
        return {name: Typical(str(value)) for name, value in example.items() if name in schema.names}
    rows = pd.read_parquet(path, columns=schema.names)
    return {
        feature.name: _typical_number(rows[feature.name])
        if feature.is_number
        else _typical_category(rows[feature.name])
        for feature in schema.features
    }
