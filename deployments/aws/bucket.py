"""The artifact and prediction-log bucket: public access blocked, encrypted, versioned, TLS only.

Each setting is read first and written only when it differs, so a rerun changes nothing. The
bucket policy and the lifecycle rules are merged: statements and rules of others stay.

A TLS-only policy denies every request sent without TLS, so an endpoint reached over plain
HTTP (moto in the tests) refuses object requests after it; `AwsConfig.bucket_tls_only=False`
leaves the policy out for such an endpoint. moto also ignores policy conditions and would
refuse TLS requests too: that half is AWS's to enforce.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws.arns import Arns, document
from deployments.aws.config import AwsClients, AwsConfig, missing
from deployments.aws.policies import as_document
from deployments.lambda_package.function_artifact import Artifact

TLS_ONLY_SID = "DenyEveryRequestThatIsNotSentOverTls"
NONCURRENT_RULE_ID = "loopml-expire-noncurrent-versions"
NONCURRENT_VERSION_DAYS = 30  # overwritten and deleted objects (compacted logs) are kept this long
INCOMPLETE_UPLOAD_DAYS = 7
PUBLIC_ACCESS_BLOCK = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
)


def ensure_bucket(aws: AwsClients) -> None:
    """Create the bucket if missing; block public access, encrypt, version, and refuse plain HTTP."""
    bucket = aws.config.bucket
    try:
        aws.s3.head_bucket(Bucket=bucket)
    except ClientError as error:
        if not missing(error, "404", "NoSuchBucket", "NotFound"):
            raise  # 403: the name is taken by another account, or we may not see it
        arguments: dict[str, Any] = {"Bucket": bucket}
        if aws.config.region != "us-east-1":  # us-east-1 refuses an explicit constraint
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": aws.config.region}
        aws.s3.create_bucket(**arguments)
        aws.changed(f"bucket {bucket}")
    _ensure_public_access_block(aws)
    _ensure_encryption(aws)
    _ensure_versioning(aws)
    _ensure_lifecycle(aws)
    if aws.config.bucket_tls_only:
        _ensure_tls_only(aws)


def _read(call: Callable[[], dict[str, Any]], *absent: str) -> dict[str, Any] | None:
    """A bucket setting, or None when the bucket has none."""
    try:
        return call()
    except ClientError as error:
        if not missing(error, *absent):
            raise
        return None


def _ensure_public_access_block(aws: AwsClients) -> None:
    bucket = aws.config.bucket
    current = _read(
        lambda: aws.s3.get_public_access_block(Bucket=bucket), "NoSuchPublicAccessBlockConfiguration"
    )
    if (current or {}).get("PublicAccessBlockConfiguration") == PUBLIC_ACCESS_BLOCK:
        return
    aws.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    aws.changed(f"bucket {bucket} public access block")


def _ensure_encryption(aws: AwsClients) -> None:
    bucket = aws.config.bucket
    wanted = encryption_rule(aws.config.kms_key_arn)
    current = _read(
        lambda: aws.s3.get_bucket_encryption(Bucket=bucket), "ServerSideEncryptionConfigurationNotFoundError"
    )
    rules = ((current or {}).get("ServerSideEncryptionConfiguration") or {}).get("Rules") or [{}]
    if len(rules) == 1 and all(rules[0].get(key) == value for key, value in wanted.items()):
        return
    aws.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [wanted]})
    aws.changed(f"bucket {bucket} encryption")


def _ensure_versioning(aws: AwsClients) -> None:
    """Versioning keeps an overwritten or deleted object (a log, an artifact) recoverable."""
    bucket = aws.config.bucket
    if aws.s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled":
        return
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    aws.changed(f"bucket {bucket} versioning")


def lifecycle_rule(config: AwsConfig) -> dict[str, Any]:
    """Expire old versions under the prefix (versioning would keep them forever) and stale uploads."""
    return {
        "ID": NONCURRENT_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": f"{config.prefix}/" if config.prefix else ""},
        "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_VERSION_DAYS},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": INCOMPLETE_UPLOAD_DAYS},
    }


def _ensure_lifecycle(aws: AwsClients) -> None:
    bucket = aws.config.bucket
    wanted = lifecycle_rule(aws.config)
    current = _read(
        lambda: aws.s3.get_bucket_lifecycle_configuration(Bucket=bucket), "NoSuchLifecycleConfiguration"
    )
    rules = list((current or {}).get("Rules") or [])
    ours = [rule for rule in rules if rule.get("ID") == NONCURRENT_RULE_ID]
    if ours and all(ours[0].get(key) == value for key, value in wanted.items()):
        return
    others = [rule for rule in rules if rule.get("ID") != NONCURRENT_RULE_ID]
    aws.s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*others, wanted]}
    )
    aws.changed(f"bucket {bucket} lifecycle rule {NONCURRENT_RULE_ID}")


def bucket_policy(config: AwsConfig, partition: str) -> dict[str, Any]:
    """The bucket's policy: every request that is not sent over TLS is denied, whoever sends it."""
    arns = Arns(config, partition, "")
    return document(
        {
            "Sid": TLS_ONLY_SID,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arns.bucket, arns.objects("")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def _ensure_tls_only(aws: AwsClients) -> None:
    bucket = aws.config.bucket
    wanted = bucket_policy(aws.config, aws.partition)
    [ours] = wanted["Statement"]
    current = _read(lambda: aws.s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
    policy = as_document((current or {}).get("Policy")) or {"Version": wanted["Version"], "Statement": []}
    statements = policy.get("Statement") or []
    statements = [statements] if isinstance(statements, dict) else list(statements)
    if ours in statements:
        return
    others = [item for item in statements if item.get("Sid") != TLS_ONLY_SID]
    merged = {**policy, "Statement": [*others, ours]}
    aws.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(merged))
    aws.changed(f"bucket {bucket} TLS-only policy")


def encryption_rule(kms_key_arn: str | None) -> dict[str, Any]:
    """SSE-KMS with the given key (and an S3 bucket key, fewer KMS calls), else S3-managed AES256."""
    if kms_key_arn:
        return {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": kms_key_arn},
            "BucketKeyEnabled": True,
        }
    return {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}


def upload(aws: AwsClients, artifact: Artifact, key: str) -> None:
    """Upload a zip to its content-addressed key unless an object of that size is there."""
    try:
        head = aws.s3.head_object(Bucket=aws.config.bucket, Key=key)
    except ClientError as error:
        if not missing(error, "404", "NoSuchKey", "NotFound"):
            raise
    else:
        if head["ContentLength"] == artifact.size:
            return
    # upload_file switches to multipart for the ~50 MB layer.
    aws.s3.upload_file(
        str(artifact.path), aws.config.bucket, key, ExtraArgs={"ContentType": "application/zip"}
    )
    aws.changed(f"s3://{aws.config.bucket}/{key}")
