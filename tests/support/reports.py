"""Small real data for Evidently reports, and a reader of what a report's HTML page shows."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from deployments.lambda_handler.contract import PREDICTION, Feature, ServingSchema
from monitoring.drift.window_reports import ReportSubject
from monitoring.logs.window import Window

INPUTS = [f"x{i}" for i in range(8)]
# One input carries most of the importance: shifting it alone is weighted drift above 15% with
# a drifted share of 1/8 below it; shifting two others is the reverse (share 2/8, weight 12%).
IMPORTANCE = {name: 0.58 if name == "x0" else 0.06 for name in INPUTS}
SCHEMA = ServingSchema(
    "regression", "price", tuple(Feature(name, "number", nullable=False) for name in INPUTS)
)
SUBJECT = ReportSubject(
    "report-model",
    "3",
    Window(datetime(2026, 11, 23, 10, tzinfo=UTC), datetime(2026, 11, 24, 10, tzinfo=UTC)),
)
TITLE_SPAN = "report-model v3, window 2026-11-23 10:00 to 2026-11-24 10:00 UTC"


def frame(
    rows: int, shifts: dict[str, float], seed: int, categories: list[str] | None = None
) -> pd.DataFrame:
    """Standard normal inputs (some shifted by whole standard deviations) and a prediction."""
    rng = np.random.default_rng(seed)
    data = {name: rng.normal(shifts.get(name, 0.0), 1.0, rows) for name in INPUTS}
    data[PREDICTION] = rng.normal(200_000, 30_000, rows)
    if categories is not None:
        data["kind"] = rng.choice(categories, rows)
    return pd.DataFrame(data)


_DATA_LINE = re.compile(
    r"^\s*var (?P<name>(additional_graphs_)?metric_[0-9a-f]{32}) = (?P<json>.*);$", re.MULTILINE
)


def data_texts(html: str) -> dict[str, str]:
    """The JSON texts of the page's data block (the dashboard and its details graphs), as written."""
    return {match["name"]: match["json"] for match in _DATA_LINE.finditer(html)}


def page_data(html: str) -> dict[str, Any]:
    """The data the page's script draws, decoded."""
    return {name: json.loads(text) for name, text in data_texts(html).items()}


def dashboard_widgets(path: Path) -> list[dict[str, Any]]:
    """The top-level widgets the page draws, in order (the report's group, then the tests)."""
    (dashboard,) = (
        value for name, value in page_data(path.read_text("utf-8")).items() if name.startswith("metric_")
    )
    widgets: list[dict[str, Any]] = dashboard["widgets"]
    return widgets


def counters(widget: dict[str, Any]) -> list[tuple[str, str]]:
    """A counter widget's (value, label) pairs."""
    return [(item["value"], item["label"]) for item in widget["params"]["counters"]]
