"""The function's identity: its execution role with the rendered inline policy, and its log group."""

from __future__ import annotations

import json
from collections.abc import Mapping

from botocore.exceptions import ClientError

from deployments.aws.config import AwsClients, missing
from deployments.aws.policies import as_document, execution_policy, trust_policy


def inline_policy_name(aws: AwsClients) -> str:
    """The name of the execution role's inline policy."""
    return f"{aws.config.function_name}-execution"


def ensure_log_group(aws: AwsClients) -> None:
    """Create the function's log group (so the function needs no CreateLogGroup) with retention."""
    try:
        aws.logs.create_log_group(logGroupName=aws.config.log_group)
        aws.changed(f"log group {aws.config.log_group}")
    except ClientError as error:
        if not missing(error, "ResourceAlreadyExistsException"):
            raise
    aws.logs.put_retention_policy(
        logGroupName=aws.config.log_group, retentionInDays=aws.config.log_retention_days
    )


def ensure_role(aws: AwsClients, environment: Mapping[str, str]) -> str:
    """The execution role with the Lambda trust policy and the rendered inline policy; its ARN."""
    name = aws.config.role_name
    trust = trust_policy()
    try:
        role = aws.iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if not missing(error, "NoSuchEntity"):
            raise
        role = aws.iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=f"Execution role of the {aws.config.function_name} Lambda function",
        )["Role"]
        aws.changed(f"role {name}")
    else:
        if as_document(role.get("AssumeRolePolicyDocument")) != trust:
            aws.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            aws.changed(f"trust policy of {name}")
    policy = execution_policy(aws.config, aws.partition, aws.account_id, environment)
    policy_name = inline_policy_name(aws)
    try:
        current = aws.iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
    except ClientError as error:
        if not missing(error, "NoSuchEntity"):
            raise
        current = None
    if as_document(current) != policy:
        aws.iam.put_role_policy(RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
        aws.changed(f"inline policy {policy_name}")
    return str(role["Arn"])
