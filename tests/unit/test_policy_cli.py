"""The policy printer a user runs to create the deployer and CD roles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployments.aws.policy_cli import main

ACCOUNT = "123456789012"


@pytest.fixture
def aws_settings(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://acme-ml/prod")
    monkeypatch.setenv("MLOPS_AWS_REGION", "eu-west-1")


def _printed(capsys: pytest.CaptureFixture, *argv: str) -> dict:
    main([*argv, "--account-id", ACCOUNT])
    return json.loads(capsys.readouterr().out)


def test_deployer_policy_names_this_models_resources(
    aws_settings: None, capsys: pytest.CaptureFixture
) -> None:
    document = _printed(capsys, "deployer", "--model", "ames-price")
    resources = json.dumps([statement["Resource"] for statement in document["Statement"]])
    assert "arn:aws:s3:::acme-ml" in resources
    assert f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:ames-price-serving" in resources
    assert f"arn:aws:cloudwatch:eu-west-1:{ACCOUNT}:alarm:ames-price-serving-*" in resources
    assert "${" not in json.dumps(document)


def test_github_trust_is_limited_to_one_repository_environment(
    aws_settings: None, capsys: pytest.CaptureFixture
) -> None:
    document = _printed(capsys, "github-trust", "--repository", "acme/loopml", "--environment", "prod")
    [statement] = document["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
    assert statement["Principal"] == {"Federated": provider}
    assert statement["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:acme/loopml:environment:prod",
    }


def test_missing_repository_or_target_is_one_clear_error(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["deployer", "--account-id", ACCOUNT])
    assert exit_info.value.code != 0
    assert "set MLOPS_TARGET=aws" in capsys.readouterr().err
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://acme-ml/prod")
    monkeypatch.setenv("MLOPS_AWS_REGION", "eu-west-1")
    with pytest.raises(SystemExit):
        main(["github-trust", "--account-id", ACCOUNT])
    assert "github-trust needs --repository owner/name" in capsys.readouterr().err


def _actions(document: dict) -> dict[str, dict]:
    return {action: statement for statement in document["Statement"] for action in statement["Action"]}


def test_the_deployer_changes_the_role_only_under_its_boundary_and_never_loosens_it(
    aws_settings: None, capsys: pytest.CaptureFixture
) -> None:
    granted = _actions(_printed(capsys, "deployer", "--model", "ames-price"))
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/ames-price-serving-boundary"
    for action in (
        "iam:CreateRole",
        "iam:PutRolePolicy",
        "iam:PutRolePermissionsBoundary",
        "iam:UpdateAssumeRolePolicy",
    ):
        assert granted[action]["Condition"] == {"ArnEquals": {"iam:PermissionsBoundary": boundary}}, action
    for action in (
        "iam:DeleteRolePermissionsBoundary",
        "iam:CreatePolicyVersion",
        "iam:SetDefaultPolicyVersion",
    ):
        assert granted[action]["Effect"] == "Deny", action
    assert granted["iam:DeletePolicy"]["Resource"] == boundary
    assert "iam:AttachRolePolicy" not in granted


def test_the_deployer_manages_only_the_api_with_its_tag_or_its_id(
    aws_settings: None, capsys: pytest.CaptureFixture
) -> None:
    tagged = [s for s in _printed(capsys, "deployer")["Statement"] if s["Sid"].endswith("HttpApi")]
    tag = {"aws:ResourceTag/loopml:function": "ames-price-serving"}
    assert [(s["Sid"], s["Resource"], s["Condition"]["StringEquals"]) for s in tagged] == [
        ("ManageOnlyTheProjectsOwnHttpApi", "arn:aws:apigateway:eu-west-1::/apis/*", tag),
        ("RemoveTheCorsSettingsOfTheProjectsOwnHttpApi", "arn:aws:apigateway:eu-west-1::/apis/*/cors", tag),
    ]
    [create] = [
        s for s in _printed(capsys, "deployer")["Statement"] if s["Sid"].startswith("CreateTheHttpApi")
    ]
    assert create["Condition"]["StringEquals"] == {"aws:RequestTag/loopml:function": "ames-price-serving"}
    by_id = [
        s
        for s in _printed(capsys, "deployer", "--api-id", "a1b2c3d4e5")["Statement"]
        if s["Sid"].endswith("HttpApi")
    ]
    assert [(s["Resource"], "Condition" in s) for s in by_id] == [
        (
            [
                "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5",
                "arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/*",
            ],
            False,
        ),
        ("arn:aws:apigateway:eu-west-1::/apis/a1b2c3d4e5/cors", False),
    ]
    with pytest.raises(SystemExit):
        main(["deployer", "--account-id", ACCOUNT, "--api-id", "*"])
    assert "--api-id '*' is not an HTTP API id" in capsys.readouterr().err


def test_boundary_trust_and_bucket_documents(
    aws_settings: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("MLOPS_LAMBDA_SUBNET_IDS", "subnet-1")
    monkeypatch.setenv("MLOPS_LAMBDA_SECURITY_GROUP_IDS", "sg-1")
    boundary = _printed(capsys, "boundary")
    assert boundary == _printed(capsys, "execution")  # the role can do no more than its inline policy
    deletion = _actions(boundary)["ec2:DeleteNetworkInterface"]
    subnet = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:subnet/subnet-1"
    assert deletion["Condition"] == {"ArnEqualsIfExists": {"ec2:Subnet": [subnet]}}
    [trust] = _printed(capsys, "trust")["Statement"]
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    [tls] = _printed(capsys, "bucket")["Statement"]
    assert (tls["Effect"], tls["Resource"], tls["Condition"]) == (
        "Deny",
        ["arn:aws:s3:::acme-ml", "arn:aws:s3:::acme-ml/*"],
        {"Bool": {"aws:SecureTransport": "false"}},
    )
