"""Train a registered champion for tests that need one, in a home folder of their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.training import TrainingSummary, train_model
from tasks.registry.model_registry import fetch_bundle


def train_champion(
    home: Path, tracking_uri: str, csv: Path, model_name: str, families: list[str] | None = None
) -> tuple[TrainingSummary, Path]:
    """Run the training flow (no deploy) and return its summary and the champion's bundle."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_HOME", str(home))
        patch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
        patch.setenv("MLOPS_DEPLOY_ON_PROMOTION", "false")
        summary = train_model(str(csv), model_name=model_name, families=families)
    assert summary.promoted, summary.reason
    bundle, _ = fetch_bundle(tracking_uri, model_name, None, home / "bundle")
    return summary, bundle


def ridge_champion(
    folders: pytest.TempPathFactory, tracking_uri: str, csv: Path, model_name: str
) -> tuple[Path, Path]:
    """A registered champion of the ridge family (quick to fit): its home folder and its bundle."""
    home = folders.mktemp(f"{model_name}-home")
    _, bundle = train_champion(home, tracking_uri, csv, model_name, families=["ridge"])
    return home, bundle


def monitor_settings(
    monkeypatch: pytest.MonkeyPatch, home: Path, store: Path, model_name: str, **settings: str
) -> Path:
    """Point the monitor at a champion's home and a storage folder; retraining is off unless set.

    `settings` are further environment settings, by name (`MLOPS_MONITOR_ROW_CAP="100"`).
    """
    values = {
        "MLOPS_HOME": str(home),
        "MLOPS_STORAGE_URL": str(store),
        "MLOPS_MODEL_NAME": model_name,
        "MLOPS_RETRAIN_MODE": "off",
        **settings,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return store
