"""The Firehose delivery role's documents, and where the delivery stream writes.

Firehose assumes the role (only for this account, `aws:SourceAccount`) to write the stream's
objects under `<prefix>/predictions/<model>/` and its failed records under
`<prefix>/firehose-errors/`, nothing else in the bucket; with a KMS key, only through S3.
"""

from __future__ import annotations

from typing import Any

from deployments.aws.arns import Arns, document, statement
from deployments.aws.config import AwsConfig
from deployments.lambda_handler.contract import PREDICTIONS_PREFIX

ERRORS_PREFIX = "firehose-errors"


def delivery_prefix(config: AwsConfig, model_name: str) -> str:
    """Where the stream delivers: the hour partitions the monitor reads, or Firehose's own layout below."""
    base = config.key(PREDICTIONS_PREFIX, model_name) + "/"
    if config.firehose_layout == "default":
        return base  # Firehose appends YYYY/MM/DD/HH/
    return base + "dt=!{timestamp:yyyy-MM-dd}/hour=!{timestamp:HH}/"


def error_prefix(config: AwsConfig) -> str:
    """Where Firehose writes records it could not deliver, apart from the predictions."""
    return config.key(ERRORS_PREFIX) + "/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/"


def delivery_statements(config: AwsConfig, partition: str) -> list[dict[str, Any] | None]:
    """What the delivery role may do: write under the two prefixes, and the key through S3."""
    arns = Arns(config, partition, "")
    prefixes = [config.key(PREDICTIONS_PREFIX) + "/", config.key(ERRORS_PREFIX) + "/"]
    return [
        statement(
            "FirehoseFindsTheBucketAndItsUnfinishedUploads",
            ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
            arns.bucket,
        ),
        statement(
            "FirehoseWritesPredictionsAndFailedRecordsUnderTheirPrefixesOnly",
            ["s3:PutObject", "s3:AbortMultipartUpload"],
            [arns.objects(prefix) for prefix in prefixes],
        ),
        statement(
            "FirehoseEncryptsItsObjectsWithTheConfiguredKeyThroughS3Only",
            ["kms:GenerateDataKey", "kms:Decrypt"],
            config.kms_key_arn,
            condition={"StringEquals": {"kms:ViaService": f"s3.{config.region}.amazonaws.com"}},
        )
        if config.kms_key_arn
        else None,
    ]


def delivery_policy(config: AwsConfig, partition: str) -> dict[str, Any]:
    """The delivery role's inline policy."""
    return document(*delivery_statements(config, partition))


def delivery_trust_policy(account_id: str) -> dict[str, Any]:
    """Only the Firehose service, and only for delivery streams of this account."""
    return document(
        {
            "Sid": "FirehoseAssumesTheDeliveryRoleForThisAccountOnly",
            "Effect": "Allow",
            "Principal": {"Service": "firehose.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )
