"""Choose the target from the settings: the only place where local and AWS differ."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol
from urllib.parse import urlparse

from deployments.artifact import Artifact
from deployments.aws.config import AwsConfig
from deployments.lambda_handler.contract import LIVE_ALIAS
from deployments.local_target import LocalDeployer
from deployments.result import DeploymentResult
from tasks.settings import Settings


class Deployer(Protocol):
    """Publishes an artifact, smoke-tests it and moves `live` to it."""

    def deploy(self, artifact: Artifact, example: dict[str, Any], model_version: str) -> DeploymentResult:
        """Deploy one artifact."""
        ...


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


def deployer_for(settings: Settings, model_name: str) -> Deployer:
    """The local deployer, or the AWS one when `MLOPS_TARGET=aws`."""
    if settings.target == "aws":
        from deployments.aws.deployer import AwsDeployer

        return AwsDeployer(
            aws_config(settings, model_name),
            model_name=model_name,
            layer_cache=settings.home / "cache" / "layers",
        )
    return LocalDeployer(settings.home, model_name, settings.storage)


@contextmanager
def live_function(
    settings: Settings, model_name: str
) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """Call the version `live` points to: Lambda's alias on AWS, a local container otherwise."""
    if settings.target == "aws":
        import boto3

        from deployments.aws.invoke import lambda_invoker

        config = aws_config(settings, model_name)
        invoke = lambda_invoker(boto3.client("lambda", region_name=config.region), config.function_name)
        yield lambda event: invoke(LIVE_ALIAS, event)
        return
    deployer = LocalDeployer(settings.home, model_name, settings.storage)
    version = deployer.live_version()
    if version is None:
        msg = f"{model_name} has no live version on the local target; run python -m flows.deploy"
        raise LookupError(msg)
    with deployer.start_function(version) as function:
        yield function.invoke
