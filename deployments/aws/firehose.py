"""The Firehose delivery stream of the prediction records, its delivery role, both idempotent.

The stream is created once (ExtendedS3, GZIP, the configured buffering) with the project's
tag; a later deploy whose settings differ updates its destination, and one that finds a
stream it cannot manage (another source or destination, another bucket) stops and says why.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployments.aws.boundary import boundary_arn
from deployments.aws.config import AwsClients, DeployRefusedError, missing
from deployments.aws.firehose_policies import (
    delivery_policy,
    delivery_prefix,
    delivery_trust_policy,
    error_prefix,
)
from deployments.aws.iam import BoundedRole, ensure_bounded_role

ACTIVE_POLLS = 60  # a new stream is CREATING for a minute or so; records sent before are refused
ACTIVE_POLL_SECONDS = 5.0
ROLE_POLLS = 6  # IAM propagation: Firehose may not assume a role created a moment ago
# The destination fields the deployer decides; a difference in any of them is an update.
MANAGED_FIELDS = (
    "RoleARN",
    "BucketARN",
    "Prefix",
    "ErrorOutputPrefix",
    "BufferingHints",
    "CompressionFormat",
    "EncryptionConfiguration",
)


def ensure_delivery_role(aws: AwsClients) -> str:
    """The delivery role under the deployment's boundary, with its trust and inline policy; its ARN."""
    config = aws.config
    return ensure_bounded_role(
        aws,
        BoundedRole(
            name=config.firehose_role_name,
            description=f"Firehose delivery role of the {config.function_name} prediction records",
            boundary=boundary_arn(aws),
            trust=delivery_trust_policy(aws.account_id),
            policy_name=f"{config.firehose_role_name}-delivery",
            policy=delivery_policy(config, aws.partition),
            tags=config.project_tags,
        ),
    )


def destination(aws: AwsClients, model_name: str, role_arn: str) -> dict[str, Any]:
    """The stream's ExtendedS3 destination as the settings want it."""
    config = aws.config
    encryption: dict[str, Any] = {"NoEncryptionConfig": "NoEncryption"}
    if config.kms_key_arn:
        encryption = {"KMSEncryptionConfig": {"AWSKMSKeyARN": config.kms_key_arn}}
    return {
        "RoleARN": role_arn,
        "BucketARN": f"arn:{aws.partition}:s3:::{config.bucket}",
        "Prefix": delivery_prefix(config, model_name),
        "ErrorOutputPrefix": error_prefix(config),
        "BufferingHints": {
            "SizeInMBs": config.firehose_buffer_mib,
            "IntervalInSeconds": config.firehose_buffer_seconds,
        },
        "CompressionFormat": "GZIP",
        "EncryptionConfiguration": encryption,
    }


def describe_stream(aws: AwsClients, name: str) -> dict[str, Any] | None:
    """The stream's description, or None before it exists."""
    try:
        return dict(
            aws.firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
        )
    except ClientError as error:
        if missing(error, "ResourceNotFoundException"):
            return None
        raise


def differences(wanted: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The managed destination fields whose values differ, by name."""
    return [key for key in MANAGED_FIELDS if current.get(key) != wanted[key]]


def ensure_delivery_stream(aws: AwsClients, model_name: str, role_arn: str) -> str:
    """Create the stream once or bring its destination in line with the settings; its ARN."""
    name = str(aws.config.firehose_stream)
    wanted = destination(aws, model_name, role_arn)
    stream = describe_stream(aws, name)
    if stream is None:
        _create(aws, name, wanted)
        stream = _wait_active(aws, name)
    refusal = _unmanageable(stream, wanted)
    if refusal:
        msg = f"Firehose stream {name} {refusal}; name another stream (MLOPS_FIREHOSE_STREAM) or change it"
        raise DeployRefusedError(msg)
    [target] = stream["Destinations"]
    changed = differences(wanted, target["ExtendedS3DestinationDescription"])
    if changed:
        aws.firehose.update_destination(
            DeliveryStreamName=name,
            CurrentDeliveryStreamVersionId=stream["VersionId"],
            DestinationId=target["DestinationId"],
            ExtendedS3DestinationUpdate=wanted,
        )
        aws.changed(f"Firehose stream {name} destination ({', '.join(changed)})")
    return str(stream["DeliveryStreamARN"])


def _create(aws: AwsClients, name: str, wanted: dict[str, Any]) -> None:
    tags = [{"Key": key, "Value": value} for key, value in aws.config.project_tags.items()]
    for attempt in range(ROLE_POLLS):
        try:
            aws.firehose.create_delivery_stream(
                DeliveryStreamName=name,
                DeliveryStreamType="DirectPut",
                ExtendedS3DestinationConfiguration=wanted,
                Tags=tags,
            )
            break
        except ClientError as error:
            # a role IAM has not propagated yet: Firehose says it cannot assume it
            if not missing(error, "InvalidArgumentException") or attempt == ROLE_POLLS - 1:
                raise
            aws.sleep(ACTIVE_POLL_SECONDS)
    aws.changed(f"Firehose stream {name}")


def _wait_active(aws: AwsClients, name: str) -> dict[str, Any]:
    for _ in range(ACTIVE_POLLS):
        stream = describe_stream(aws, name)
        if stream is not None and stream["DeliveryStreamStatus"] == "ACTIVE":
            return stream
        aws.sleep(ACTIVE_POLL_SECONDS)
    msg = f"Firehose stream {name} is not ACTIVE after {ACTIVE_POLLS * ACTIVE_POLL_SECONDS:.0f} s"
    raise RuntimeError(msg)


def _unmanageable(stream: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """Why the deployer may not manage an existing stream (None: it may)."""
    if stream.get("DeliveryStreamType", "DirectPut") != "DirectPut":
        return f"takes its records from {stream['DeliveryStreamType']}, not from the function (DirectPut)"
    targets = stream.get("Destinations", [])
    if len(targets) != 1 or "ExtendedS3DestinationDescription" not in targets[0]:
        return "does not deliver to one S3 destination"
    bucket = targets[0]["ExtendedS3DestinationDescription"].get("BucketARN")
    if bucket != wanted["BucketARN"]:
        return f"delivers to {bucket}, not to the deploy bucket {wanted['BucketARN']}"
    return None
