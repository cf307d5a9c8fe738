"""The Lambda function: code and configuration, published versions, and the `live` alias."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws.config import ArtifactRecord, AwsClients, DeployError, all_items, error_code, missing
from deployments.lambda_handler.contract import LIVE_ALIAS
from deployments.lambda_package.function_artifact import HANDLER, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME
from deployments.lambda_package.function_process import http_event
from deployments.lambda_package.smoke import Invoke, smoke_test

# IAM is eventually consistent: a new role can take ~10 s before Lambda may assume it.
ROLE_PROPAGATION_DELAYS = (2.0, 4.0, 8.0, 16.0)


@dataclass(frozen=True)
class FunctionSpec:
    """The desired state of the function's code and configuration."""

    code_sha256: str
    role_arn: str
    layers: tuple[str, ...]
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: int
    tracing: str = "PassThrough"
    kms_key_arn: str = ""  # empty: the environment is encrypted with Lambda's own key
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    def configuration(self) -> dict[str, Any]:
        """Arguments shared by create_function and update_function_configuration.

        Empty VPC lists and an empty key are sent too: that is how a setting is taken away.
        """
        return {
            "Role": self.role_arn,
            "Runtime": LAMBDA_RUNTIME,
            "Handler": HANDLER,
            "Layers": list(self.layers),
            "Environment": {"Variables": dict(self.environment)},
            "MemorySize": self.memory_mb,
            "Timeout": self.timeout_seconds,
            "TracingConfig": {"Mode": self.tracing},
            "KMSKeyArn": self.kms_key_arn,
            "VpcConfig": {
                "SubnetIds": list(self.subnet_ids),
                "SecurityGroupIds": list(self.security_group_ids),
            },
        }

    def _network_differs(self, current: Mapping[str, Any]) -> bool:
        vpc = current.get("VpcConfig") or {}
        return sorted(vpc.get("SubnetIds") or []) != sorted(self.subnet_ids) or sorted(
            vpc.get("SecurityGroupIds") or []
        ) != sorted(self.security_group_ids)

    def configuration_differs(self, current: Mapping[str, Any]) -> bool:
        """Whether a function configuration differs from this spec outside the code."""
        return (
            current.get("Role") != self.role_arn
            or current.get("Runtime") != LAMBDA_RUNTIME
            or current.get("Handler") != HANDLER
            or tuple(layer["Arn"] for layer in current.get("Layers") or []) != self.layers
            or (current.get("Environment") or {}).get("Variables", {}) != self.environment
            or current.get("MemorySize") != self.memory_mb
            or current.get("Timeout") != self.timeout_seconds
            or (current.get("TracingConfig") or {}).get("Mode", "PassThrough") != self.tracing
            or (current.get("KMSKeyArn") or "") != self.kms_key_arn
            or self._network_differs(current)
        )

    def matches(self, current: Mapping[str, Any]) -> bool:
        """Whether a function configuration is exactly this spec, code included."""
        return current.get("CodeSha256") == self.code_sha256 and not self.configuration_differs(current)


def recorded_artifact(lambda_client: Any, function_name: str, qualifier: str) -> ArtifactRecord:
    """The artifact a published version (or the alias's version) was deployed from."""
    configuration = lambda_client.get_function_configuration(FunctionName=function_name, Qualifier=qualifier)
    return ArtifactRecord.from_description(configuration.get("Description", ""))


