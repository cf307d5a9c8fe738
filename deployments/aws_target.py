"""Deploy a built function artifact to AWS Lambda behind an HTTP API, with boto3 only.

Every step is idempotent: resources are found by name and created once, artifacts live under
content-addressed S3 keys, a layer is published only when its bytes change, and the `live`
alias moves only after the new version passed its smoke test. The HTTP API is created once and
points at the alias, so its id and URL never change between deploys.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from deployments.artifact import HANDLER, LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, Artifact
from deployments.lambda_handler.contract import LIVE_ALIAS, PREDICTIONS_PREFIX
from deployments.local_runner import http_event
from deployments.smoke import smoke_test

IAM_DIR = Path(__file__).resolve().parent / "iam"
EXECUTION_POLICY = IAM_DIR / "lambda-execution-policy.json"
TRUST_POLICY = IAM_DIR / "lambda-trust-policy.json"
DEPLOYER_POLICY = IAM_DIR / "deployer-policy.json"
ALIAS = LIVE_ALIAS
ROUTE_KEYS = ("POST /predict", "GET /schema", "GET /health")
DEFAULT_STAGE = "$default"
DESCRIPTION_LIMIT = 256  # Lambda's limit for version and layer version descriptions
# Standard mode retries throttling and transient errors with exponential backoff and jitter.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})
# IAM is eventually consistent: a new role can take ~10 s before Lambda may assume it.
ROLE_PROPAGATION_DELAYS = (2.0, 4.0, 8.0, 16.0)
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+)\}")

Invoker = Callable[[str, dict[str, Any]], dict[str, Any]]


class DeployError(RuntimeError):
    """A deploy failed; the message names the step and whether `live` had moved (never untested)."""


@dataclass(frozen=True)
class AwsConfig:
    """Names and sizes of the AWS resources of one served model; derived names by default."""

    region: str
    bucket: str
    function_name: str
    prefix: str = "mlops"
    role_name: str = ""
    api_name: str = ""
    layer_name: str = ""
    memory_mb: int = 1024
    timeout_seconds: int = 30
    canary_weight: float | None = None
    firehose_stream: str | None = None
    log_retention_days: int = 30

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.prefix.strip("/"))
        object.__setattr__(self, "role_name", self.role_name or f"{self.function_name}-execution")
        object.__setattr__(self, "api_name", self.api_name or self.function_name)
        object.__setattr__(self, "layer_name", self.layer_name or f"{self.function_name}-deps")
        if self.canary_weight is not None and not 0 < self.canary_weight < 1:
            msg = f"canary_weight must be between 0 and 1 (exclusive), got {self.canary_weight}"
            raise ValueError(msg)

    def key(self, *parts: str) -> str:
        """An S3 key under the configured prefix."""
        return "/".join(part for part in (self.prefix, *parts) if part)

    @property
    def log_group(self) -> str:
        """The log group Lambda writes the function's logs to."""
        return f"/aws/lambda/{self.function_name}"


@dataclass(frozen=True)
class ArtifactRecord:
    """What a published version was built from, kept in the version's Description."""

    model_version: str
    uri: str
    sha256: str

    @property
    def bucket(self) -> str:
        """The S3 bucket of the artifact."""
        return urlparse(self.uri).netloc

    @property
    def key(self) -> str:
        """The S3 key of the artifact."""
        return urlparse(self.uri).path.lstrip("/")

    def to_description(self) -> str:
        """Compact JSON that fits Lambda's 256-character Description."""
        text = json.dumps(
            {"model_version": self.model_version, "artifact": self.uri, "sha256": self.sha256},
            separators=(",", ":"),
        )
        if len(text) > DESCRIPTION_LIMIT:
            msg = (
                f"version description has {len(text)} characters (limit {DESCRIPTION_LIMIT}): shorten prefix"
            )
            raise ValueError(msg)
        return text

    @classmethod
    def from_description(cls, description: str) -> ArtifactRecord:
        """Parse a Description written by `to_description`."""
        try:
            data = json.loads(description)
            return cls(str(data["model_version"]), str(data["artifact"]), str(data["sha256"]))
        except (TypeError, ValueError, KeyError) as error:
            msg = f"version description {description!r} records no artifact"
            raise ValueError(msg) from error


