"""The reference's bins: what every hour of a model's logs is counted against.

Numbers are binned on the reference's own values (every distinct value when there are at most
`MAX_EDGES`, else that many quantiles), so the reference's distribution function is constant
inside a bin. Categories are the reference's, plus whatever new ones a window brings (counted
up to a cap). The fingerprint names the bins: hourly profiles are merged only when it matches.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from deployments.lambda_handler.contract import ServingSchema

MAX_EDGES = 1000


@dataclass(frozen=True)
class ReferenceBins:
    """Bin edges of every numeric column, the reference values behind them, and the categorical columns."""

    edges: dict[str, np.ndarray]
    reference_values: dict[str, np.ndarray]  # finite reference values of each numeric column
    reference_counts: dict[str, dict[str, int]]  # category counts of the reference
    fingerprint: str

    @property
    def numeric(self) -> list[str]:
        """The numeric columns (inputs and the score)."""
        return list(self.edges)

    @property
    def categorical(self) -> list[str]:
        """The categorical inputs."""
        return list(self.reference_counts)


def numbers(column: pd.Series) -> np.ndarray:
    """A column as finite floats (text, missing and non-finite values dropped)."""
    values: np.ndarray = pd.to_numeric(column, errors="coerce").to_numpy("float64")
    finite: np.ndarray = values[np.isfinite(values)]
    return finite


def categories(column: pd.Series) -> pd.Series:
    """A column as text, missing and empty values dropped."""
    column = column[column.notna()].astype(str)
    return column[column != ""]


def edges_of(values: np.ndarray) -> np.ndarray:
    """Distinct reference values, or `MAX_EDGES` quantiles of them when there are more."""
    distinct = np.unique(values)
    if len(distinct) <= MAX_EDGES:
        return distinct
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, MAX_EDGES)))


def reference_bins(reference: pd.DataFrame, schema: ServingSchema) -> ReferenceBins:
    """Bins of the inputs and the score column, from the model's reference rows."""
    empty = pd.Series(dtype=object)
    values = {
        name: numbers(reference[name] if name in reference.columns else empty)
        for name in [*schema.numeric, schema.score_column]
    }
    counts = {
        name: {str(k): int(v) for k, v in categories(reference.get(name, empty)).value_counts().items()}
        for name in schema.categorical
    }
    edges = {name: edges_of(column) for name, column in values.items()}
    described = {
        "edges": {name: column.tolist() for name, column in edges.items()},
        "categories": {name: sorted(column) for name, column in counts.items()},
    }
    fingerprint = hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]
    return ReferenceBins(edges, values, counts, fingerprint)
