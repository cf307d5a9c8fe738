"""The command lines of `python -m flows.*`: options become the flows' parameters, checked first."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows.cli.options import command_parameters
from tasks.core.dataset_spec import DatasetSpec
from tasks.core.errors import UsageError
from tasks.core.settings import SettingsError
from tests.conftest import PROJECT_ROOT


def test_no_options_run_the_flows_as_before(mlops_env: Path) -> None:
    assert command_parameters("training", []) == {"reason": "manual"}
    assert command_parameters("monitor", []) == {"ignore_cooldown": False}
    assert command_parameters("deploy", []) == {}


def test_training_options_are_the_train_flows_parameters(mlops_env: Path) -> None:
    spec = mlops_env / "spec.json"
    spec.write_text(
        json.dumps({"name": "churn", "target": "Churned", "task": "classification"}), encoding="utf-8"
    )
    parameters = command_parameters(
        "training",
        [
            "--data-source=s3://bucket/churn.parquet",
            f"--dataset-spec={spec}",
            "--model=churn",
            "--families=ridge, lightgbm",
            "--reason=backfill",
            "--production-hours=48",
            "--retrain-data=recent",
            "--promotion-margin=0.02",
            "--no-deploy",
        ],
    )
    assert parameters == {
        "data_source": "s3://bucket/churn.parquet",
        "dataset": DatasetSpec(name="churn", target="Churned", task="classification"),
        "model_name": "churn",
        "families": ["ridge", "lightgbm"],
        "reason": "backfill",
        "production_hours": 48.0,
        "retrain_data": "recent",
        "promotion_margin": 0.02,
        "deploy_on_promotion": False,
    }


def test_monitoring_options_are_the_monitor_flows_parameters(mlops_env: Path) -> None:
    parameters = command_parameters(
        "monitor",
        [
            "--start=2026-11-23T00:00:00",
            "--end=2026-11-24T00:00:00Z",
            "--drift-measure=share",
            "--ignore-cooldown",
        ],
    )
    assert parameters == {
        "start": datetime(2026, 11, 23, tzinfo=UTC),
        "end": datetime(2026, 11, 24, tzinfo=UTC),
        "drift_measure": "share",
        "ignore_cooldown": True,
    }


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        (["--start=2026-11-23"], UsageError, "--start and --end go together"),
        (["--start=2026-11-24", "--end=2026-11-23"], UsageError, "is not after --start"),
        (
            ["--drift-threshold=3"],
            SettingsError,
            "Invalid parameters: drift_threshold=3.0: Input should be less than 1",
        ),
        (["--window-hours=nan"], SettingsError, "monitor_window_hours=nan: Input should be a finite number"),
        (["--model=../x"], SettingsError, "model_name='../x': use letters, digits"),
    ],
)
def test_wrong_option_values_are_one_line(
    mlops_env: Path, argv: list[str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        command_parameters("monitor", argv)


def test_the_command_line_is_checked_without_the_heavy_imports() -> None:
    """`import flows` (what `python -m flows.x` runs first) brings neither Prefect nor the ML libraries."""
    probe = "import sys, flows; print(sorted({'prefect', 'sklearn', 'mlflow', 'pandas'} & set(sys.modules)))"
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert completed.stdout.strip() == "[]"
