"""Choose the target from the settings: the only place where local and AWS differ."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from deployments.aws.config import AwsConfig
from deployments.common.deploy_result import DeploymentResult, FunctionVersion
from deployments.lambda_package.function_artifact import Artifact
from deployments.lambda_package.smoke import Invoke
from deployments.local.local_target import LocalDeployer
from tasks.core.settings import Settings


class Target(Protocol):
    """Where models serve: deploy, call the live version, list versions, roll back."""

    def build_artifact(self, bundle: Path) -> Artifact:
        """What this target deploys, built from a registered version's bundle."""
        ...

    def deploy(self, artifact: Artifact, example: dict[str, Any], model_version: str) -> DeploymentResult:
        """Publish the artifact as a version, smoke-test it, then move `live` to it."""
        ...

    def versions(self) -> list[FunctionVersion]:
        """Every published version, oldest first, and which one is live."""
        ...

    def rollback(self, version: str) -> DeploymentResult:
        """Smoke-test an earlier version, then move `live` to it."""
        ...

    def live(self) -> AbstractContextManager[Invoke]:
        """Call whatever version `live` points to."""
        ...


def target_for(settings: Settings, model_name: str) -> Target:
    """The local target, or AWS when `MLOPS_TARGET=aws`: the only place the choice is made."""
    if settings.target == "aws":
        from deployments.aws.deployer import AwsDeployer

        return AwsDeployer(
            AwsConfig.from_settings(settings, model_name),
            model_name=model_name,
            layer_cache=settings.home / "cache" / "layers",
            function_settings=settings.function_environment,
        )
    return LocalDeployer(settings.home, model_name, settings.storage, settings.function_environment)
