"""The shadow check on requests the real handler logged: a challenger worse on that traffic is refused."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from deployments.lambda_handler.contract import HOLDOUT_FILE, ServingSchema
from monitoring.logs.window import Window
from tasks.core.dataset_spec import AMES_SPEC
from tasks.learning.bundle import build_schema
from tasks.learning.candidate_selection import fit_candidate, select_deployable
from tasks.learning.data import prepare_data, read_table
from tasks.learning.promotion import apply_shadow_check, decide_promotion, promotion_markdown
from tasks.learning.shadow import Challenger, Champion, shadow_check
from tasks.learning.split import split_data
from tasks.learning.tuning import TuningResult
from tests.support.handler import load_handler
from tests.support.traffic import instances_from_reference, send

MODEL = "ames-test"


@pytest.fixture(scope="module")
def ames(ames_csv: Path):
    data = prepare_data(read_table(str(ames_csv), AMES_SPEC.missing_values), AMES_SPEC, str(ames_csv), 50)
    return data, split_data(data, None, 0.2, 42)


def _log(bundle: Path, storage: Path, instances: list[dict], per_request: int = 1) -> Window:
    """The champion's answers to `instances`, logged by the handler; the window that holds them."""
    app = load_handler(bundle, storage)
    started = datetime.now(UTC) - timedelta(minutes=1)
    send(app, instances, per_request=per_request)
    return Window(started, datetime.now(UTC) + timedelta(minutes=1))


@pytest.fixture
def logged(ames_bundle: Path, tmp_path: Path) -> tuple[Path, Window]:
    """The champion's answers to 120 requests, logged by the handler."""
    storage = tmp_path / "storage"
    return storage, _log(ames_bundle, storage, instances_from_reference(ames_bundle, 120), per_request=4)


def _challenger(ames, family: str, params: dict | None = None) -> Challenger:
    data, split = ames
    tuning = None if params is None else TuningResult(family, params, data.metric, None)
    deployable = select_deployable([fit_candidate(family, data, split, 0, tuning)], data, split.holdout, 1e-4)
    schema = ServingSchema.from_dict(build_schema(data, split.train).model_dump())
    return Challenger(deployable.onnx_model, data, schema, split.holdout, deployable.onnx_scores)


def _champion(bundle: Path) -> Champion:
    return Champion("1", ServingSchema.load(bundle), pd.read_parquet(bundle / HOLDOUT_FILE))


def test_a_challenger_worse_on_recent_traffic_is_refused(ames, ames_bundle: Path, logged) -> None:
    storage, window = logged
    flat = _challenger(ames, "ridge", {"alpha": 1e7})  # all but the mean shrunk away
    check = shadow_check(storage.as_uri(), MODEL, _champion(ames_bundle), flat, window, tolerance=0.05)
    assert check.rows == 120
    assert check.passed is False
    assert check.challenger_estimate > check.champion_estimate * 1.05
    assert check.agreement < 0.5
    gate = decide_promotion("rmsle", 0.1, 0.2, "1", higher_is_better=False, margin=0.0)
    decision = apply_shadow_check(gate, check)
    assert gate.promoted
    assert not decision.promoted
    assert "worse than the champion's" in decision.reason
    assert "| challenger |" in promotion_markdown(decision, "ridge")


def test_a_challenger_as_good_on_recent_traffic_passes(ames, ames_bundle: Path, logged) -> None:
    storage, window = logged
    twin = _challenger(ames, "ridge")  # the champion's family and data: the same answers
    check = shadow_check(storage.as_uri(), MODEL, _champion(ames_bundle), twin, window, tolerance=0.05)
    assert check.passed is True
    assert check.agreement > 0.95
    assert check.challenger_estimate == pytest.approx(check.champion_estimate, rel=0.05)


def test_without_logged_requests_nothing_is_compared(ames, ames_bundle: Path, tmp_path: Path) -> None:
    window = Window(datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC))
    check = shadow_check(
        tmp_path.as_uri(), MODEL, _champion(ames_bundle), _challenger(ames, "ridge"), window, 0.05
    )
    assert (check.rows, check.passed) == (0, None)
    assert "0 logged requests" in check.note


def test_the_same_request_again_and_again_is_no_sample_of_the_traffic(
    ames, ames_bundle: Path, tmp_path: Path
) -> None:
    storage = tmp_path / "storage"
    window = _log(ames_bundle, storage, instances_from_reference(ames_bundle, 1) * 60)
    flat = _challenger(ames, "ridge", {"alpha": 1e7})
    check = shadow_check(storage.as_uri(), MODEL, _champion(ames_bundle), flat, window, 0.05)
    assert (check.rows, check.passed) == (60, None)
    assert check.note == "only 1 distinct inputs among 60 logged requests"


def test_requests_outside_the_row_bounds_are_left_out_and_the_rest_still_decide(
    ames, ames_bundle: Path, tmp_path: Path
) -> None:
    """Ten houses above the 4,000 sq ft bound: left out, and the flat challenger is refused on the rest."""
    storage = tmp_path / "storage"
    houses = instances_from_reference(ames_bundle, 120)
    for house in houses[:10]:
        house["gr_liv_area"] = 5642
    window = _log(ames_bundle, storage, houses, per_request=4)
    flat = _challenger(ames, "ridge", {"alpha": 1e7})
    check = shadow_check(storage.as_uri(), MODEL, _champion(ames_bundle), flat, window, tolerance=0.05)
    assert (check.rows, check.passed) == (110, False)
    assert check.note == "10 requests outside the spec's row_bounds left out"
    gate = decide_promotion("rmsle", 0.1, 0.2, "1", higher_is_better=False, margin=0.0)
    assert "10 requests outside the spec's row_bounds left out." in promotion_markdown(
        apply_shadow_check(gate, check), "ridge"
    )


def test_an_estimate_that_cannot_be_trusted_decides_nothing(ames, ames_bundle: Path, logged) -> None:
    """A champion whose holdout errors lean one way (prices rose since training): shown, not deciding."""
    storage, window = logged
    champion = _champion(ames_bundle)
    risen = champion.holdout.assign(sale_price=lambda frame: frame["sale_price"] * 1.3)
    flat = _challenger(ames, "ridge", {"alpha": 1e7})  # refused against the same champion as it was
    check = shadow_check(
        storage.as_uri(), MODEL, replace(champion, holdout=risen), flat, window, tolerance=0.05
    )
    assert check.passed is None
    assert check.challenger_estimate is not None
    assert check.champion_estimate is not None
    assert "the estimates are unreliable on these requests (the champion: on the holdout the true values" in (
        check.note
    )
    gate = decide_promotion("rmsle", 0.1, 0.2, "1", higher_is_better=False, margin=0.0)
    decision = apply_shadow_check(gate, check)
    assert decision.promoted
    assert "shadow check not compared: the estimates are unreliable" in decision.reason
    markdown = promotion_markdown(decision, "ridge")
    assert "Not compared: the estimates are unreliable" in markdown
    assert "| challenger |" in markdown
