"""Choose the deployer for the configured target: the only place the target matters."""

from __future__ import annotations

from typing import Any, Protocol

from deployments.artifact import Artifact
from deployments.local_target import LocalDeployer
from deployments.result import DeploymentResult
from tasks.settings import Settings


class Deployer(Protocol):
    """Publishes an artifact, smoke-tests it and moves `live` to it."""

    def deploy(self, artifact: Artifact, example: dict[str, Any], model_version: str) -> DeploymentResult:
        """Deploy one artifact."""
        ...


def deployer_for(settings: Settings, model_name: str) -> Deployer:
    """The local deployer, or the AWS one when `MLOPS_TARGET=aws`."""
    if settings.target == "aws":
        from deployments.aws_deployer import aws_deployer

        return aws_deployer(settings, model_name)
    return LocalDeployer(settings.home, model_name, settings.storage)
