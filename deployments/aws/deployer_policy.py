"""The permissions a person or the CD role needs to run the deployer, and nothing more.

Named actions on the deployment's own resources. The execution role may be created or changed
only under its permissions boundary, which the deployer may create but never remove or
rewrite. The HTTP API may be created only with the project's tag and managed only while it
carries that tag (or, rendered with its id, only that API). A `*` resource stands only where
AWS offers nothing narrower, and that statement's Sid says so.
"""

from __future__ import annotations

from typing import Any

from deployments.aws.arns import Arns, document, statement
from deployments.aws.config import PROJECT_TAG_KEY, AwsConfig


def deployer_policy(
    config: AwsConfig, partition: str, account_id: str, api_id: str | None = None
) -> dict[str, Any]:
    """The deployer's policy; with `api_id`, the API statements name that one API instead of its tag."""
    arns = Arns(config, partition, account_id)
    return document(
        *_storage(arns),
        *_identity(arns),
        *_function(arns),
        *_http_api(arns, api_id),
        *_firehose(arns),
        statement(
            "EnsureAndReadTheFunctionsAlarms",
            ["cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms"],
            f"arn:{partition}:cloudwatch:{config.region}:{account_id}:alarm:{config.function_name}-*",
        ),
        statement(
            "EncryptArtifactsAndTheFunctionEnvironmentWithTheConfiguredKey",
            ["kms:DescribeKey", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"],
            config.kms_key_arn,
        )
        if config.kms_key_arn
        else None,
        statement(
            "LambdaChecksTheVpcOfTheCallerDescribeCallsSupportNoResourceLevelPermissionsSoAwsRequiresStar",
            ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
            "*",
        )
        if config.subnet_ids
        else None,
    )


def _storage(arns: Arns) -> list[dict[str, Any]]:
    config = arns.config
    return [
        statement(
            "EnsureArtifactBucketSettings",
            [
                "s3:CreateBucket",
                "s3:ListBucket",
                "s3:GetBucketPublicAccessBlock",
                "s3:PutBucketPublicAccessBlock",
                "s3:GetEncryptionConfiguration",
                "s3:PutEncryptionConfiguration",
                "s3:GetBucketVersioning",
                "s3:PutBucketVersioning",
                "s3:GetBucketPolicy",
                "s3:PutBucketPolicy",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            arns.bucket,
        ),
        statement(
            "UploadAndReadArtifactsUnderTheirPrefixOnlyLambdaReadsCodeAsTheCaller",
            ["s3:PutObject", "s3:GetObject"],
            arns.objects(config.key("lambda") + "/"),
        ),
        statement(
            "EnsureTheFunctionAndApiLogGroupsAndTheirRetention",
            ["logs:CreateLogGroup", "logs:PutRetentionPolicy"],
            [*arns.log_group(config.log_group), *arns.log_group(config.access_log_group)],
        ),
        statement(
            "LogDeliveryAndLogGroupListingSupportNoResourceLevelPermissionsSoAwsRequiresStar",
            [
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "*",
        ),
    ]


def _identity(arns: Arns) -> list[dict[str, Any]]:
    """The execution role, always under the boundary; the boundary, created once and never loosened."""
    under_boundary = {"ArnEquals": {"iam:PermissionsBoundary": arns.boundary}}
    return [
        statement("ReadTheExecutionRoleAndItsInlinePolicy", ["iam:GetRole", "iam:GetRolePolicy"], arns.role),
        statement(
            "CreateOnceAndReadTheRolesPermissionsBoundary",
            ["iam:CreatePolicy", "iam:GetPolicy", "iam:GetPolicyVersion"],
            arns.boundary,
        ),
        statement(
            "CreateAndChangeTheExecutionRoleOnlyUnderItsBoundary",
            [
                "iam:CreateRole",
                "iam:PutRolePermissionsBoundary",
                "iam:PutRolePolicy",
                "iam:UpdateAssumeRolePolicy",
            ],
            arns.role,
            condition=under_boundary,
        ),
        statement(
            "NeverTakeTheBoundaryOffTheRole",
            ["iam:DeleteRolePermissionsBoundary"],
            arns.role,
            effect="Deny",
        ),
        statement(
            "NeverRewriteOrDeleteTheBoundary",
            [
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:DeletePolicy",
            ],
            arns.boundary,
            effect="Deny",
        ),
        statement(
            "PassExecutionRoleToLambdaOnly",
            ["iam:PassRole"],
            arns.role,
            condition={"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
        ),
    ]


def _function(arns: Arns) -> list[dict[str, Any]]:
    config = arns.config
    function = [arns.function, f"{arns.function}:*"]
    network: dict[str, Any] = {}
    if config.subnet_ids:
        network = {
            "lambda:SubnetIds": list(config.subnet_ids),
            "lambda:SecurityGroupIds": list(config.security_group_ids),
        }
    configuration = {"ForAllValues:StringLike": {"lambda:Layer": [f"{arns.layer}:*"]}}
    if network:
        configuration["ForAllValues:StringEquals"] = network
    return [
        statement(
            "ManageTheFunctionItsVersionsAliasConcurrencyAndInvokeForSmokeTests",
            [
                "lambda:GetFunction",
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode",
                "lambda:PublishVersion",
                "lambda:ListVersionsByFunction",
                "lambda:GetAlias",
                "lambda:CreateAlias",
                "lambda:UpdateAlias",
                "lambda:GetPolicy",
                "lambda:InvokeFunction",
                "lambda:GetFunctionConcurrency",
                "lambda:PutFunctionConcurrency",
                "lambda:DeleteFunctionConcurrency",
                "lambda:GetProvisionedConcurrencyConfig",
                "lambda:PutProvisionedConcurrencyConfig",
                "lambda:DeleteProvisionedConcurrencyConfig",
            ],
            function,
        ),
        statement(
            "CreateAndConfigureTheFunctionOnlyWithItsOwnLayerAndNetwork",
            ["lambda:CreateFunction", "lambda:UpdateFunctionConfiguration"],
            function,
            condition=configuration,
        ),
        statement(
            "LetOnlyApiGatewayInvokeTheFunction",
            ["lambda:AddPermission"],
            function,
            condition={"StringEquals": {"lambda:Principal": "apigateway.amazonaws.com"}},
        ),
        statement(
            "PublishAndAttachTheDependencyLayer",
            ["lambda:PublishLayerVersion", "lambda:GetLayerVersion"],
            [arns.layer, f"{arns.layer}:*"],
        ),
        statement(
            "ListLayerVersionsSupportsNoResourceLevelPermissionsSoAwsRequiresStar",
            ["lambda:ListLayerVersions"],
            "*",
        ),
    ]


def _http_api(arns: Arns, api_id: str | None) -> list[dict[str, Any]]:
    """Listing finds the API; creating needs the tag; the rest needs the tag, or names the API's id."""
    tag = arns.config.function_name
    own: dict[str, Any] | None = {"StringEquals": {f"aws:ResourceTag/{PROJECT_TAG_KEY}": tag}}
    api, resources = "/*", [arns.apis("/*")]
    if api_id:
        own, api = None, f"/{api_id}"
        resources = [arns.apis(api), arns.apis(f"{api}/*")]
    return [
        statement("ListTheHttpApisOfTheRegionToFindTheProjectsOwn", ["apigateway:GET"], arns.apis()),
        statement(
            "CreateTheHttpApiOnlyWithTheProjectTag",
            ["apigateway:POST"],
            arns.apis(),
            condition={
                "StringEquals": {f"aws:RequestTag/{PROJECT_TAG_KEY}": tag},
                "ForAllValues:StringEquals": {"aws:TagKeys": [PROJECT_TAG_KEY]},
            },
        ),
        statement(
            "ManageOnlyTheProjectsOwnHttpApi",
            ["apigateway:GET", "apigateway:POST", "apigateway:PATCH"],
            resources,
            condition=own,
        ),
        statement(
            "RemoveTheCorsSettingsOfTheProjectsOwnHttpApi",
            ["apigateway:DELETE"],
            arns.apis(f"{api}/cors"),
            condition=own,
        ),
    ]


def _firehose(arns: Arns) -> list[dict[str, Any]]:
    """With a stream: create and update it, and its delivery role under the same boundary."""
    if not arns.config.firehose_stream:
        return []
    return [
        statement(
            "EnsureTheDeliveryStreamOfThePredictionRecords",
            [
                "firehose:CreateDeliveryStream",
                "firehose:DescribeDeliveryStream",
                "firehose:UpdateDestination",
                "firehose:TagDeliveryStream",
            ],
            arns.delivery_stream,
        ),
        statement(
            "ReadTheFirehoseDeliveryRoleAndItsInlinePolicy",
            ["iam:GetRole", "iam:GetRolePolicy"],
            arns.firehose_role,
        ),
        statement(
            "CreateAndChangeTheFirehoseDeliveryRoleOnlyUnderTheBoundary",
            [
                "iam:CreateRole",
                "iam:PutRolePermissionsBoundary",
                "iam:PutRolePolicy",
                "iam:UpdateAssumeRolePolicy",
            ],
            arns.firehose_role,
            condition={"ArnEquals": {"iam:PermissionsBoundary": arns.boundary}},
        ),
        statement(
            "TagTheFirehoseDeliveryRoleOnlyWithTheProjectTag",
            ["iam:TagRole"],
            arns.firehose_role,
            condition={
                "StringEquals": {f"aws:RequestTag/{PROJECT_TAG_KEY}": arns.config.function_name},
                "ForAllValues:StringEquals": {"aws:TagKeys": [PROJECT_TAG_KEY]},
            },
        ),
        statement(
            "NeverTakeTheBoundaryOffTheFirehoseDeliveryRole",
            ["iam:DeleteRolePermissionsBoundary"],
            arns.firehose_role,
            effect="Deny",
        ),
        statement(
            "PassTheDeliveryRoleToFirehoseOnly",
            ["iam:PassRole"],
            arns.firehose_role,
            condition={"StringEquals": {"iam:PassedToService": "firehose.amazonaws.com"}},
        ),
    ]
