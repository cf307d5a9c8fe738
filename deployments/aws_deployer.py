"""The AWS target behind the common `Deployer` interface used by the deploy flow."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from deployments.artifact import (
    LAMBDA_PLATFORM,
    LAMBDA_PYTHON_VERSION,
    LAYER_PACKAGES,
    Artifact,
    build_layer,
    pinned_requirements,
)
from deployments.aws_target import AwsConfig, AwsDeployer
from deployments.result import DeploymentResult
from tasks.settings import Settings


class AwsTarget:
    """Builds the Lambda layer (cached) and runs `AwsDeployer` for one model."""

    def __init__(self, config: AwsConfig, model_name: str, layer_cache: Path) -> None:
        self.config = config
        self.model_name = model_name
        self.layer_cache = layer_cache

    def deploy(self, artifact: Artifact, example: dict[str, Any], model_version: str) -> DeploymentResult:
        """Publish, smoke-test through Lambda itself, then move `live`."""
        layer = build_layer(
            self.layer_cache,
            pinned_requirements(LAYER_PACKAGES),
            platform=LAMBDA_PLATFORM,
            python_version=LAMBDA_PYTHON_VERSION,
            zipped=True,
        )
        assert layer.zip is not None
        result = AwsDeployer(self.config).deploy(artifact, layer.zip, example, model_version, {})
        return DeploymentResult(
            target="aws",
            model_name=self.model_name,
            model_version=model_version,
            function_version=result.function_version,
            previous_version=result.previous_version,
            endpoint=result.endpoint_url,
            code_sha256=result.code_sha256,
            artifact_uri=result.artifact_uri,
            changed=result.changed,
            detail="already live" if result.already_live else ", ".join(result.changes),
        )


def aws_config(settings: Settings, model_name: str) -> AwsConfig:
    """AWS resource names for a model from the settings (bucket and prefix from the storage URL)."""
    storage = urlparse(settings.storage)
    return AwsConfig(
        region=settings.aws_region or "",
        bucket=storage.netloc,
        prefix=storage.path.strip("/"),
        function_name=settings.lambda_function_name or f"{model_name}-serving",
        memory_mb=settings.lambda_memory_mb,
        canary_weight=settings.canary_weight,
        firehose_stream=settings.firehose_stream,
    )


def aws_deployer(settings: Settings, model_name: str) -> AwsTarget:
    """The deployer the deploy flow uses when `MLOPS_TARGET=aws`."""
    return AwsTarget(aws_config(settings, model_name), model_name, settings.home / "cache" / "layers")
