"""Evidently containers of the monitor's reports: the verdict's drift headline and the title.

Evidently's `DataDriftPreset` heads a report with "Dataset Drift is (NOT) detected" from the
plain share of drifted columns (drift when the share reaches its `drift_share`), and its
dataset-level test is `share < drift_share`. The verdict compares the measure
`MLOPS_DRIFT_MEASURE` chooses (by default the weighted drift) with `MLOPS_DRIFT_THRESHOLD` and
calls a window drift when the measure is above it. `VerdictDriftPreset` keeps the preset's
counters and per-column table, makes the verdict's comparison the one dataset-level test
(`measure <= threshold` on `WeightedDrift` or on the drifted share) and heads the report with
that test's outcome, so the report and the verdict cannot disagree.

Containers are not stored in snapshots (their widgets are), so the UI needs neither class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evidently.core.container import MetricContainer
from evidently.core.metric_types import CountValue, MetricId, MetricTest, SingleValue
from evidently.core.report import Context
from evidently.legacy.model.widget import BaseWidgetInfo
from evidently.legacy.renderers.html_widgets import CounterData, counter, header_text
from evidently.legacy.tests.base_test import TestStatus
from evidently.metrics.column_statistics import DriftedColumnsCount
from evidently.presets import DataDriftPreset
from evidently.tests import lte

from monitoring.drift.drift_metrics import MonitorValue, WeightedDrift
from monitoring.verdict.decision import MEASURE_TEXT
from tasks.core.settings import DriftMeasure

ChildWidgets = list[tuple[MetricId | None, list[BaseWidgetInfo]]] | None

_PRESET_HEADLINE = "Dataset Drift is"  # how DataDriftPreset's own share headline starts


@dataclass(frozen=True)
class WindowMeasures:
    """The verdict's drift figures over every row of a window (the report may show a sample of them)."""

    weighted: float
    share: float
    rows: int


class VerdictDriftPreset(DataDriftPreset):  # type: ignore[misc]
    """`DataDriftPreset` whose dataset-level test and headline are the verdict's measure and threshold.

    `drift_share` is the verdict's threshold whatever the measure; `importance` weights the
    columns of the `WeightedDrift` the preset adds beside its drifted-columns count.
    """

    importance: dict[str, float]
    measure: str
    window: WindowMeasures | None

    def __init__(
        self,
        *,
        columns: list[str],
        importance: dict[str, float],
        measure: DriftMeasure,
        threshold: float,
        num_method: str,
        cat_method: str,
        num_threshold: float,
        cat_threshold: float,
        window: WindowMeasures | None = None,
    ) -> None:
        self.importance = importance
        self.measure = measure
        self.window = window
        super().__init__(
            columns=columns,
            drift_share=threshold,
            num_method=num_method,
            cat_method=cat_method,
            num_threshold=num_threshold,
            cat_threshold=cat_threshold,
        )

    def _tests(self, measure: DriftMeasure) -> list[MetricTest]:
        if self.window is not None:  # the whole window's figure carries the test, not the sample's
            return []
        return [lte(self.drift_share)] if self.measure == measure else []

    def window_value(self) -> MonitorValue:
        """The verdict's measure over every row of the window, tested against the threshold."""
        if self.window is None:
            msg = "no window measures were given"
            raise ValueError(msg)
        value = self.window.weighted if self.measure == "weighted" else self.window.share
        name = f"{MEASURE_TEXT[self.measure]}, all {self.window.rows:,} rows"  # type: ignore[index]
        return MonitorValue(name=name[0].upper() + name[1:], value=value, tests=[lte(self.drift_share)])

    def drifted_columns(self) -> DriftedColumnsCount:
        """The drifted-columns count, tested on its share only when the verdict uses the share."""
        return DriftedColumnsCount(
            columns=self.columns,
            drift_share=self.drift_share,
            num_method=self.num_method,
            cat_method=self.cat_method,
            num_threshold=self.num_threshold,
            cat_threshold=self.cat_threshold,
            tests=[],
            share_tests=self._tests("share"),
        )

    def weighted_drift(self) -> WeightedDrift:
        """The importance share of drifted columns, tested when the verdict uses it."""
        return WeightedDrift(
            columns=self.columns,
            importance=self.importance,
            num_method=self.num_method,
            cat_method=self.cat_method,
            num_threshold=self.num_threshold,
            cat_threshold=self.cat_threshold,
            tests=self._tests("weighted"),
        )

    def generate_metrics(self, context: Context) -> Sequence[Any]:
        """The preset's per-column drift, with the count and the weighted drift carrying the test."""
        columns = [m for m in super().generate_metrics(context) if not isinstance(m, DriftedColumnsCount)]
        window = [] if self.window is None else [self.window_value()]
        return [*window, self.drifted_columns(), self.weighted_drift(), *columns]

    def render(self, context: Context, child_widgets: ChildWidgets = None) -> list[BaseWidgetInfo]:
        """The verdict's headline, then the preset's counters and table (without its share headline)."""
        widgets: list[BaseWidgetInfo] = super().render(context, child_widgets)
        if widgets and _is_preset_headline(widgets[0]):
            widgets = widgets[1:]
        return [self._headline(context), *widgets]

    def _headline(self, context: Context) -> BaseWidgetInfo:
        weighted: SingleValue = context.get_metric_result(self.weighted_drift())
        count: CountValue = context.get_metric_result(self.drifted_columns())
        if self.window is None:
            measured = weighted if self.measure == "weighted" else count
            weighted_value, share_value, scope = weighted.value, count.share.value, ""
        else:
            measured = context.get_metric_result(self.window_value())
            weighted_value, share_value = self.window.weighted, self.window.share
            scope = f" over all {self.window.rows:,} rows"
        (test,) = measured.tests  # the one test this preset gives the verdict's measure
        value = weighted_value if self.measure == "weighted" else share_value
        drift = test.status == TestStatus.FAIL
        relation = "above" if drift else "within"
        name = MEASURE_TEXT[self.measure]  # type: ignore[index]
        sentence = f"{name}{scope} {value:.1%} is {relation} the threshold {self.drift_share:.1%}"
        return counter(
            counters=[
                CounterData(
                    f"{sentence[0].upper()}{sentence[1:]} (MLOPS_DRIFT_MEASURE={self.measure})",
                    "Drift is detected" if drift else "Drift is NOT detected",
                ),
                CounterData.float(MEASURE_TEXT["weighted"] + scope, weighted_value, 3),
                CounterData.float(MEASURE_TEXT["share"] + scope, share_value, 3),
            ]
        )


def _is_preset_headline(widget: BaseWidgetInfo) -> bool:
    counters = widget.params.get("counters") or [{}]
    return str(counters[0].get("label", "")).startswith(_PRESET_HEADLINE)


class ReportTitle(MetricContainer):  # type: ignore[misc]
    """A heading at the top of a report: what it is about (model, version, window)."""

    title: str

    def __init__(self, title: str) -> None:
        self.title = title
        super().__init__(include_tests=False)

    def generate_metrics(self, _context: Context) -> Sequence[Any]:
        """No metrics: the title only renders."""
        return []

    def render(self, _context: Context, _child_widgets: ChildWidgets = None) -> list[BaseWidgetInfo]:
        """One header widget with the title."""
        return [header_text(label=self.title)]
