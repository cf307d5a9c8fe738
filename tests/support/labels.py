"""A registered 0/1 classification champion, and the labels command run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.training import train_champion

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def zero_one_champion(home: Path, tracking_uri: str, model_name: str) -> Path:
    """Train and register a logistic regression on the breast cancer data, target 0/1; its bundle."""
    from sklearn.datasets import load_breast_cancer

    home.mkdir(parents=True, exist_ok=True)
    csv = home / "cancer01.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(csv, index=False)
    spec = home / "cancer01.json"
    spec.write_text(
        json.dumps(
            {"name": "cancer01", "target": "target", "task": "classification", "drop": [], "categorical": []}
        )
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_DATASET_SPEC", str(spec))
        _, bundle = train_champion(home, tracking_uri, csv, model_name, families=["logistic_regression"])
    return bundle


def labels_command(
    csv: Path, home: Path, storage: Path, tracking_uri: str, model_name: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`python -m monitoring.labels <csv>` in its own process, with the settings a user would set."""
    environment = {
        **{key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")},
        "MLOPS_HOME": str(home),
        "MLOPS_STORAGE_URL": str(storage),
        "MLOPS_MODEL_NAME": model_name,
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    return subprocess.run(
        [sys.executable, "-m", "monitoring.labels", str(csv), *extra],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
