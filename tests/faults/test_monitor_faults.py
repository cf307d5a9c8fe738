"""Hostile log objects and labels in a monitored window: the real monitor flow completes and counts them.

A line of 100,000 nested brackets, a link to a file outside the storage, non-finite numbers in
an otherwise valid record, and a hand-planted label object (a class the model does not have, a
row that is no integer, deep nesting, not JSON) each cost only themselves.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from deployments.lambda_handler.contract import ServingSchema, label_partition
from flows.monitor import monitor_model
from monitoring.labels.commands import upload_labels
from tests.support.handler import load_handler, logged_files
from tests.support.labels import zero_one_champion
from tests.support.traffic import reference_traffic, send
from tests.support.training import monitor_settings

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]
MODEL = "monitor-faults"
SECRET = "SECRET-CONTENT-OUTSIDE-THE-STORAGE"


@pytest.fixture(scope="module")
def champion(tracking_uri: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("monitor-faults-home")
    return home, zero_one_champion(home, tracking_uri, MODEL)


@pytest.fixture
def storage(champion: tuple[Path, Path], mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return monitor_settings(monkeypatch, champion[0], mlops_env / "storage", MODEL)


def _plant_hostile_logs(folder: Path, record: dict, outside: Path) -> None:
    (folder / "nested.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    infinite = {**record, "request_id": "infinite", "probabilities": {"0": float("-inf"), "1": float("inf")}}
    not_a_number = {
        **record,
        "request_id": "nan",
        "features": dict.fromkeys(record["features"], float("nan")),
    }
    (folder / "non-finite.jsonl").write_text(json.dumps(infinite) + "\n" + json.dumps(not_a_number) + "\n")
    outside.write_text(json.dumps({**record, "request_id": SECRET}) + "\n")
    (folder / "link.jsonl").symlink_to(outside)


def test_hostile_objects_and_labels_cost_only_themselves(
    champion: tuple[Path, Path], storage: Path, tmp_path: Path
) -> None:
    _, bundle = champion
    app: ModuleType = load_handler(bundle, storage)
    instances, actuals = reference_traffic(bundle, 120, seed=5, sample="holdout.parquet")
    answers = send(app, instances, per_request=1)
    ids = [answer["request_id"] for answer in answers]
    schema = ServingSchema.load(bundle)
    upload_labels(
        pd.DataFrame({"request_id": ids[:60], "actual": [str(value) for value in actuals[:60]]}),
        storage.as_uri(),
        MODEL,
        schema,
    )
    first = logged_files(storage / "predictions")[0]
    record = json.loads(first.read_text().splitlines()[0])
    _plant_hostile_logs(first.parent, record, tmp_path / "outside.jsonl")
    stored = next((storage / "labels").rglob("*.jsonl"))
    planted = stored.parent / "zz-planted.jsonl"  # sorts after the upload: it would win if it counted
    planted.write_text(
        "".join(
            json.dumps({"request_id": request_id, "row": 0, "actual": "yes"}) + "\n"
            for request_id in ids[:70]
        )
        + json.dumps({"request_id": ids[90], "row": "abc", "actual": "1"})
        + "\n"
        + "[" * 100_000
        + "]" * 100_000
        + "\nnot json\n"
    )
    assert stored.parent == storage / label_partition(MODEL, pd.Timestamp(record["timestamp"]).floor("h"))

    summary = monitor_model()

    assert summary.rows == 120
    assert summary.bad_lines == 3  # the nested line, the infinite and the NaN record
    assert summary.bad_objects == 1  # the link, never read
    assert summary.prediction_drift is not None
    assert 0 <= summary.prediction_drift < 1
    quarantined = [
        json.loads(line)
        for line in Path(summary.quarantine_url.removeprefix("file://")).read_text().splitlines()
    ]
    assert {item["reason"] for item in quarantined} == {
        "not valid JSON: nested too deeply for the JSON parser",
        "probability of '0' is not a finite number",
        "feature 'mean_radius' is not a finite number",
        "symbolic link, not followed",
    }
    assert SECRET not in Path(summary.quarantine_url.removeprefix("file://")).read_text()
    assert summary.labelled_rows == 60  # the planted "yes" did not replace the uploaded labels
    assert summary.labels_set_aside == {
        "actual is not one of the classes 0, 1": 70,
        "not a label record (request_id text, row integer, actual number or text)": 1,
        "not valid JSON: nested too deeply for the JSON parser": 1,
        "not valid JSON": 1,
    }
    assert "roc_auc" in summary.live_metrics
    assert Path(summary.quality_report_url.removeprefix("file://")).is_file()
