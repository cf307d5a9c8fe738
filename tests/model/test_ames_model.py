"""The Ames champion: accuracy on the holdout and behaviour of its ONNX bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flows.training import TrainingSummary
from tasks.learning.onnx_export import create_session, onnx_scores
from tests.support.training import train_champion

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_api")]


@pytest.fixture(scope="module")
def ames_champion(
    ames_csv: Path, tracking_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainingSummary, Path]:
    return train_champion(tmp_path_factory.mktemp("ames"), tracking_uri, ames_csv, "ames-model-test")


@pytest.fixture(scope="module")
def scorer(ames_champion):
    _, bundle = ames_champion
    schema = json.loads((bundle / "schema.json").read_text())
    numeric = [f["name"] for f in schema["features"] if f["type"] == "number"]
    categorical = [f["name"] for f in schema["features"] if f["type"] == "category"]
    session = create_session((bundle / "model.onnx").read_bytes())

    def score(rows: list[dict]) -> np.ndarray:
        frame = pd.DataFrame(rows)
        for name in numeric:
            frame[name] = pd.to_numeric(frame.get(name), errors="coerce")
        for name in categorical:
            frame[name] = frame.get(name, pd.Series([""] * len(frame))).fillna("")
        return onnx_scores(session, frame, numeric, categorical, "regression")

    return schema, score


def test_holdout_accuracy_meets_the_bar(ames_champion) -> None:
    summary, _ = ames_champion
    assert summary.promoted
    assert summary.metrics["rmse"] < 30_000
    assert summary.metrics["rmsle"] < 0.2
    assert summary.metrics["r2"] > 0.85


def test_bigger_living_area_costs_more(scorer) -> None:
    schema, score = scorer
    example = schema["example"]
    areas = [1000, 1500, 2000, 2500]
    prices = score([{**example, "gr_liv_area": area} for area in areas])
    assert prices[-1] > prices[0] * 1.1
    assert np.all(np.diff(prices) >= -0.01 * prices[:-1])  # never meaningfully cheaper


def test_better_quality_costs_more(scorer) -> None:
    schema, score = scorer
    low, high = score([{**schema["example"], "overall_qual": 4}, {**schema["example"], "overall_qual": 9}])
    assert high > low


def test_unknown_category_and_missing_values_still_predict(scorer) -> None:
    schema, score = scorer
    example = dict(schema["example"])
    prices = score(
        [{**example, "neighborhood": "Atlantis"}, {k: v for k, v in example.items() if k != "lot_frontage"}]
    )
    assert np.all(np.isfinite(prices))
    assert np.all((prices > 10_000) & (prices < 1_000_000))


def test_schema_describes_what_training_saw(scorer) -> None:
    schema, _ = scorer
    features = {f["name"]: f for f in schema["features"]}
    assert len(features) == 79
    assert features["gr_liv_area"]["type"] == "number"
    assert features["gr_liv_area"]["minimum"] > 0
    assert features["lot_frontage"]["nullable"]
    assert 0 < features["lot_frontage"]["null_rate"] < 0.3
    assert "NAmes" in features["neighborhood"]["categories"]
    assert features["ms_sub_class"]["type"] == "category"
