"""Choose the deployer for the configured target: the only place the target matters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def live_function(
    settings: Settings, model_name: str
) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """Call the version `live` points to: Lambda's alias on AWS, a local container otherwise."""
    if settings.target == "aws":
        import boto3

        from deployments.aws_deployer import aws_config
        from deployments.aws_invoke import lambda_invoker
        from deployments.aws_target import ALIAS

        config = aws_config(settings, model_name)
        invoke = lambda_invoker(boto3.client("lambda", region_name=config.region), config.function_name)
        yield lambda event: invoke(ALIAS, event)
        return
    deployer = LocalDeployer(settings.home, model_name, settings.storage)
    version = deployer.live_version()
    if version is None:
        msg = f"{model_name} has no live version on the local target; run python -m flows.deploy"
        raise LookupError(msg)
    with deployer.start_function(version) as function:
        yield function.invoke
