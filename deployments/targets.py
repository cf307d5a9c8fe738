"""Choose the target from the settings: the only place where local and AWS differ."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol
from urllib.parse import urlparse

from deployments.artifact import Artifact
from deployments.aws.config import ApiAuth, AwsConfig
from deployments.local_target import LocalDeployer
from deployments.result import DeploymentResult, FunctionVersion
from deployments.smoke import Invoke
from tasks.settings import Settings, split_list


class Target(Protocol):
    """Where models serve: deploy, call the live version, list versions, roll back."""

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
        canary_bake_seconds=settings.canary_bake_seconds,
        alarm_error_rate_percent=settings.alarm_error_rate_percent,
        alarm_p99_latency_ms=settings.alarm_p99_latency_ms,
        alarm_topic_arn=settings.alarm_topic_arn,
        firehose_stream=settings.firehose_stream,
        api_auth=settings.api_auth,
        page_auth=settings.api_page_auth,
        jwt_issuer=settings.api_jwt_issuer,
        jwt_audience=split_list(settings.api_jwt_audience),
        throttle_rate=settings.api_throttle_rate,
        throttle_burst=settings.api_throttle_burst,
        cors_origins=split_list(settings.api_cors_origins),
        tracing=settings.lambda_tracing,
        kms_key_arn=settings.kms_key_arn,
        subnet_ids=split_list(settings.lambda_subnet_ids),
        security_group_ids=split_list(settings.lambda_security_group_ids),
        reserved_concurrency=settings.lambda_reserved_concurrency,
        provisioned_concurrency=settings.lambda_provisioned_concurrency,
    )


def browser_auth(settings: Settings) -> ApiAuth:
    """How the prediction page's requests to `POST /predict` are authorized on the target.

    The local server has no authorizer; on AWS it is the HTTP API's setting.
    """
    return settings.api_auth if settings.target == "aws" else "none"


def target_for(settings: Settings, model_name: str) -> Target:
    """The local target, or AWS when `MLOPS_TARGET=aws`: the only place the choice is made."""
    if settings.target == "aws":
        from deployments.aws.deployer import AwsDeployer

        return AwsDeployer(
            aws_config(settings, model_name),
            model_name=model_name,
            layer_cache=settings.home / "cache" / "layers",
            function_settings=settings.function_environment,
        )
    return LocalDeployer(settings.home, model_name, settings.storage, settings.function_environment)
