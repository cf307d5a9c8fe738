"""Firehose settings: AWS's buffering limits, and the deployer's grants on the stream and its role."""

from __future__ import annotations

import pytest

from deployments.aws.config import AwsConfig
from deployments.aws.deployer_policy import deployer_policy
from deployments.aws.execution_policies import boundary_policy
from deployments.aws.firehose_policies import delivery_policy

ACCOUNT = "123456789012"


def _config(**overrides: object) -> AwsConfig:
    settings: dict = {"firehose_stream": "ames", **overrides}
    return AwsConfig(region="eu-west-1", bucket="acme-ml", function_name="ames-serving", **settings)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("firehose_buffer_mib", 0, "firehose_buffer_mib must be 1-128"),
        ("firehose_buffer_mib", 129, "firehose_buffer_mib must be 1-128"),
        ("firehose_buffer_seconds", -1, "firehose_buffer_seconds must be 0-900"),
        ("firehose_buffer_seconds", 901, "firehose_buffer_seconds must be 0-900"),
    ],
)
def test_buffering_outside_what_aws_allows_is_refused(setting: str, value: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _config(**{setting: value})


def test_the_deployer_may_manage_only_that_stream_and_pass_its_role_only_to_firehose() -> None:
    config = _config(prefix="prod")
    statements = deployer_policy(config, "aws", ACCOUNT)["Statement"]
    stream = f"arn:aws:firehose:eu-west-1:{ACCOUNT}:deliverystream/ames"
    [managed] = [item for item in statements if item["Resource"] == stream]
    assert managed["Action"] == [
        "firehose:CreateDeliveryStream",
        "firehose:DescribeDeliveryStream",
        "firehose:UpdateDestination",
        "firehose:TagDeliveryStream",
    ]
    role = f"arn:aws:iam::{ACCOUNT}:role/ames-serving-firehose"
    [passing] = [
        item for item in statements if item["Action"] == ["iam:PassRole"] and item["Resource"] == role
    ]
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "firehose.amazonaws.com"}}
    assert not any(
        "firehose:" in json
        for item in deployer_policy(_config(firehose_stream=None), "aws", ACCOUNT)["Statement"]
        for json in item["Action"]
    )


def test_the_delivery_role_writes_under_its_prefixes_only_and_the_boundary_allows_it() -> None:
    config = _config(prefix="prod", kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k")
    policy = delivery_policy(config, "aws")
    resources = [item["Resource"] for item in policy["Statement"]]
    assert resources[:2] == [
        "arn:aws:s3:::acme-ml",
        ["arn:aws:s3:::acme-ml/prod/predictions/*", "arn:aws:s3:::acme-ml/prod/firehose-errors/*"],
    ]
    assert policy["Statement"][2]["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    }
    boundary = boundary_policy(config, "aws", ACCOUNT, {"STORAGE_URL": "s3://acme-ml/prod"})
    assert all(item in boundary["Statement"] for item in policy["Statement"])
