"""The function's identity: its execution role under its boundary, its inline policy, its log groups."""

from __future__ import annotations

import json
from collections.abc import Mapping

from botocore.exceptions import ClientError

from deployments.aws.boundary import ensure_boundary
from deployments.aws.config import AwsClients, missing
from deployments.aws.execution_policies import boundary_policy, execution_policy, trust_policy
from deployments.aws.policies import as_document


def inline_policy_name(aws: AwsClients) -> str:
    """The name of the execution role's inline policy."""
    return f"{aws.config.function_name}-execution"


def ensure_log_group(aws: AwsClients, name: str) -> None:
    """Create a log group (so no one else needs CreateLogGroup) with the configured retention."""
    try:
        aws.logs.create_log_group(logGroupName=name)
        aws.changed(f"log group {name}")
    except ClientError as error:
        if not missing(error, "ResourceAlreadyExistsException"):
            raise
    groups = aws.logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
    retention = {group["logGroupName"]: group.get("retentionInDays") for group in groups}.get(name)
    if retention != aws.config.log_retention_days:
        aws.logs.put_retention_policy(logGroupName=name, retentionInDays=aws.config.log_retention_days)
        aws.changed(f"retention of {name}")


def ensure_role(aws: AwsClients, environment: Mapping[str, str]) -> str:
    """The execution role under its boundary, with the Lambda trust and the inline policy; its ARN.

    A role made before it had a boundary gets it first: the deployer may change the role only
    while the boundary is on it.
    """
    name = aws.config.role_name
    boundary = ensure_boundary(aws, boundary_policy(aws.config, aws.partition, aws.account_id, environment))
    trust = trust_policy(aws.account_id)
    try:
        role = aws.iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if not missing(error, "NoSuchEntity"):
            raise
        role = aws.iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=f"Execution role of the {aws.config.function_name} Lambda function",
            PermissionsBoundary=boundary,
        )["Role"]
        aws.changed(f"role {name}")
    else:
        if (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn") != boundary:
            aws.iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
            aws.changed(f"permissions boundary of {name}")
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
