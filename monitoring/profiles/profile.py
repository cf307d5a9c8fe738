"""A mergeable profile of logged rows: per-bin counts and sums of numbers, category counts, missing values.

An hour's profile is computed once from its rows with Arrow compute and numpy (no per-row
Python, no pandas copy of the hour), and profiles of the same bins add up: a window's profile
is the sum of its hours'. Per numeric bin the sum of the values is kept beside the count, so a
bin's mass sits at its exact mean; with the reference's values as edges that makes the
Wasserstein distance exact outside the bins where the two distribution functions cross.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from monitoring.profiles.bins import ReferenceBins

MAX_CATEGORIES = 1000  # distinct values kept per column; rarer new ones are counted together
OTHER = "\x00other"  # the bucket of categories past the cap (no real value starts with NUL)


@dataclass
class NumericProfile:
    """Counts and value sums per bin (`len(edges) + 1` bins), missing values, extremes."""

    counts: np.ndarray
    sums: np.ndarray
    missing: int = 0
    minimum: float = float("inf")
    maximum: float = float("-inf")

    def add(self, other: NumericProfile) -> None:
        """Add another profile of the same bins."""
        self.counts = self.counts + other.counts
        self.sums = self.sums + other.sums
        self.missing += other.missing
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)

    @property
    def present(self) -> int:
        """Rows with a value."""
        return int(self.counts.sum())


@dataclass
class CategoricalProfile:
    """Counts per category (at most `MAX_CATEGORIES`, the rest under `OTHER`) and missing values."""

    counts: dict[str, int] = field(default_factory=dict)
    missing: int = 0

    def add(self, other: CategoricalProfile) -> None:
        """Add another profile; categories past the cap join `OTHER`."""
        for value, count in other.counts.items():
            key = value if value in self.counts or len(self.counts) < MAX_CATEGORIES else OTHER
            self.counts[key] = self.counts.get(key, 0) + count
        self.missing += other.missing


@dataclass
class Profile:
    """The profile of some rows against one set of bins (`fingerprint`)."""

    fingerprint: str
    rows: int = 0
    numeric: dict[str, NumericProfile] = field(default_factory=dict)
    categorical: dict[str, CategoricalProfile] = field(default_factory=dict)

    def add(self, other: Profile) -> None:
        """Add the profile of other rows counted against the same bins."""
        if other.fingerprint != self.fingerprint:
            msg = f"profiles of different bins ({other.fingerprint} vs {self.fingerprint}) cannot be merged"
            raise ValueError(msg)
        self.rows += other.rows
        for name, part in other.numeric.items():
            if name in self.numeric:
                self.numeric[name].add(part)
            else:
                self.numeric[name] = NumericProfile(
                    part.counts.copy(), part.sums.copy(), part.missing, part.minimum, part.maximum
                )
        for name, counted in other.categorical.items():
            self.categorical.setdefault(name, CategoricalProfile()).add(counted)

    def missing_share(self, name: str) -> float:
        """Share of rows without a value in the column."""
        part = self.numeric.get(name) or self.categorical.get(name)
        return 0.0 if part is None or self.rows == 0 else part.missing / self.rows

    def to_json(self) -> bytes:
        """The profile as JSON (bins as lists)."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain JSON values."""
        return {
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "numeric": {
                name: {
                    "counts": part.counts.tolist(),
                    "sums": part.sums.tolist(),
                    "missing": part.missing,
                    "minimum": part.minimum if part.present else None,
                    "maximum": part.maximum if part.present else None,
                }
                for name, part in self.numeric.items()
            },
            "categorical": {
                name: {"counts": part.counts, "missing": part.missing}
                for name, part in self.categorical.items()
            },
        }

    @classmethod
    def from_json(cls, payload: bytes) -> Profile:
        """Read `to_json`'s form back; KeyError, TypeError or ValueError when it is not one."""
        return cls.from_dict(json.loads(payload))

    @classmethod
    def from_dict(cls, body: dict[str, Any]) -> Profile:
        """The profile from `to_json`'s form already parsed."""
        numeric = {
            name: NumericProfile(
                np.asarray(part["counts"], dtype="int64"),
                np.asarray(part["sums"], dtype="float64"),
                int(part["missing"]),
                float("inf") if part["minimum"] is None else float(part["minimum"]),
                float("-inf") if part["maximum"] is None else float(part["maximum"]),
            )
            for name, part in body["numeric"].items()
        }
        categorical = {
            name: CategoricalProfile(
                {str(k): int(v) for k, v in part["counts"].items()}, int(part["missing"])
            )
            for name, part in body["categorical"].items()
        }
        return cls(str(body["fingerprint"]), int(body["rows"]), numeric, categorical)


def _numeric(column: pa.ChunkedArray | None, rows: int, edges: np.ndarray) -> NumericProfile:
    if column is None:
        return NumericProfile(np.zeros(len(edges) + 1, "int64"), np.zeros(len(edges) + 1), missing=rows)
    values = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    finite = values[np.isfinite(values)]
    bins = np.searchsorted(edges, finite, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype("int64")
    sums = np.bincount(bins, weights=finite, minlength=len(edges) + 1)
    minimum = float(finite.min()) if len(finite) else float("inf")
    maximum = float(finite.max()) if len(finite) else float("-inf")
    return NumericProfile(counts, sums, rows - len(finite), minimum, maximum)


def _categorical(column: pa.ChunkedArray | None, rows: int) -> CategoricalProfile:
    if column is None:
        return CategoricalProfile(missing=rows)
    text = pc.cast(column, pa.string())
    present = pc.drop_null(pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text))
    counted = pc.value_counts(present)
    values = counted.field("values").to_pylist()
    counts = counted.field("counts").to_pylist()
    profile = CategoricalProfile(missing=rows - len(present))
    profile.add(CategoricalProfile(dict(sorted(zip(values, counts, strict=True), key=lambda item: -item[1]))))
    return profile


def profile_of(table: pa.Table, bins: ReferenceBins) -> Profile:
    """Count the rows of a flat log table (features as columns) against the bins."""
    names = set(table.column_names)
    rows = table.num_rows
    return Profile(
        fingerprint=bins.fingerprint,
        rows=rows,
        numeric={
            name: _numeric(table.column(name) if name in names else None, rows, edges)
            for name, edges in bins.edges.items()
        },
        categorical={
            name: _categorical(table.column(name) if name in names else None, rows)
            for name in bins.categorical
        },
    )
