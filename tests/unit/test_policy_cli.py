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
