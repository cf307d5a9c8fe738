"""The artifact and prediction-log bucket: created once, public access blocked, encrypted at rest."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from deployments.artifact import Artifact
from deployments.aws.config import AwsClients, missing


def ensure_bucket(aws: AwsClients) -> None:
    """Create the bucket if missing; always block public access and encrypt by default."""
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
    # Both calls replace the whole setting, so repeating them is idempotent.
    aws.s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    aws.s3.put_bucket_encryption(
        Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [encryption_rule(aws.config.kms_key_arn)]}
    )


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
