"""The AWS deployer's least privilege under operator mistakes, against a real moto server.

A same-named API that is someone else's, a role made before it had a boundary, settings that
would need more than the boundary allows, and a deploy through plain HTTP to a TLS-only
bucket: each either heals on the next deploy or stops before changing anything, with one
message naming the fix. moto does not evaluate IAM policies, so what AWS would refuse is
shown by the documents the deployer puts in place, never by a refused call.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from deployments.aws.bucket import TLS_ONLY_SID, ensure_bucket
from deployments.aws.config import PROJECT_TAG_KEY, AwsClients, AwsConfig, DeployError, DeployRefusedError
from deployments.aws.deployer import AwsDeployer
from deployments.common.deploy_result import DeploymentResult
from deployments.lambda_handler.contract import ROUTE_KEYS
from deployments.lambda_package.function_artifact import Artifact, build_function_zip
from tests.conftest import PROJECT_ROOT
from tests.support.aws_runner import LocalVersionRunner, small_layer_zip
from tests.support.moto_server import FAKE_CREDENTIALS, isolated_aws_files

pytestmark = pytest.mark.integration

REGION = "us-east-1"
PREFIX = "mlops"


@dataclass(frozen=True)
class Setup:
    """What every deploy of this module needs: the artifacts and the environment of the function."""

    function_zip: Artifact
    layer_zip: Artifact
    example: dict[str, Any]
    local_layers: list[Path]
    child_environment: dict[str, str]
    root: Path


@pytest.fixture(scope="module")
def setup(
    moto_endpoint: str,
    ames_bundle: Path,
    local_layers: list[Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Setup:
    root = tmp_path_factory.mktemp("privilege")
    schema = json.loads((ames_bundle / "schema.json").read_text(encoding="utf-8"))
    environment = {"AWS_ENDPOINT_URL": moto_endpoint, **FAKE_CREDENTIALS, **isolated_aws_files(root)}
    return Setup(
        build_function_zip(ames_bundle, root / "function.zip"),
        small_layer_zip(root),
        schema["example"],
        local_layers,
        environment,
        root,
    )


@pytest.fixture
def session(moto_endpoint: str) -> boto3.Session:
    del moto_endpoint  # the AWS variables point at it
    return boto3.Session(region_name=REGION)


def _config(tag: str, **overrides: Any) -> AwsConfig:
    settings: dict[str, Any] = {"bucket_tls_only": False, **overrides}
    return AwsConfig(
        region=REGION, bucket=f"privilege-{tag}", function_name=f"privilege-{tag}", prefix=PREFIX, **settings
    )


@pytest.fixture
def deploy(setup: Setup, session: boto3.Session) -> Iterator[Any]:
    runners: list[LocalVersionRunner] = []

    def run(config: AwsConfig) -> DeploymentResult:
        work_dir = setup.root / f"{config.function_name}-{len(runners)}"
        work_dir.mkdir()
        runner = LocalVersionRunner(
            session.client("lambda"),
            session.client("s3"),
            config.function_name,
            work_dir,
            setup.local_layers,
            setup.child_environment,
        )
        runners.append(runner)
        deployer = AwsDeployer(config, session, runner, model_name="ames-test")
        return deployer.deploy(
            setup.function_zip,
            setup.example,
            "1",
            layer_zip=setup.layer_zip,
            environment={"STORAGE_URL": f"s3://{config.bucket}/{PREFIX}"},
        )

    yield run
    for runner in runners:
        runner.close()


def _exists(call: Any, **arguments: Any) -> bool:
    try:
        call(**arguments)
    except ClientError:
        return False
    return True


def test_an_api_of_the_same_name_without_the_tag_is_never_adopted(
    session: boto3.Session, deploy: Any
) -> None:
    config = _config("foreign")
    apigw, iam, lambda_, s3 = (session.client(name) for name in ("apigatewayv2", "iam", "lambda", "s3"))
    foreign = apigw.create_api(Name=config.api_name, ProtocolType="HTTP", Tags={"team": "payments"})

    with pytest.raises(DeployRefusedError) as refused:
        deploy(config)

    message = str(refused.value)
    assert f"HTTP API {foreign['ApiId']} is named {config.api_name} but lacks the tag" in message
    assert f"--tags {PROJECT_TAG_KEY}={config.function_name}" in message
    assert "checking the HTTP API" not in message  # one line, the fix, no step wrapper
    # nothing was created or changed: the check runs before the first change
    assert not _exists(s3.head_bucket, Bucket=config.bucket)
    assert not _exists(iam.get_role, RoleName=config.role_name)
    assert not _exists(lambda_.get_function, FunctionName=config.function_name)
    assert apigw.get_routes(ApiId=foreign["ApiId"])["Items"] == []
    assert apigw.get_integrations(ApiId=foreign["ApiId"])["Items"] == []
    assert apigw.get_api(ApiId=foreign["ApiId"])["Tags"] == {"team": "payments"}

    # The fix the message names: the owner tags it, and the next deploy takes it on.
    apigw.tag_resource(
        ResourceArn=f"arn:aws:apigateway:{REGION}::/apis/{foreign['ApiId']}",
        Tags={PROJECT_TAG_KEY: config.function_name},
    )
    result = deploy(config)
    assert result.api_id == foreign["ApiId"]
    assert len(apigw.get_routes(ApiId=foreign["ApiId"])["Items"]) == len(ROUTE_KEYS)


def test_a_role_made_before_the_boundary_gets_it_on_the_next_deploy(
    session: boto3.Session, deploy: Any
) -> None:
    config = _config("legacy")
    iam = session.client("iam")
    old_trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=config.role_name, AssumeRolePolicyDocument=json.dumps(old_trust))

    result = deploy(config)

    role = iam.get_role(RoleName=config.role_name)["Role"]
    account = session.client("sts").get_caller_identity()["Account"]
    boundary = f"arn:aws:iam::{account}:policy/{config.boundary_name}"
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    [statement] = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": account}}
    assert f"permissions boundary {config.boundary_name}" in result.changes
    assert f"permissions boundary of {config.role_name}" in result.changes
    assert f"trust policy of {config.role_name}" in result.changes
    again = deploy(config)
    assert not again.changed, again.changes


def _policy_cli(config: AwsConfig, root: Path, kind: str, **settings: str) -> dict[str, Any]:
    """The real command, as an administrator runs it with the deployment's settings."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("MLOPS_")}
    environment |= {
        "MLOPS_TARGET": "aws",
        "MLOPS_HOME": str(root / "home"),
        "MLOPS_STORAGE_URL": f"s3://{config.bucket}/{PREFIX}",
        "MLOPS_AWS_REGION": REGION,
        "MLOPS_LAMBDA_FUNCTION_NAME": config.function_name,
        "PYTHONPATH": str(PROJECT_ROOT),
        **settings,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "deployments.aws.policy_cli", kind],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return dict(json.loads(completed.stdout))