@dataclass(frozen=True)
class DeployResult:
    """What a deploy left behind."""

    function_version: str
    previous_version: str | None
    endpoint_url: str
    api_id: str
    code_sha256: str
    artifact_uri: str
    layer_version_arn: str
    changed: bool
    already_live: bool
    changes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _FunctionSpec:
    """The desired state of the function's code and configuration."""

    code_sha256: str
    role_arn: str
    layers: tuple[str, ...]
    environment: dict[str, str]
    memory_mb: int
    timeout_seconds: int

    def configuration(self) -> dict[str, Any]:
        """Arguments shared by create_function and update_function_configuration."""
        return {
            "Role": self.role_arn,
            "Runtime": LAMBDA_RUNTIME,
            "Handler": HANDLER,
            "Layers": list(self.layers),
            "Environment": {"Variables": dict(self.environment)},
            "MemorySize": self.memory_mb,
            "Timeout": self.timeout_seconds,
        }

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
        )

    def matches(self, current: Mapping[str, Any]) -> bool:
        """Whether a function configuration is exactly this spec, code included."""
        return current.get("CodeSha256") == self.code_sha256 and not self.configuration_differs(current)


def error_code(error: ClientError) -> str:
    """The AWS error code of a failed call."""
    return str(error.response.get("Error", {}).get("Code", ""))


def _substitute(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)], value)
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    return value


def render_policy(template: Path, values: Mapping[str, str | None]) -> dict[str, Any]:
    """Fill `${Name}` placeholders; statements naming a placeholder whose value is None are dropped.

    That is how optional grants work (Firehose only with a stream). A placeholder with no value
    at all is an error, so a policy never reaches IAM half-rendered.
    """
    document = json.loads(template.read_text(encoding="utf-8"))
    statements = []
    for statement in document["Statement"]:
        names = set(_PLACEHOLDER.findall(json.dumps(statement)))
        missing = names - set(values)
        if missing:
            msg = f"{template.name}: no value for {sorted(missing)}"
            raise KeyError(msg)
        if all(values[name] is not None for name in names):
            statements.append(statement)
    filled = {name: value for name, value in values.items() if value is not None}
    return {**document, "Statement": _substitute(statements, filled)}


def _storage_location(storage_url: str) -> tuple[str, str] | None:
    """Bucket and key prefix of an s3:// storage URL, or None for other schemes."""
    parsed = urlparse(storage_url)
    if parsed.scheme != "s3":
        return None
    return parsed.netloc, parsed.path.strip("/")


def function_environment(config: AwsConfig, environment: Mapping[str, str]) -> dict[str, str]:
    """The function's variables: STORAGE_URL defaults to the deploy bucket and prefix.

    Prediction logs must go to the bucket this deployer secures (public access blocked,
    encrypted), so an s3:// STORAGE_URL in another bucket is refused.
    """
    variables = dict(environment)
    variables.setdefault("STORAGE_URL", f"s3://{config.bucket}/{config.prefix}".rstrip("/"))
    if config.firehose_stream:
        variables.setdefault("FIREHOSE_STREAM", config.firehose_stream)
    location = _storage_location(variables["STORAGE_URL"])
    if location is None and not variables.get("FIREHOSE_STREAM"):
        msg = f"STORAGE_URL must be s3:// on AWS, got {variables['STORAGE_URL']!r}"
        raise ValueError(msg)
    if location is not None and location[0] != config.bucket:
        msg = f"STORAGE_URL bucket {location[0]!r} is not the deploy bucket {config.bucket!r}"
        raise ValueError(msg)
    return variables


def execution_policy(
    config: AwsConfig, partition: str, account_id: str, environment: Mapping[str, str]
) -> dict[str, Any]:
    """The function's inline policy: its log streams, its bundle, its prediction prefix, its stream."""
    location = _storage_location(environment.get("STORAGE_URL", ""))
    prediction_prefix = None
    if location is not None:
        prediction_prefix = "/".join(part for part in (location[1], PREDICTIONS_PREFIX) if part) + "/"
    return render_policy(
        EXECUTION_POLICY,
        {
            "Partition": partition,
            "Region": config.region,
            "AccountId": account_id,
            "FunctionName": config.function_name,
            "Bucket": config.bucket,
            "PredictionPrefix": prediction_prefix,
            # the function's artifacts (model bundle inside): reads only, nothing else in the bucket
            "BundlePrefix": config.key("lambda", config.function_name) + "/",
            "FirehoseStream": environment.get("FIREHOSE_STREAM") or None,
        },
    )


