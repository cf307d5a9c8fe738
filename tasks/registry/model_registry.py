"""The MLflow model registry: champion lookup, registration and bundle download."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from deployments.lambda_handler.contract import CHAMPION_ALIAS
from tasks.core.errors import NoChampionError

BUNDLE_PATH = "bundle"


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """A client for the tracking server and registry (the same store here)."""
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, artifact_root: str) -> str:
    """The id of the experiment named after the model, created with artifacts under storage."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(name, artifact_location=f"{artifact_root.rstrip('/')}/{name}")


def _missing(error: MlflowException) -> bool:
    return bool(error.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST))


def version_by_alias(client: MlflowClient, model_name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to, or None when the model or alias does not exist."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        if _missing(error) or "alias" in str(error).lower():
            return None
        raise


def registered_version(client: MlflowClient, model_name: str, version: str) -> ModelVersion:
    """A registered version; a missing one is an error that lists the versions there are."""
    try:
        return client.get_model_version(model_name, version)
    except MlflowException as error:
        if not _missing(error):
            raise
    known = sorted(int(item.version) for item in client.search_model_versions(f"name = '{model_name}'"))
    listed = ", ".join(str(item) for item in known) or "none"
    msg = f"{model_name} has no registered version {version} (model_version); registered versions: {listed}"
    raise NoChampionError(msg)


def download_bundle(client: MlflowClient, version: ModelVersion, destination: Path) -> Path:
    """Fetch a version's bundle (model.onnx, schema.json, ...) into a local folder."""
    if version.run_id is None:
        msg = f"model version {version.name} v{version.version} has no run to fetch a bundle from"
        raise LookupError(msg)
    destination.mkdir(parents=True, exist_ok=True)
    path = client.download_artifacts(version.run_id, BUNDLE_PATH, str(destination))
    return Path(path)


def fetch_bundle(
    tracking_uri: str, model_name: str, model_version: str | None, destination: Path
) -> tuple[Path, str]:
    """Download the bundle of a model version (the champion by default); return it and the version."""
    client = mlflow_client(tracking_uri)
    if model_version is None:
        version = version_by_alias(client, model_name, CHAMPION_ALIAS)
        if version is None:
            msg = f"{model_name} has no champion yet (MLOPS_MODEL_NAME); run the training flow first"
            raise NoChampionError(msg)
    else:
        version = registered_version(client, model_name, model_version)
    folder = destination / model_name / str(version.version)
    return download_bundle(client, version, folder), str(version.version)
