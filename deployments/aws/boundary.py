"""The execution role's permissions boundary: a managed policy created once, then only read.

The deployer may create the boundary but never rewrite or delete it (its own policy denies
that), so whatever inline policy it later puts on the role, the role can do no more than the
boundary allows. When the function comes to need something else (a setting changed), the
deploy stops before changing anything and names the command an administrator runs.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from deployments.aws.arns import Arns
from deployments.aws.config import AwsClients, DeployRefusedError, missing
from deployments.aws.policies import as_document


def boundary_arn(aws: AwsClients) -> str:
    """The ARN of the deployment's boundary policy."""
    return Arns(aws.config, aws.partition, aws.account_id).boundary


def read_boundary(aws: AwsClients) -> dict[str, Any] | None:
    """The boundary's document as IAM holds it (its default version), or None before it exists."""
    arn = boundary_arn(aws)
    try:
        policy = aws.iam.get_policy(PolicyArn=arn)["Policy"]
    except ClientError as error:
        if not missing(error, "NoSuchEntity"):
            raise
        return None
    version = aws.iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
    return dict(as_document(version["PolicyVersion"]["Document"]))


def check_boundary(aws: AwsClients, wanted: dict[str, Any]) -> None:
    """Refuse, before any change, when an existing boundary is not what the function needs."""
    current = read_boundary(aws)
    if current is None or current == wanted:
        return
    arn = boundary_arn(aws)
    msg = (
        f"the permissions boundary {arn} differs from what {aws.config.function_name} needs now "
        "(a setting changed?) and the deployer may not rewrite it; an administrator replaces it: "
        "python -m deployments.aws.policy_cli boundary > boundary.json && "
        f"aws iam create-policy-version --policy-arn {arn} "
        "--policy-document file://boundary.json --set-as-default"
    )
    raise DeployRefusedError(msg)


def ensure_boundary(aws: AwsClients, wanted: dict[str, Any]) -> str:
    """Create the boundary once with the function's needs; afterwards only check it. Its ARN."""
    arn = boundary_arn(aws)
    if read_boundary(aws) is None:
        try:
            aws.iam.create_policy(
                PolicyName=aws.config.boundary_name,
                PolicyDocument=json.dumps(wanted),
                Description=f"Permissions boundary of the {aws.config.function_name} execution role",
            )
        except ClientError as error:
            if not missing(error, "EntityAlreadyExists"):  # another deploy created it meanwhile
                raise
        else:
            aws.changed(f"permissions boundary {aws.config.boundary_name}")
            return arn
    check_boundary(aws, wanted)
    return arn
