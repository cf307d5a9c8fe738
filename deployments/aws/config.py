"""Names of one model's AWS resources, the record a version keeps of its artifact, shared clients."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from tasks.core.errors import UserError
from tasks.core.settings import Settings, split_list

DESCRIPTION_LIMIT = 256  # Lambda's limit for version and layer version descriptions
# Standard mode retries throttling and transient errors with exponential backoff and jitter.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 10})
# The tag that marks an AWS resource as this deployment's own (its value: the function name).
PROJECT_TAG_KEY = "loopml:function"


ApiAuth = Literal["iam", "jwt", "none"]
Tracing = Literal["Active", "PassThrough"]
FirehoseLayout = Literal["partitioned", "default"]


def _default(setting: str) -> Any:
    """The default of a setting: declared once, in `Settings`."""
    return Settings.model_fields[setting].default


# AwsConfig field <- setting, for the fields that are settings as they are.
FROM_SETTINGS = {
    "memory_mb": "lambda_memory_mb",
    "canary_weight": "canary_weight",
    "canary_bake_seconds": "canary_bake_seconds",
    "alarm_error_rate_percent": "alarm_error_rate_percent",
    "alarm_p99_latency_ms": "alarm_p99_latency_ms",
    "alarm_topic_arn": "alarm_topic_arn",
    "firehose_stream": "firehose_stream",
    "firehose_buffer_mib": "firehose_buffer_mib",
    "firehose_buffer_seconds": "firehose_buffer_seconds",
    "firehose_layout": "firehose_layout",
    "api_auth": "api_auth",
    "page_auth": "api_page_auth",
    "jwt_issuer": "api_jwt_issuer",
    "throttle_rate": "api_throttle_rate",
    "throttle_burst": "api_throttle_burst",
    "tracing": "lambda_tracing",
    "kms_key_arn": "kms_key_arn",
    "reserved_concurrency": "lambda_reserved_concurrency",
    "provisioned_concurrency": "lambda_provisioned_concurrency",
}
# AwsConfig field <- comma-separated setting.
LIST_SETTINGS = {
    "jwt_audience": "api_jwt_audience",
    "cors_origins": "api_cors_origins",
    "subnet_ids": "lambda_subnet_ids",
    "security_group_ids": "lambda_security_group_ids",
}


class DeployError(RuntimeError):
    """A deploy failed; the message names the step and whether `live` had moved (never untested)."""


class DeployRefusedError(DeployError, UserError):
    """A deploy stopped before changing anything; the message names what to fix (never retried)."""


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
    memory_mb: int = _default("lambda_memory_mb")
    timeout_seconds: int = 30
    canary_weight: float | None = _default("canary_weight")
    canary_bake_seconds: float = _default("canary_bake_seconds")
    bake_poll_seconds: float = 10.0
    alarm_error_rate_percent: float = _default("alarm_error_rate_percent")
    alarm_p99_latency_ms: float = _default("alarm_p99_latency_ms")
    alarm_topic_arn: str | None = _default("alarm_topic_arn")
    firehose_stream: str | None = _default("firehose_stream")
    firehose_buffer_mib: int = _default("firehose_buffer_mib")
    firehose_buffer_seconds: int = _default("firehose_buffer_seconds")
    firehose_layout: FirehoseLayout = _default("firehose_layout")  # noqa: RUF009 - an immutable setting default
    log_retention_days: int = 30
    api_auth: ApiAuth = _default("api_auth")  # noqa: RUF009 - an immutable setting default
    # The page's route (`GET /`); None: as `api_auth`.
    page_auth: ApiAuth | None = _default("api_page_auth")  # noqa: RUF009 - an immutable setting default
    jwt_issuer: str | None = _default("api_jwt_issuer")
    jwt_audience: tuple[str, ...] = ()
    throttle_rate: float = _default("api_throttle_rate")
    throttle_burst: int = _default("api_throttle_burst")
    cors_origins: tuple[str, ...] = ()
    tracing: Tracing = _default("lambda_tracing")  # noqa: RUF009 - an immutable setting default
    kms_key_arn: str | None = _default("kms_key_arn")
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    reserved_concurrency: int | None = _default("lambda_reserved_concurrency")
    provisioned_concurrency: int | None = _default("lambda_provisioned_concurrency")
    # False only where the S3 endpoint cannot honour a TLS-only bucket policy (see bucket.py).
    bucket_tls_only: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", self.prefix.strip("/"))
        object.__setattr__(self, "role_name", self.role_name or f"{self.function_name}-execution")
        object.__setattr__(self, "api_name", self.api_name or self.function_name)
        object.__setattr__(self, "layer_name", self.layer_name or f"{self.function_name}-deps")
        for problem in self._problems():
            raise ValueError(problem)

    def _problems(self) -> list[str]:
        """Settings that cannot work together, each named."""
        problems = []
        if self.canary_weight is not None and not 0 < self.canary_weight < 1:
            problems.append(f"canary_weight must be between 0 and 1 (exclusive), got {self.canary_weight}")
        if "jwt" in {self.api_auth, self.page_auth} and not (self.jwt_issuer and self.jwt_audience):
            problems.append("api_auth jwt needs jwt_issuer and jwt_audience (the identity provider's)")
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            problems.append("a VPC needs both subnet_ids and security_group_ids")
        if not 1 <= self.firehose_buffer_mib <= 128:  # noqa: PLR2004 - Firehose's limits
            problems.append(f"firehose_buffer_mib must be 1-128 (MiB), got {self.firehose_buffer_mib}")
        if not 0 <= self.firehose_buffer_seconds <= 900:  # noqa: PLR2004 - Firehose's limits
            problems.append(f"firehose_buffer_seconds must be 0-900, got {self.firehose_buffer_seconds}")
        provisioned, reserved = self.provisioned_concurrency, self.reserved_concurrency
        if provisioned is not None and reserved is not None and provisioned > reserved:
            problems.append("provisioned_concurrency cannot exceed reserved_concurrency")
        return problems

    @classmethod
    def from_settings(cls, settings: Settings, model_name: str) -> AwsConfig:
        """One model's AWS configuration from the settings (bucket and prefix from the storage URL)."""
        storage = urlparse(settings.storage)
        values: dict[str, Any] = {field: getattr(settings, name) for field, name in FROM_SETTINGS.items()}
        values |= {field: split_list(getattr(settings, name)) for field, name in LIST_SETTINGS.items()}
        return cls(
            region=settings.aws_region or "",
            bucket=storage.netloc,
            prefix=storage.path.strip("/"),
            function_name=settings.lambda_function_name or f"{model_name}-serving",
            **values,
        )

    def key(self, *parts: str) -> str:
        """An S3 key under the configured prefix."""
        return "/".join(part for part in (self.prefix, *parts) if part)

    @property
    def page_authorization(self) -> ApiAuth:
        """Who may open the page at `GET /`: its own setting, else the API's."""
        return self.page_auth or self.api_auth

    @property
    def log_group(self) -> str:
        """The log group Lambda writes the function's logs to."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def access_log_group(self) -> str:
        """The log group of the HTTP API's access logs (`/aws/vendedlogs/` keeps its log policy small)."""
        return f"/aws/vendedlogs/apigateway/{self.api_name}"

    @property
    def boundary_name(self) -> str:
        """The managed policy that caps what the execution role may ever be allowed."""
        return f"{self.function_name}-boundary"

    @property
    def firehose_role_name(self) -> str:
        """The role Firehose assumes to deliver the stream's records to the bucket."""
        return f"{self.function_name}-firehose"

    @property
    def project_tags(self) -> dict[str, str]:
        """The tags that mark a resource (the HTTP API) as this deployment's own."""
        return {PROJECT_TAG_KEY: self.function_name}


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


