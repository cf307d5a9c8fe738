"""What the function's execution role is: who may assume it, what it may do, and its boundary.

The inline policy names the function's own resources; optional grants (Firehose with a stream,
KMS with a key, X-Ray with tracing, network interfaces in a VPC) appear only with their setting.
The permissions boundary is the same document as a managed policy the deployer may create but
never change: whatever inline policy the role is later given, it can do no more than this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from deployments.aws.arns import Arns, document, statement
from deployments.aws.config import AwsConfig
from deployments.aws.firehose_policies import delivery_statements
from deployments.aws.policies import storage_location
from deployments.lambda_handler.contract import PREDICTIONS_PREFIX


def execution_policy(
    config: AwsConfig, partition: str, account_id: str, environment: Mapping[str, str]
) -> dict[str, Any]:
    """The function's inline policy: its log streams, its bundle, its prediction prefix, its stream."""
    arns = Arns(config, partition, account_id)
    location = storage_location(environment.get("STORAGE_URL", ""))
    predictions = None
    if location is not None:
        prefix = "/".join(part for part in (location[1], PREDICTIONS_PREFIX) if part) + "/"
        predictions = statement("WritePredictionLogsToS3", ["s3:PutObject"], arns.objects(prefix))
    stream = environment.get("FIREHOSE_STREAM")
    streams = arns.log_group(config.log_group)[1]
    return document(
        statement("WriteOwnLogStreams", ["logs:CreateLogStream", "logs:PutLogEvents"], streams),
        predictions,
        # the function's artifacts (model bundle inside): reads only, nothing else in the bucket
        statement(
            "ReadOwnBundle",
            ["s3:GetObject"],
            arns.objects(config.key("lambda", config.function_name) + "/"),
        ),
        statement(
            "WritePredictionLogsToFirehose",
            ["firehose:PutRecordBatch"],
            Arns(replace(config, firehose_stream=stream), partition, account_id).delivery_stream,
        )
        if stream
        else None,
        statement(
            "DecryptItsEnvironmentAndBundleAndEncryptLogsWithTheConfiguredKey",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            config.kms_key_arn,
        )
        if config.kms_key_arn
        else None,
        statement(
            "SendTracesXRayHasNoResourceLevelPermissionsSoAwsRequiresStar",
            ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "*",
        )
        if config.tracing == "Active"
        else None,
        *_network_interfaces(arns),
    )


def _network_interfaces(arns: Arns) -> list[dict[str, Any] | None]:
    """Lambda's network-interface calls for a function in a VPC (nothing outside one).

    Creation names the subnets and security groups. Deletion and address changes have no
    resource narrower than the account's interfaces (Lambda's guide asks for `*/*` there, as
    it checks the role with a request for no particular interface), so they are held to
    interfaces in the function's subnets by `ec2:Subnet`; `IfExists` lets that check through.
    """
    config = arns.config
    if not config.subnet_ids:
        return []
    subnets = [arns.ec2(f"subnet/{subnet}") for subnet in config.subnet_ids]
    return [
        statement(
            "CreateNetworkInterfacesOnlyInTheConfiguredSubnetsAndSecurityGroups",
            ["ec2:CreateNetworkInterface"],
            [
                *subnets,
                *(arns.ec2(f"security-group/{group}") for group in config.security_group_ids),
                arns.ec2("network-interface/*"),
            ],
        ),
        statement(
            "DeleteAndAddressNetworkInterfacesOnlyInTheConfiguredSubnets",
            ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
            arns.ec2("*/*"),
            condition={"ArnEqualsIfExists": {"ec2:Subnet": subnets}},
        ),
        statement(
            "DescribeNetworkInterfacesSupportsNoResourceLevelPermissionsSoAwsRequiresStar",
            ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
            "*",
        ),
    ]


def boundary_policy(
    config: AwsConfig, partition: str, account_id: str, environment: Mapping[str, str]
) -> dict[str, Any]:
    """The permissions boundary of the execution role and the Firehose delivery role (with a stream).

    No more than the function needs, as rendered today, and what Firehose needs to deliver.
    """
    policy = execution_policy(config, partition, account_id, environment)
    if config.firehose_stream:
        policy["Statement"] += [item for item in delivery_statements(config, partition) if item]
    return policy


def trust_policy(account_id: str) -> dict[str, Any]:
    """The execution role's trust: only the Lambda service, and only for functions of this account.

    `aws:SourceAccount` stops another account's function from being given this role.
    `aws:SourceArn` is left out: Lambda does not document it for assuming an execution role,
    and a trust condition Lambda does not send would stop every invocation.
    """
    return document(
        {
            "Sid": "LambdaServiceAssumesTheExecutionRoleForThisAccountOnly",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    )
