"""The function's identity: its execution role under its boundary, its inline policy, its log groups."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    boundary = ensure_boundary(aws, boundary_policy(aws.config, aws.partition, aws.account_id, environment))
    return ensure_bounded_role(
        aws,
        BoundedRole(
            name=aws.config.role_name,
            description=f"Execution role of the {aws.config.function_name} Lambda function",
            boundary=boundary,
            trust=trust_policy(aws.account_id),
            policy_name=inline_policy_name(aws),
            policy=execution_policy(aws.config, aws.partition, aws.account_id, environment),
        ),
    )


@dataclass(frozen=True)
class BoundedRole:
    """A role as the deployment wants it: boundary, trust, one inline policy, tags when created."""

    name: str
    description: str
    boundary: str
    trust: dict[str, Any]
    policy_name: str
    policy: dict[str, Any]
    tags: Mapping[str, str] | None = None


def ensure_bounded_role(aws: AwsClients, wanted: BoundedRole) -> str:
    """Create the role or bring its boundary, trust and inline policy to what is wanted; its ARN.

    The boundary is put on first: the deployer may change a role only while the boundary is on it.
    """
    name, boundary, trust = wanted.name, wanted.boundary, wanted.trust
    try:
        role = aws.iam.get_role(RoleName=name)["Role"]
    except ClientError as error:
        if not missing(error, "NoSuchEntity"):
            raise
        tags = [{"Key": key, "Value": value} for key, value in (wanted.tags or {}).items()]
        role = aws.iam.create_role(
            RoleName=name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description=wanted.description,
            PermissionsBoundary=boundary,
            **({"Tags": tags} if tags else {}),
        )["Role"]
        aws.changed(f"role {name}")
    else:
        if (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn") != boundary:
            aws.iam.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=boundary)
            aws.changed(f"permissions boundary of {name}")
        if as_document(role.get("AssumeRolePolicyDocument")) != trust:
            aws.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            aws.changed(f"trust policy of {name}")
    policy_name = wanted.policy_name
    try:
        current = aws.iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
    except ClientError as error:
        if not missing(error, "NoSuchEntity"):
            raise
        current = None
    if as_document(current) != wanted.policy:
        aws.iam.put_role_policy(
            RoleName=name, PolicyName=policy_name, PolicyDocument=json.dumps(wanted.policy)
        )
        aws.changed(f"inline policy {policy_name}")
    return str(role["Arn"])
