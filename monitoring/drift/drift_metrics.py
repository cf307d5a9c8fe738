"""Custom Evidently metrics: importance-weighted drift and figures computed outside Evidently.

Both are single-value metrics in the Evidently 0.7 sense (a `SingleValueMetric` configuration
bound to a `SingleValueCalculation`), so they render in HTML reports and land in workspace
snapshots like built-in metrics. A snapshot stores each metric's configuration as plain
parameters (`"type": "evidently:metric_v2:WeightedDrift"` and the fields), never as a Python
object, so reading snapshots back (the UI does) needs no import of this module.

The UI plots one line per distinct metric type and parameter set. Parameters that change
from window to window without changing what is measured are therefore kept out of the
stored configuration: a `MonitorValue`'s `value`, and a `WeightedDrift`'s `importance`
(which changes with every retrained model). The widget of `WeightedDrift` lists the weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from evidently.core.datasets import Dataset
from evidently.core.metric_types import MetricConfig, SingleValue, SingleValueCalculation, SingleValueMetric
from evidently.core.report import Context
from evidently.legacy.calculations.stattests import StatTest
from evidently.legacy.options.data_drift import DataDriftOptions
from evidently.legacy.renderers.html_widgets import CounterData, counter, table_data
from evidently.metrics import ValueDrift

# Methods whose score is a distance: Evidently calls a column drifted when score >= threshold.
DISTANCE_METHODS = frozenset({"wasserstein", "jensenshannon", "hellinger", "kl_div", "psi"})


class WeightedDrift(SingleValueMetric):  # type: ignore[misc]
    """Share of the listed columns' total importance that sits in drifted columns (0 to 1).

    Method and threshold options mirror `DataDriftPreset`, which resolves them per column in
    the same way; with equal options the per-column `ValueDrift` results are shared with the
    preset in the same report instead of being computed twice.
    """

    columns: list[str]
    importance: dict[str, float]
    method: str | None = None
    num_method: str | None = None
    cat_method: str | None = None
    threshold: float | None = None
    num_threshold: float | None = None
    cat_threshold: float | None = None

    def value_drift(self, column: str, column_type: str) -> ValueDrift:
        """The per-column drift metric `DataDriftPreset` builds with the same options."""
        options = DataDriftOptions(
            all_features_stattest=self.method,
            num_features_stattest=self.num_method,
            cat_features_stattest=self.cat_method,
            all_features_threshold=self.threshold,
            num_features_threshold=self.num_threshold,
            cat_features_threshold=self.cat_threshold,
        )
        method = options.get_feature_stattest_func(column, column_type)
        if isinstance(method, StatTest):
            method = method.name
        return ValueDrift(column=column, method=method, threshold=options.get_threshold(column, column_type))


@dataclass(frozen=True)
class ColumnVerdict:
    """One column's drift score, its verdict and its weight."""

    column: str
    method: str
    score: float
    threshold: float
    importance: float

    @property
    def drifted(self) -> bool:
        """Evidently's rule for distance methods."""
        return self.score >= self.threshold


def weighted_share(verdicts: list[ColumnVerdict]) -> float:
    """Importance of the drifted columns over the importance of all of them."""
    total = sum(v.importance for v in verdicts)
    if total <= 0:
        raise ValueError("WeightedDrift needs a positive total importance over its columns")
    return sum(v.importance for v in verdicts if v.drifted) / total


class WeightedDriftCalculation(SingleValueCalculation[WeightedDrift]):  # type: ignore[misc]
    """Reads each column's `ValueDrift` through the context, which computes it at most once."""

    stored_without: ClassVar[frozenset[str]] = frozenset({"importance"})

    def calculate(self, context: Context, _current: Dataset, reference_data: Dataset | None) -> SingleValue:
        """The weighted share, with a table of the columns behind it."""
        if reference_data is None:
            raise ValueError("Reference data is required for WeightedDrift")
        verdicts = [self._verdict(context, column) for column in self.metric.columns]
        result = self.result(weighted_share(verdicts))
        result.widget = [
            counter(
                title=self.display_name(), counters=[CounterData(label="", value=f"{result.value:0.3f}")]
            ),
            table_data(
                title="Columns by importance",
                column_names=["Column", "Importance", "Method", "Score", "Threshold", "Drifted"],
                data=[
                    [v.column, f"{v.importance:.3f}", v.method, f"{v.score:.3f}", v.threshold, v.drifted]
                    for v in sorted(verdicts, key=lambda v: v.importance, reverse=True)
                ],
            ),
        ]
        return result

    def _verdict(self, context: Context, column: str) -> ColumnVerdict:
        column_type = context.data_definition.get_column_type(column).value
        drift = context.calculate_metric(self.metric.value_drift(column, column_type).to_calculation())
        params = drift.metric_value_location.metric.params
        if params["method"] not in DISTANCE_METHODS:
            msg = (
                f"WeightedDrift needs a distance method ({', '.join(sorted(DISTANCE_METHODS))}) for {column}"
            )
            raise ValueError(msg)
        return ColumnVerdict(
            column=column,
            method=str(params["method"]),
            score=float(drift.value),
            threshold=float(params["threshold"]),
            importance=float(self.metric.importance.get(column, 0.0)),
        )

    def display_name(self) -> str:
        """The title in reports and the UI."""
        return "Weighted drift (importance share of drifted features)"

    def to_metric_config(self) -> MetricConfig:
        """The stored configuration, without the per-model weights."""
        return _without(super().to_metric_config(), self.stored_without)


class MonitorValue(SingleValueMetric):  # type: ignore[misc]
    """A figure computed elsewhere (estimated or live RMSE, ...), stored as a metric named `name`."""

    name: str
    value: float

    def get_fingerprint_parts(self) -> tuple[Any, ...]:
        """The identity of the figure is its name; its value is the result, not configuration."""
        return tuple(part for part in super().get_fingerprint_parts() if part[0] != "value")


class MonitorValueCalculation(SingleValueCalculation[MonitorValue]):  # type: ignore[misc]
    """Returns the configured value."""

    stored_without: ClassVar[frozenset[str]] = frozenset({"value"})

    def calculate(self, _context: Context, _current: Dataset, _reference: Dataset | None) -> SingleValue:
        """The value as given."""
        return self.result(float(self.metric.value))

    def display_name(self) -> str:
        """The figure's name."""
        return str(self.metric.name)

    def to_metric_config(self) -> MetricConfig:
        """The stored configuration: the name only, so every window lands on the same series."""
        return _without(super().to_metric_config(), self.stored_without)


def _without(config: MetricConfig, names: frozenset[str]) -> MetricConfig:
    params = {key: value for key, value in config.params.items() if key not in names}
    return MetricConfig(metric_id=config.metric_id, params=params)
