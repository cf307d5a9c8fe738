"""Hostile traffic cannot put markup into the HTML reports a user opens.

Anyone who may call `/predict` chooses the category values the monitor reports (unseen
categories are accepted). Evidently embeds the report's data in an inline script as plain
JSON, where a value like `</script><script>...` would close the script and run as the page's
code; the reports written by the monitor carry such values as data, never as markup.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
import pytest

from flows.monitor import monitor_model
from monitoring.drift.report_html import read_html
from monitoring.labels.commands import upload_labels
from tests.support.handler import load_handler
from tests.support.reports import data_texts, page_data
from tests.support.traffic import reference_traffic, send
from tests.support.training import monitor_settings, ridge_champion

pytestmark = pytest.mark.usefixtures("prefect_api")
MODEL = "ames-report-faults"
HOSTILE = [
    '</script><script>document.title="owned"</script>',
    "<!--<script>",
    "<img src=x onerror=alert(1)>",
]


@pytest.fixture(scope="module")
def champion(
    ames_csv: Path, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A registered Ames champion (ridge: quick) and its bundle."""
    return ridge_champion(tmp_path_factory, tracking_uri, ames_csv, MODEL)


@pytest.fixture
def storage(champion: tuple[Path, Path], mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return monitor_settings(monkeypatch, champion[0], mlops_env / "storage", MODEL)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _shown(html: str, text: str) -> bool:
    """Whether a string of the page's decoded data holds the text."""
    return any(text in item for item in _strings(page_data(html)))


def test_hostile_categories_are_data_in_both_reports_never_markup(
    champion: tuple[Path, Path], storage: Path
) -> None:
    bundle = champion[1]
    schema = json.loads((bundle / "schema.json").read_text())
    category = next(f["name"] for f in schema["features"] if f["type"] != "number")
    instances, actuals = reference_traffic(bundle, 240, seed=4, sample="holdout.parquet")
    for index, instance in enumerate(instances[:120]):
        instance[category] = HOSTILE[index % len(HOSTILE)]
    app: ModuleType = load_handler(bundle, storage)
    answers = send(app, instances, per_request=1)
    ids = [answer["request_id"] for answer in answers]
    upload_labels(pd.DataFrame({"request_id": ids, "actual": actuals}), storage.as_uri(), MODEL, "regression")

    summary = monitor_model()
    assert summary.rows == 240
    drift_html, quality_html = (read_html(url) for url in (summary.report_url, summary.quality_report_url))
    for html in (drift_html, quality_html):
        for value in HOSTILE:
            assert value not in html
        assert "<img" not in html.lower()
        texts = data_texts(html)
        assert len(texts) == 2  # the dashboard and its details graphs
        for text in texts.values():
            assert not set("<>&") & set(text)  # nothing the HTML parser could read as markup
    # The values are still in the drift report, as the data its script draws.
    for value in HOSTILE:
        assert _shown(drift_html, value), value
    window = f"window {summary.window_start:%Y-%m-%d %H:%M} to {summary.window_end:%Y-%m-%d %H:%M} UTC"
    assert _shown(drift_html, f"Drift of {MODEL} v1, {window}")
    assert _shown(quality_html, f"Live quality of {MODEL} v1, {window}")
