"""Shared fixtures: isolated state folders, small real data sets and a Prefect test API."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
os.environ.setdefault("PREFECT_HOME", str(_SESSION_HOME / "prefect"))
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
# Flows under test train the fixed parameters (fast); tests that tune set MLOPS_TUNING_TRIALS.
os.environ.setdefault("MLOPS_TUNING_TRIALS", "0")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
AMES_CSV = Path(os.environ.get("MLOPS_TEST_AMES_CSV", PROJECT_ROOT.parent / "shared/data/AmesHousing.csv"))


@pytest.fixture(scope="session")
def session_home() -> Path:
    """A temporary folder for state that several tests share (one MLflow store, one API)."""
    return _SESSION_HOME


@pytest.fixture(scope="session")
def tracking_uri(session_home: Path) -> str:
    """One real SQLite MLflow store for the session; tests use distinct model names."""
    return f"sqlite:///{session_home / 'mlflow.db'}"


@pytest.fixture
def mlops_env(tmp_path: Path, tracking_uri: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every setting at a fresh folder and the session's MLflow store."""
    for name in list(os.environ):
        if name.startswith("MLOPS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)
    monkeypatch.setenv("MLOPS_DEPLOY_ON_PROMOTION", "false")
    monkeypatch.setenv("MLOPS_TUNING_TRIALS", "0")
    return tmp_path


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """A throwaway Prefect API for the whole session (it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def ames_csv() -> Path:
    """The shared Ames copy; its absence is an error, not a skip."""
    if not AMES_CSV.is_file():
        pytest.fail(f"Ames data not found at {AMES_CSV}; set MLOPS_TEST_AMES_CSV")
    return AMES_CSV


def _sklearn_csv(folder: Path, loader_name: str) -> Path:
    from sklearn import datasets

    bunch = getattr(datasets, loader_name)(as_frame=True)
    frame = bunch.frame.copy()
    path = folder / f"{loader_name.removeprefix('load_')}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def diabetes_csv(session_home: Path) -> Path:
    """scikit-learn's diabetes data (regression, 442 rows) as a CSV with target `target`."""
    return _sklearn_csv(session_home, "load_diabetes")


@pytest.fixture(scope="session")
def breast_cancer_csv(session_home: Path) -> Path:
    """scikit-learn's breast cancer data (binary classification, 569 rows), labels as words."""
    path = _sklearn_csv(session_home, "load_breast_cancer")
    frame = pd.read_csv(path)
    frame["target"] = frame["target"].map({0: "malignant", 1: "benign"})
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def ames_bundle(ames_csv: Path, session_home: Path) -> Path:
    """A real Ames bundle (ridge, fast to fit) named `ames-test` version 1."""
    from tasks.core.dataset_spec import AMES_SPEC
    from tests.support.bundles import make_bundle

    return make_bundle(ames_csv, AMES_SPEC, "ridge", session_home / "ames-bundle", model_name="ames-test")


@pytest.fixture(scope="session")
def local_layers(session_home: Path) -> list[Path]:
    """The local function layer (numpy, onnxruntime) and the runtime layer (boto3), for this Python."""
    from deployments.local.local_target import local_layers as build_local_layers

    return build_local_layers(session_home / "layers")


@pytest.fixture(scope="session")
def cancer_bundle(breast_cancer_csv: Path, session_home: Path) -> Path:
    """A real classification bundle (logistic regression on breast cancer data)."""
    from tasks.core.dataset_spec import DatasetSpec
    from tests.support.bundles import make_bundle

    spec = DatasetSpec(name="cancer", target="target", task="classification", drop=[], categorical=[])
    return make_bundle(
        breast_cancer_csv,
        spec,
        "logistic_regression",
        session_home / "cancer-bundle",
        model_name="cancer-test",
    )


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `moto_server` process on 127.0.0.1 for one test module, with the AWS variables pointing at it."""
    from tests.support.moto_server import FAKE_CREDENTIALS, isolated_aws_files, moto_server

    root = tmp_path_factory.mktemp("moto")
    with moto_server(root / "moto_server.log") as url, pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_PROFILE"):
            patch.delenv(name, raising=False)
        for name, value in {"AWS_ENDPOINT_URL": url, **FAKE_CREDENTIALS, **isolated_aws_files(root)}.items():
            patch.setenv(name, value)
        yield url
