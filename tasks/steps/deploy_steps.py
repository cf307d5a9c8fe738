"""Tasks of the deploy flow: fetch the champion's bundle, build the artifact, deploy it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from deployments.common.deploy_result import DeploymentResult
from deployments.lambda_handler.contract import SCHEMA_FILE
from deployments.lambda_package.function_artifact import Artifact
from deployments.targets.selection import target_for
from tasks.core.errors import TRANSIENT_RETRIES
from tasks.core.settings import Settings
from tasks.registry.model_registry import fetch_bundle
from tasks.steps.prefect_artifacts import artifact_key
from tasks.steps.step import step


@step(**TRANSIENT_RETRIES)
def fetch_model_bundle(settings: Settings, model_name: str, model_version: str | None) -> tuple[Path, str]:
    """Fetch the bundle to deploy from the MLflow registry."""
    bundle, version = fetch_bundle(settings.tracking_uri, model_name, model_version, settings.home / "build")
    get_run_logger().info("Fetched %s v%s bundle into %s", model_name, version, bundle)
    return bundle, version


@step
def build_artifact(settings: Settings, model_name: str, bundle: Path) -> Artifact:
    """Build what the configured target deploys (the function zip) next to the bundle."""
    artifact = target_for(settings, model_name).build_artifact(bundle)
    get_run_logger().info("Artifact %s: %d bytes, sha256 %s", artifact.path, artifact.size, artifact.sha256)
    return artifact


def example_instance(bundle: Path) -> dict[str, Any]:
    """The example instance saved in the bundle's schema."""
    return json.loads((bundle / SCHEMA_FILE).read_text("utf-8"))["example"]


@step
def deploy_artifact(
    settings: Settings, model_name: str, artifact: Artifact, bundle: Path, model_version: str
) -> DeploymentResult:
    """Publish, smoke-test and move `live` on the configured target."""
    result = target_for(settings, model_name).deploy(artifact, example_instance(bundle), model_version)
    logger = get_run_logger()
    if result.changed:
        logger.info(
            "%s v%s is live as function version %s (was %s) on %s: %s",
            model_name,
            model_version,
            result.function_version,
            result.previous_version,
            result.target,
            result.endpoint,
        )
    else:
        logger.info(
            "%s v%s is already live as version %s", model_name, model_version, result.function_version
        )
    create_markdown_artifact(
        key=artifact_key("deployment", model_name),
        description="What the deploy did",
        markdown="\n".join(
            [
                f"# {model_name} v{model_version} is live on {result.target}",
                "",
                "| | |",
                "| --- | --- |",
                f"| function version | {result.function_version} (was {result.previous_version or 'none'}) |",
                f"| changed | {'yes: ' + result.detail if result.changed else 'no: ' + result.detail} |",
                f"| endpoint | {result.endpoint} |",
                f"| artifact | `{result.artifact_uri}` |",
                f"| code sha256 | `{result.code_sha256}` |",
            ]
        ),
    )
    return result
