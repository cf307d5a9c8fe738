"""The function's environment and where it writes, the CD role's trust, and reading policies back.

The documents themselves are built in `execution_policies`, `deployer_policy` and `bucket`;
`deployments/iam/*.json` are renderings of them (`python -m deployments.aws.policy_files`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from deployments.aws.arns import document
from deployments.aws.config import AwsConfig


def as_document(value: Any) -> Any:
    """IAM policy documents come back as dicts from boto3, or as JSON strings from some servers."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def storage_location(storage_url: str) -> tuple[str, str] | None:
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
    location = storage_location(variables["STORAGE_URL"])
    if location is None and not variables.get("FIREHOSE_STREAM"):
        msg = f"STORAGE_URL must be s3:// on AWS, got {variables['STORAGE_URL']!r}"
        raise ValueError(msg)
    if location is not None and location[0] != config.bucket:
        msg = f"STORAGE_URL bucket {location[0]!r} is not the deploy bucket {config.bucket!r}"
        raise ValueError(msg)
    return variables


def github_trust_policy(partition: str, account_id: str, repository: str, environment: str) -> dict[str, Any]:
    """Trust of the CD role: only GitHub Actions jobs of one repository's environment assume it."""
    provider = "token.actions.githubusercontent.com"
    return document(
        {
            "Sid": "GitHubActionsJobsOfOneRepositoryEnvironmentOnly",
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:{partition}:iam::{account_id}:oidc-provider/{provider}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{provider}:aud": "sts.amazonaws.com",
                    f"{provider}:sub": f"repo:{repository}:environment:{environment}",
                }
            },
        }
    )