def alias_weights(alias: Mapping[str, Any] | None) -> dict[str, float]:
    """The canary weights of an alias (empty when all traffic goes to its version)."""
    return dict(((alias or {}).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def function_configuration(aws: AwsClients, qualifier: str | None = None) -> dict[str, Any] | None:
    """The configuration of `$LATEST` (or a version), or None when the function does not exist."""
    arguments = {"FunctionName": aws.config.function_name}
    if qualifier is not None:
        arguments["Qualifier"] = qualifier
    try:
        return dict(aws.lambda_.get_function_configuration(**arguments))
    except ClientError as error:
        if not missing(error, "ResourceNotFoundException"):
            raise
        return None


def published_configurations(aws: AwsClients) -> list[dict[str, Any]]:
    """The configuration of every published version (Description included), oldest first."""
    items = all_items(
        aws.lambda_, "list_versions_by_function", "Versions", FunctionName=aws.config.function_name
    )
    return sorted(
        (item for item in items if item["Version"] != "$LATEST"), key=lambda item: int(item["Version"])
    )


def _wait(aws: AwsClients, waiter_name: str, **arguments: str) -> None:
    """Wait for a Lambda state change (updates are asynchronous on AWS, instant in moto)."""
    aws.lambda_.get_waiter(waiter_name).wait(FunctionName=aws.config.function_name, **arguments)


def _role_not_ready(error: ClientError) -> bool:
    """The error Lambda gives while a new role has not propagated through IAM yet."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "InvalidParameterValueException" and "cannot be assumed" in message


def _create_function(aws: AwsClients, spec: FunctionSpec, key: str) -> None:
    arguments = {
        "FunctionName": aws.config.function_name,
        "Code": {"S3Bucket": aws.config.bucket, "S3Key": key},
        "Architectures": [LAMBDA_ARCHITECTURE],
        "PackageType": "Zip",
        "Publish": False,  # versions are published explicitly, with the artifact record
        **spec.configuration(),
    }
    for delay in (*ROLE_PROPAGATION_DELAYS, None):
        try:
            aws.lambda_.create_function(**arguments)
        except ClientError as error:
            if delay is None or not _role_not_ready(error):
                raise
            aws.sleep(delay)
        else:
            return


def ensure_function(aws: AwsClients, spec: FunctionSpec, key: str) -> None:
    """Create the function once; afterwards update code and configuration when they differ."""
    current = function_configuration(aws)
    if current is None:
        _create_function(aws, spec, key)
        _wait(aws, "function_active_v2")
        aws.changed("function created")
        return
    if current.get("LastUpdateStatus") == "InProgress":  # someone else's update: let it finish
        _wait(aws, "function_updated_v2")
        current = function_configuration(aws) or current
    if current.get("CodeSha256") != spec.code_sha256:
        aws.lambda_.update_function_code(
            FunctionName=aws.config.function_name, S3Bucket=aws.config.bucket, S3Key=key
        )
        _wait(aws, "function_updated_v2")
        aws.changed("function code")
    if spec.configuration_differs(current):
        aws.lambda_.update_function_configuration(
            FunctionName=aws.config.function_name, **spec.configuration()
        )
        _wait(aws, "function_updated_v2")
        aws.changed("function configuration")


def publish_version(aws: AwsClients, code_sha256: str, description: str) -> str:
    """Publish `$LATEST` as a version (only if its code is still ours) and wait until it is active."""
    published = aws.lambda_.publish_version(
        FunctionName=aws.config.function_name, Description=description, CodeSha256=code_sha256
    )
    version = str(published["Version"])
    _wait(aws, "published_version_active", Qualifier=version)
    aws.changed(f"version {version}")
    return version


def live_alias(aws: AwsClients) -> dict[str, Any] | None:
    """The `live` alias, or None before the first successful deploy."""
    try:
        return dict(aws.lambda_.get_alias(FunctionName=aws.config.function_name, Name=LIVE_ALIAS))
    except ClientError as error:
        if not missing(error, "ResourceNotFoundException"):
            raise
        return None


def create_alias(aws: AwsClients, version: str) -> None:
    """Create `live` on a version (the first deploy)."""
    aws.lambda_.create_alias(
        FunctionName=aws.config.function_name,
        Name=LIVE_ALIAS,
        FunctionVersion=version,
        Description="The version the HTTP API serves",
    )


def update_alias(
    aws: AwsClients, version: str, weights: dict[str, float], revision: str | None
) -> dict[str, Any]:
    """Point `live` at a version (with canary weights); refuses if another deploy moved it meanwhile."""
    arguments: dict[str, Any] = {
        "FunctionName": aws.config.function_name,
        "Name": LIVE_ALIAS,
        "FunctionVersion": version,
        "RoutingConfig": {"AdditionalVersionWeights": weights},
    }
    if revision:
        arguments["RevisionId"] = revision
    return dict(aws.lambda_.update_alias(**arguments))


def canary_then_move(
    aws: AwsClients,
    invoke_new: Invoke,
    invoke_live: Invoke,
    live: dict[str, Any],
    version: str,
    example: dict[str, Any],
    model_version: str,
    bake: Callable[[], list[str]],
) -> None:
    """Send a share of traffic to the new version, check it, bake, then move fully (or roll back).

    `bake` watches the alarms for the bake time and returns those it found in ALARM.
    """
    previous = live["FunctionVersion"]
    weight = float(aws.config.canary_weight or 0.0)
    canary = update_alias(aws, previous, {version: weight}, live.get("RevisionId"))
    aws.changed(f"canary {version}@{weight}")
    try:
        smoke_test(invoke_new, example, model_version)
        _alias_answers(invoke_live)
        _bake(aws, bake, weight)
    except Exception as error:
        update_alias(aws, previous, {}, None)
        aws.changed(f"alias {LIVE_ALIAS} back -> {previous}")
        msg = f"canary of version {version} failed, {LIVE_ALIAS} is back on {previous}: {error}"
        raise DeployError(msg) from error
    update_alias(aws, version, {}, canary.get("RevisionId"))


def _bake(aws: AwsClients, bake: Callable[[], list[str]], weight: float) -> None:
    """Serve the canary for the bake time; fail naming the alarms that went into ALARM."""
    alarms = bake()
    if alarms:
        bake_time = f"{aws.config.canary_bake_seconds:g} s bake at {weight:.0%} of the traffic"
        msg = f"{', '.join(alarms)} went into ALARM during the {bake_time}"
        raise DeployError(msg)


def _alias_answers(invoke_live: Invoke) -> None:
    """The alias itself (either version behind it) answers the health check."""
    response = invoke_live(http_event("GET", "/health"))
    if response.get("statusCode") != 200:  # noqa: PLR2004
        msg = f"{LIVE_ALIAS} answered GET /health with {response.get('statusCode')}: {response.get('body')}"
        raise DeployError(msg)