def deployer_policy(config: AwsConfig, partition: str, account_id: str) -> dict[str, Any]:
    """The permissions a person or CI principal needs to run this deployer."""
    return render_policy(
        DEPLOYER_POLICY,
        {
            "Partition": partition,
            "Region": config.region,
            "AccountId": account_id,
            "Bucket": config.bucket,
            "ArtifactPrefix": config.key("lambda") + "/",
            "FunctionName": config.function_name,
            "RoleName": config.role_name,
            "LayerName": config.layer_name,
        },
    )


def trust_policy() -> dict[str, Any]:
    """The execution role's trust policy: only the Lambda service assumes it."""
    return render_policy(TRUST_POLICY, {})


def recorded_artifact(lambda_client: Any, function_name: str, qualifier: str) -> ArtifactRecord:
    """The artifact a published version (or the alias's version) was deployed from."""
    configuration = lambda_client.get_function_configuration(FunctionName=function_name, Qualifier=qualifier)
    return ArtifactRecord.from_description(configuration.get("Description", ""))


def _layer_sha256(description: str | None) -> str | None:
    try:
        return str(json.loads(description or "")["sha256"])
    except (TypeError, ValueError, KeyError):
        return None


def _weights(alias: Mapping[str, Any] | None) -> dict[str, float]:
    return dict(((alias or {}).get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


class AwsDeployer:
    """Deploys function artifacts for one `AwsConfig`; see `deploy`."""

    def __init__(
        self,
        config: AwsConfig,
        session: boto3.Session | None = None,
        invoker: Invoker | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Clients come from the session (credentials chain, `AWS_ENDPOINT_URL` honoured)."""
        self.config = config
        self.session = session or boto3.Session(region_name=config.region)
        self.s3 = self._client("s3")
        self.iam = self._client("iam")
        self.logs = self._client("logs")
        self.lambda_ = self._client("lambda")
        self.apigw = self._client("apigatewayv2")
        self.sts = self._client("sts")
        if invoker is None:
            from deployments.aws_invoke import lambda_invoker

            invoker = lambda_invoker(self.lambda_, config.function_name)
        self.invoker = invoker
        self._sleep = sleep
        self._step = "start"
        self._changes: list[str] = []
        self._alias_moved = False
        self._account_id: str | None = None

    def _client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.config.region, config=RETRY_CONFIG)

    @property
    def partition(self) -> str:
        """`aws`, `aws-cn` or `aws-us-gov`, from the region."""
        return self.session.get_partition_for_region(self.config.region)

    @property
    def account_id(self) -> str:
        """The account of the credentials in use (sts:GetCallerIdentity needs no permission)."""
        if self._account_id is None:
            self._account_id = str(self.sts.get_caller_identity()["Account"])
        return self._account_id

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Name the step in progress, so a failure says where the deploy stopped."""
        self._step = name
        yield

    def _changed(self, what: str) -> None:
        self._changes.append(what)

    # --- the deploy --------------------------------------------------------------------------

    def deploy(
        self,
        function_zip: Artifact,
        layer_zip: Artifact,
        example: dict[str, Any],
        model_version: str,
        environment: Mapping[str, str],
    ) -> DeployResult:
        """Ship the artifact as a new version and move `live` to it once it passed the smoke test.

        Rerunning with the same inputs changes nothing. Any failure before the alias move
        raises `DeployError` naming the step; `live` is left (or put back) where it was.
        """
        self._changes = []
        self._step = "start"
        self._alias_moved = False
        try:
            return self._deploy(function_zip, layer_zip, example, str(model_version), environment)
        except DeployError:
            raise
        except Exception as error:
            where = (
                f"after moving {ALIAS}" if self._alias_moved else f"before moving {ALIAS}; it was not moved"
            )
            msg = f"deploy of {self.config.function_name} failed while {self._step} ({where}): {error}"
            raise DeployError(msg) from error

    def _deploy(
        self,
        function_zip: Artifact,
        layer_zip: Artifact,
        example: dict[str, Any],
        model_version: str,
        environment: Mapping[str, str],
    ) -> DeployResult:
        config = self.config
        variables = function_environment(config, environment)
        function_key = config.key("lambda", config.function_name, f"function-{function_zip.sha256[:16]}.zip")
        record = ArtifactRecord(model_version, f"s3://{config.bucket}/{function_key}", function_zip.sha256)
        record.to_description()  # fails before any change if it would not fit
        with self._stage("ensuring the bucket"):
            self.ensure_bucket()
        with self._stage("ensuring the log group"):
            self.ensure_log_group()
        with self._stage("ensuring the execution role"):
            role_arn = self.ensure_role(variables)
        with self._stage("uploading artifacts"):
            self.upload(function_zip, function_key)
            layer_key = config.key("lambda", "layers", f"{config.layer_name}-{layer_zip.sha256[:16]}.zip")
            self.upload(layer_zip, layer_key)
        with self._stage("publishing the layer"):
            layer_arn = self.ensure_layer(layer_zip, layer_key)
        spec = _FunctionSpec(
            function_zip.code_sha256,
            role_arn,
            (layer_arn,),
            variables,
            config.memory_mb,
            config.timeout_seconds,
        )
        with self._stage("reading the live alias"):
            live = self.live_alias()
        previous = live["FunctionVersion"] if live else None
        already_live = (
            live is not None and not _weights(live) and spec.matches(self._version_config(previous))
        )
        if previous is not None and already_live:
            version = previous  # same code and configuration: an idempotent rerun
        else:
            version = self._release(spec, function_key, record, example, live)
        with self._stage("ensuring the HTTP API"):
            api_id, endpoint = self.ensure_api()
        return DeployResult(
            function_version=version,
            previous_version=previous,
            endpoint_url=endpoint,
            api_id=api_id,
            code_sha256=function_zip.code_sha256,
            # The key is content-addressed, so an already-live artifact has this same URI.
            artifact_uri=record.uri,
            layer_version_arn=layer_arn,
            changed=bool(self._changes),
            already_live=already_live,
            changes=tuple(self._changes),
        )

    def _release(
        self,
        spec: _FunctionSpec,
        function_key: str,
        record: ArtifactRecord,
        example: dict[str, Any],
        live: dict[str, Any] | None,
    ) -> str:
        """Update the function, publish a version, smoke-test it and move `live` to it."""
        with self._stage("updating the function"):
            self.ensure_function(spec, function_key)
        with self._stage("publishing a version"):
            version = self.publish_version(spec.code_sha256, record.to_description())
        model_version = record.model_version
        with self._stage(f"smoke-testing version {version}"):
            smoke_test(lambda event: self.invoker(version, event), example, model_version)
        previous = live["FunctionVersion"] if live else None
        with self._stage(f"moving {ALIAS} to version {version}"):
            if live is None:
                self._create_alias(version)
            elif previous != version and self.config.canary_weight is not None:
                self._canary(live, version, example, model_version)
            else:
                self._update_alias(version, {}, live.get("RevisionId"))
        self._alias_moved = True
        self._changed(f"alias {ALIAS} -> {version}")
        return version

    # --- bucket, logs, role ------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket if missing; always block public access and encrypt by default."""
        bucket = self.config.bucket
        try:
            self.s3.head_bucket(Bucket=bucket)
        except ClientError as error:
            if error_code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                raise  # 403: the name is taken by another account, or we may not see it
            arguments: dict[str, Any] = {"Bucket": bucket}
            if self.config.region != "us-east-1":  # us-east-1 refuses an explicit constraint
                arguments["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
            self.s3.create_bucket(**arguments)
            self._changed(f"bucket {bucket}")
        # Both calls replace the whole setting, so repeating them is idempotent.
        self.s3.put_public_access_block(
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )
        self.s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            },
        )

    def ensure_log_group(self) -> None:
        """Create the function's log group (so the function needs no CreateLogGroup) with retention."""
        try:
            self.logs.create_log_group(logGroupName=self.config.log_group)
            self._changed(f"log group {self.config.log_group}")
        except ClientError as error:
            if error_code(error) != "ResourceAlreadyExistsException":
                raise
        self.logs.put_retention_policy(
            logGroupName=self.config.log_group, retentionInDays=self.config.log_retention_days
        )

    def ensure_role(self, environment: Mapping[str, str]) -> str:
        """The execution role with the Lambda trust policy and the rendered inline policy; its ARN."""
        name = self.config.role_name
        trust = trust_policy()
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            role = self.iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=json.dumps(trust),
                Description=f"Execution role of the {self.config.function_name} Lambda function",
            )["Role"]
            self._changed(f"role {name}")
        else:
            if _as_document(role.get("AssumeRolePolicyDocument")) != trust:
                self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
                self._changed(f"trust policy of {name}")
        policy = execution_policy(self.config, self.partition, self.account_id, environment)
        policy_name = self.inline_policy_name
        try:
            current = self.iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
        except ClientError as error:
            if error_code(error) != "NoSuchEntity":
                raise
            current = None
        if _as_document(current) != policy:
            self.iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
            self._changed(f"inline policy {policy_name}")
        return str(role["Arn"])

    @property
    def inline_policy_name(self) -> str:
        """The name of the execution role's inline policy."""
        return f"{self.config.function_name}-execution"

    # --- artifacts and layer -----------------------------------------------------------------

    def upload(self, artifact: Artifact, key: str) -> None:
        """Upload a zip to its content-addressed key unless an object of that size is there."""
        try:
            head = self.s3.head_object(Bucket=self.config.bucket, Key=key)
        except ClientError as error:
            if error_code(error) not in {"404", "NoSuchKey", "NotFound"}:
                raise
        else:
            if head["ContentLength"] == artifact.size:
                return
        # upload_file switches to multipart for the ~50 MB layer.
        self.s3.upload_file(
            str(artifact.path), self.config.bucket, key, ExtraArgs={"ContentType": "application/zip"}
        )
        self._changed(f"s3://{self.config.bucket}/{key}")

    def latest_layer_version(self) -> dict[str, Any] | None:
        """The newest published version of the layer, or None."""
        versions = _all_items(
            self.lambda_, "list_layer_versions", "LayerVersions", LayerName=self.config.layer_name
        )
        return max(versions, key=lambda item: int(item["Version"]), default=None)

    def ensure_layer(self, layer_zip: Artifact, key: str) -> str:
        """Publish the layer from S3 only when its sha256 differs from the latest version's."""
        latest = self.latest_layer_version()
        if latest is not None and _layer_sha256(latest.get("Description")) == layer_zip.sha256:
            return str(latest["LayerVersionArn"])
        published = self.lambda_.publish_layer_version(
            LayerName=self.config.layer_name,
            Description=json.dumps({"sha256": layer_zip.sha256}, separators=(",", ":")),
            # From S3: the real layer is over Lambda's 50 MB direct-upload limit.
            Content={"S3Bucket": self.config.bucket, "S3Key": key},
            CompatibleRuntimes=[LAMBDA_RUNTIME],
            CompatibleArchitectures=[LAMBDA_ARCHITECTURE],
        )
        self._changed(f"layer version {published['Version']}")
        return str(published["LayerVersionArn"])

    # --- function, versions, alias -----------------------------------------------------------

    def function_configuration(self) -> dict[str, Any] | None:
        """The configuration of `$LATEST`, or None when the function does not exist."""
        try:
            return self.lambda_.get_function_configuration(FunctionName=self.config.function_name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return None

    def _version_config(self, version: str | None) -> dict[str, Any]:
        return self.lambda_.get_function_configuration(
            FunctionName=self.config.function_name, Qualifier=version
        )

    def _wait(self, waiter_name: str, **arguments: str) -> None:
        """Wait for a Lambda state change (updates are asynchronous on AWS, instant in moto)."""
        self.lambda_.get_waiter(waiter_name).wait(FunctionName=self.config.function_name, **arguments)

    def ensure_function(self, spec: _FunctionSpec, key: str) -> None:
        """Create the function once; afterwards update code and configuration when they differ."""
        current = self.function_configuration()
        if current is None:
            self._create_function(spec, key)
            self._wait("function_active_v2")
            self._changed("function created")
            return
        if current.get("LastUpdateStatus") == "InProgress":  # someone else's update: let it finish
            self._wait("function_updated_v2")
            current = self.function_configuration() or current
        if current.get("CodeSha256") != spec.code_sha256:
            self.lambda_.update_function_code(
                FunctionName=self.config.function_name, S3Bucket=self.config.bucket, S3Key=key
            )
            self._wait("function_updated_v2")
            self._changed("function code")
        if spec.configuration_differs(current):
            self.lambda_.update_function_configuration(
                FunctionName=self.config.function_name, **spec.configuration()
            )
            self._wait("function_updated_v2")
            self._changed("function configuration")

    def _create_function(self, spec: _FunctionSpec, key: str) -> None:
        arguments = {
            "FunctionName": self.config.function_name,
            "Code": {"S3Bucket": self.config.bucket, "S3Key": key},
            "Architectures": [LAMBDA_ARCHITECTURE],
            "PackageType": "Zip",
            "Publish": False,  # versions are published explicitly, with the artifact record
            **spec.configuration(),
        }
        for delay in (*ROLE_PROPAGATION_DELAYS, None):
            try:
                self.lambda_.create_function(**arguments)
            except ClientError as error:
                if delay is None or not _role_not_ready(error):
                    raise
                self._sleep(delay)
            else:
                return

    def publish_version(self, code_sha256: str, description: str) -> str:
        """Publish `$LATEST` as a version (only if its code is still ours) and wait until it is active."""
        published = self.lambda_.publish_version(
            FunctionName=self.config.function_name, Description=description, CodeSha256=code_sha256
        )
        version = str(published["Version"])
        self._wait("published_version_active", Qualifier=version)
        self._changed(f"version {version}")
        return version

    def live_alias(self) -> dict[str, Any] | None:
        """The `live` alias, or None before the first successful deploy."""
        try:
            return self.lambda_.get_alias(FunctionName=self.config.function_name, Name=ALIAS)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return None

    def _create_alias(self, version: str) -> None:
        self.lambda_.create_alias(
            FunctionName=self.config.function_name,
            Name=ALIAS,
            FunctionVersion=version,
            Description="The version the HTTP API serves",
        )

    def _update_alias(self, version: str, weights: dict[str, float], revision: str | None) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "FunctionName": self.config.function_name,
            "Name": ALIAS,
            "FunctionVersion": version,
            "RoutingConfig": {"AdditionalVersionWeights": weights},
        }
        if revision:  # refuse to overwrite an alias another deploy moved meanwhile
            arguments["RevisionId"] = revision
        return self.lambda_.update_alias(**arguments)

    def _canary(
        self, live: dict[str, Any], version: str, example: dict[str, Any], model_version: str
    ) -> None:
        """Send a share of traffic to the new version, check again, then move fully (or roll back)."""
        previous = live["FunctionVersion"]
        weight = float(self.config.canary_weight or 0)
        canary = self._update_alias(previous, {version: weight}, live.get("RevisionId"))
        self._changed(f"canary {version}@{weight}")
        try:
            smoke_test(lambda event: self.invoker(version, event), example, model_version)
            self._alias_answers()
        except Exception as error:
            self._update_alias(previous, {}, None)
            msg = f"canary of version {version} failed, {ALIAS} is back on {previous}: {error}"
            raise DeployError(msg) from error
        self._update_alias(version, {}, canary.get("RevisionId"))

    def _alias_answers(self) -> None:
        """The alias itself (either version behind it) answers the health check."""
        response = self.invoker(ALIAS, http_event("GET", "/health"))
        if response.get("statusCode") != 200:  # noqa: PLR2004
            msg = f"{ALIAS} answered GET /health with {response.get('statusCode')}: {response.get('body')}"
            raise DeployError(msg)

    # --- HTTP API ----------------------------------------------------------------------------

    def find_api(self) -> dict[str, Any] | None:
        """The HTTP API with the configured name, or None."""
        for api in _all_items(self.apigw, "get_apis"):
            if api.get("Name") == self.config.api_name and api.get("ProtocolType") == "HTTP":
                return api
        return None

    def ensure_api(self) -> tuple[str, str]:
        """The HTTP API in front of the `live` alias, created once; its id and endpoint URL."""
        api = self.find_api()
        if api is None:
            api = self.apigw.create_api(
                Name=self.config.api_name,
                ProtocolType="HTTP",
                Description=f"Predictions of the {self.config.function_name} Lambda function",
            )
            self._changed(f"api {api['ApiId']}")
        api_id = str(api["ApiId"])
        alias_arn = self._alias_arn()
        integration_id = self._ensure_integration(api_id, alias_arn)
        self._ensure_routes(api_id, f"integrations/{integration_id}")
        self._ensure_stage(api_id)
        self._ensure_permission(api_id)
        return api_id, str(api["ApiEndpoint"])

    def _alias_arn(self) -> str:
        alias = self.live_alias()
        if alias is None:
            msg = f"{self.config.function_name} has no {ALIAS} alias to put behind the API"
            raise DeployError(msg)
        return str(alias["AliasArn"])

    def _ensure_integration(self, api_id: str, alias_arn: str) -> str:
        integrations = _all_items(self.apigw, "get_integrations", ApiId=api_id)
        proxies = [item for item in integrations if item.get("IntegrationType") == "AWS_PROXY"]
        settings = {"IntegrationUri": alias_arn, "PayloadFormatVersion": "2.0"}
        for item in proxies:
            if item.get("IntegrationUri") == alias_arn and item.get("PayloadFormatVersion") == "2.0":
                return str(item["IntegrationId"])
        if proxies:  # ours, pointing elsewhere (a renamed function): repoint it, keep its id
            integration_id = str(proxies[0]["IntegrationId"])
            self.apigw.update_integration(ApiId=api_id, IntegrationId=integration_id, **settings)
            self._changed(f"integration {integration_id}")
            return integration_id
        created = self.apigw.create_integration(
            ApiId=api_id, IntegrationType="AWS_PROXY", IntegrationMethod="POST", **settings
        )
        self._changed(f"integration {created['IntegrationId']}")
        return str(created["IntegrationId"])

    def _ensure_routes(self, api_id: str, target: str) -> None:
        routes = {item["RouteKey"]: item for item in _all_items(self.apigw, "get_routes", ApiId=api_id)}
        for route_key in ROUTE_KEYS:
            route = routes.get(route_key)
            if route is None:
                self.apigw.create_route(ApiId=api_id, RouteKey=route_key, Target=target)
                self._changed(f"route {route_key}")
            elif route.get("Target") != target:
                self.apigw.update_route(ApiId=api_id, RouteId=route["RouteId"], Target=target)
                self._changed(f"route {route_key}")

    def _ensure_stage(self, api_id: str) -> None:
        stages = {item["StageName"]: item for item in _all_items(self.apigw, "get_stages", ApiId=api_id)}
        stage = stages.get(DEFAULT_STAGE)
        if stage is None:
            self.apigw.create_stage(ApiId=api_id, StageName=DEFAULT_STAGE, AutoDeploy=True)
            self._changed(f"stage {DEFAULT_STAGE}")
        elif not stage.get("AutoDeploy"):
            self.apigw.update_stage(ApiId=api_id, StageName=DEFAULT_STAGE, AutoDeploy=True)
            self._changed(f"stage {DEFAULT_STAGE}")

    def _ensure_permission(self, api_id: str) -> None:
        """Let this API (and only it) invoke the alias."""
        statement_id = f"apigateway-{api_id}"
        if statement_id in self._alias_policy_ids():
            return
        source_arn = f"arn:{self.partition}:execute-api:{self.config.region}:{self.account_id}:{api_id}/*"
        try:
            self.lambda_.add_permission(
                FunctionName=self.config.function_name,
                Qualifier=ALIAS,
                StatementId=statement_id,
                Action="lambda:InvokeFunction",
                Principal="apigateway.amazonaws.com",
                SourceArn=source_arn,
            )
            self._changed(f"permission {statement_id}")
        except ClientError as error:
            if error_code(error) != "ResourceConflictException":  # already there
                raise

    def _alias_policy_ids(self) -> set[str]:
        try:
            policy = self.lambda_.get_policy(FunctionName=self.config.function_name, Qualifier=ALIAS)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise
            return set()
        return {statement.get("Sid", "") for statement in json.loads(policy["Policy"]).get("Statement", [])}


def _all_items(client: Any, operation: str, field: str = "Items", **arguments: Any) -> list[dict[str, Any]]:
    """Every item of a paginated listing."""
    pages = client.get_paginator(operation).paginate(**arguments)
    return [item for page in pages for item in page.get(field, [])]


def _as_document(value: Any) -> Any:
    """IAM policy documents come back as dicts from boto3, or as JSON strings from some servers."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _role_not_ready(error: ClientError) -> bool:
    """The error Lambda gives while a new role has not propagated through IAM yet."""
    message = str(error.response.get("Error", {}).get("Message", ""))
    return error_code(error) == "InvalidParameterValueException" and "cannot be assumed" in message