@dataclass
class AwsClients:
    """The boto3 clients of one deploy, the account they act in, and the changes made so far."""

    config: AwsConfig
    session: Any
    s3: Any
    iam: Any
    logs: Any
    lambda_: Any
    apigw: Any
    cloudwatch: Any
    firehose: Any
    sleep: Callable[[float], None] = time.sleep
    changes: list[str] = field(default_factory=list)
    _account_id: str | None = None

    @classmethod
    def connect(
        cls, config: AwsConfig, session: Any | None = None, sleep: Callable[[float], None] = time.sleep
    ) -> AwsClients:
        """Clients from the session (credentials chain, `AWS_ENDPOINT_URL` honoured), with retries."""
        session = session or boto3.Session(region_name=config.region)

        def client(service: str) -> Any:
            return session.client(service, region_name=config.region, config=RETRY_CONFIG)

        return cls(
            config,
            session,
            client("s3"),
            client("iam"),
            client("logs"),
            client("lambda"),
            client("apigatewayv2"),
            client("cloudwatch"),
            client("firehose"),
            sleep,
        )

    @property
    def partition(self) -> str:
        """`aws`, `aws-cn` or `aws-us-gov`, from the region."""
        return str(self.session.get_partition_for_region(self.config.region))

    @property
    def account_id(self) -> str:
        """The account of the credentials in use (sts:GetCallerIdentity needs no permission)."""
        if self._account_id is None:
            sts = self.session.client("sts", region_name=self.config.region, config=RETRY_CONFIG)
            self._account_id = str(sts.get_caller_identity()["Account"])
        return self._account_id

    def changed(self, what: str) -> None:
        """Note a change this deploy made."""
        self.changes.append(what)


def error_code(error: ClientError) -> str:
    """The AWS error code of a failed call."""
    return str(error.response.get("Error", {}).get("Code", ""))


def all_items(client: Any, operation: str, field: str = "Items", **arguments: Any) -> list[dict[str, Any]]:
    """Every item of a paginated listing."""
    pages = client.get_paginator(operation).paginate(**arguments)
    return [item for page in pages for item in page.get(field, [])]


def missing(error: ClientError, *codes: str) -> bool:
    """Whether a failed call only says the resource does not exist (yet)."""
    return error_code(error) in codes