def test_a_setting_the_boundary_does_not_cover_stops_the_deploy_until_an_administrator_widens_it(
    session: boto3.Session, deploy: Any, setup: Setup
) -> None:
    config = _config("widen")
    lambda_, iam = session.client("lambda"), session.client("iam")
    deploy(config)
    inline = {"RoleName": config.role_name, "PolicyName": f"{config.function_name}-execution"}
    role_policy = iam.get_role_policy(**inline)
    traced = replace(config, tracing="Active")

    with pytest.raises(DeployRefusedError) as refused:
        deploy(traced)

    message = str(refused.value)
    assert "the permissions boundary arn:aws:iam::" in message
    assert "python -m deployments.aws.policy_cli boundary > boundary.json" in message
    assert "aws iam create-policy-version" in message
    function = lambda_.get_function_configuration(FunctionName=config.function_name)
    assert function["TracingConfig"]["Mode"] == "PassThrough"  # nothing changed
    assert iam.get_role_policy(**inline)["PolicyDocument"] == role_policy["PolicyDocument"]

    # The administrator's step, with the command the message names.
    boundary = _policy_cli(config, setup.root, "boundary", MLOPS_LAMBDA_TRACING="Active")
    arn = message.split("the permissions boundary ", 1)[1].split(" ", 1)[0]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(boundary), SetAsDefault=True)
    result = deploy(traced)
    # (moto applies TracingConfig only when a function is created, so the mode is not read back)
    assert iam.get_role_policy(**inline)["PolicyDocument"] == boundary
    assert "xray:PutTraceSegments" in json.dumps(boundary)
    assert f"inline policy {config.function_name}-execution" in result.changes


def test_a_tls_only_bucket_refuses_plain_http_and_keeps_the_statements_of_others(
    session: boto3.Session, deploy: Any
) -> None:
    config = _config("tls", bucket_tls_only=True)
    s3 = session.client("s3")
    s3.create_bucket(Bucket=config.bucket)
    theirs = {
        "Sid": "AuditorsListTheBucket",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetBucketLocation",
        "Resource": f"arn:aws:s3:::{config.bucket}",
    }
    their_policy = {"Version": "2012-10-17", "Statement": [theirs]}
    s3.put_bucket_policy(Bucket=config.bucket, Policy=json.dumps(their_policy))

    first = AwsClients.connect(config, session)
    ensure_bucket(first)
    policy = json.loads(s3.get_bucket_policy(Bucket=config.bucket)["Policy"])
    assert policy["Statement"][0] == theirs
    [ours] = [item for item in policy["Statement"] if item.get("Sid") == TLS_ONLY_SID]
    assert (ours["Effect"], ours["Principal"], ours["Action"], ours["Condition"]) == (
        "Deny",
        "*",
        "s3:*",
        {"Bool": {"aws:SecureTransport": "false"}},
    )
    assert ours["Resource"] == [f"arn:aws:s3:::{config.bucket}", f"arn:aws:s3:::{config.bucket}/*"]
    assert s3.get_bucket_versioning(Bucket=config.bucket)["Status"] == "Enabled"
    assert f"bucket {config.bucket} TLS-only policy" in first.changes
    rerun = AwsClients.connect(config, session)
    ensure_bucket(rerun)
    assert rerun.changes == []  # nothing rewritten

    # This endpoint is plain HTTP: object requests are refused now (moto refuses TLS ones too,
    # as it ignores the condition; AWS lets those through).
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=config.bucket, Key=f"{PREFIX}/probe.txt", Body=b"x")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # A deploy through it stops at its first object request, naming the step; live never moved.
    stopped = r"failed while uploading artifacts \(before moving live; it was not moved\)"
    with pytest.raises(DeployError, match=stopped):
        deploy(config)
    assert not _exists(session.client("lambda").get_function, FunctionName=config.function_name)
