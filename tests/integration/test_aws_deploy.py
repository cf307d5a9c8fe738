"""The AWS deployer end to end against a real moto server on 127.0.0.1 (never real AWS).

moto runs no Lambda code, so every smoke test and request goes through `LocalVersionRunner`:
it reads back the zip the deployer recorded for a version, checks it against the version's
`CodeSha256`, and runs it with the local layers; its S3 prediction logs go to moto.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployments.aws.config import PROJECT_TAG_KEY, AwsConfig, DeployError
from deployments.aws.deployer import AwsDeployer
from deployments.aws.deployer_policy import deployer_policy
from deployments.aws.execution_policies import execution_policy
from deployments.aws.function import recorded_artifact
from deployments.aws.invoke import ArtifactMismatchError, fetch_version_code, run_deployed_version
from deployments.common.deploy_result import DeploymentResult
from deployments.lambda_handler.contract import LIVE_ALIAS as ALIAS
from deployments.lambda_package.function_artifact import (
    HANDLER,
    LAMBDA_RUNTIME,
    Artifact,
    build_function_zip,
)
from deployments.lambda_package.function_process import LocalFunction, http_event, unpack_artifact
from tasks.core.dataset_spec import AMES_SPEC
from tasks.core.errors import UsageError
from tests.support.aws_runner import LocalVersionRunner, small_layer_zip
from tests.support.bundles import make_bundle
from tests.support.moto_server import FAKE_CREDENTIALS, isolated_aws_files

pytestmark = pytest.mark.integration

REGION = "us-east-1"
PREFIX = "mlops"
MODEL_NAME = "ames-test"  # the name inside the `ames_bundle` metadata
ROUTES = {"POST /predict", "GET /schema", "GET /health"}


@dataclass(frozen=True)
class Artifacts:
    """Function zips of three bundles, a small layer zip and the schema's example row."""

    v1: Artifact
    v2: Artifact
    broken: Artifact
    layer: Artifact
    example: dict[str, Any]


@dataclass(frozen=True)
class Clients:
    """boto3 clients pointed at the moto server by AWS_ENDPOINT_URL."""

    s3: Any
    iam: Any
    logs: Any
    lambda_: Any
    apigw: Any
    cloudwatch: Any
    kms: Any
    ec2: Any
    account_id: str


@dataclass(frozen=True)
class Deployed:
    """The first deploy of the module, shared by the tests that only read it."""

    config: AwsConfig
    result: DeploymentResult
    artifacts: Artifacts


@pytest.fixture(scope="module")
def child_environment(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What the function process needs to reach moto, as the role's credentials would on AWS."""
    root = tmp_path_factory.mktemp("child-aws")
    return {"AWS_ENDPOINT_URL": moto_endpoint, **FAKE_CREDENTIALS, **isolated_aws_files(root)}


@pytest.fixture(scope="module")
def clients(moto_endpoint: str) -> Clients:
    session = boto3.Session(region_name=REGION)
    return Clients(
        s3=session.client("s3"),
        iam=session.client("iam"),
        logs=session.client("logs"),
        lambda_=session.client("lambda"),
        apigw=session.client("apigatewayv2"),
        cloudwatch=session.client("cloudwatch"),
        kms=session.client("kms"),
        ec2=session.client("ec2"),
        account_id=session.client("sts").get_caller_identity()["Account"],
    )


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory, ames_bundle: Path, ames_csv: Path) -> Artifacts:
    root = tmp_path_factory.mktemp("aws-artifacts")
    v2_bundle = make_bundle(
        ames_csv, AMES_SPEC, "ridge", root / "bundle-v2", model_name=MODEL_NAME, model_version="2"
    )
    broken_bundle = Path(shutil.copytree(ames_bundle, root / "bundle-broken"))
    (broken_bundle / "model.onnx").write_bytes(b"these bytes are not an ONNX model")
    schema = json.loads((ames_bundle / "schema.json").read_text(encoding="utf-8"))
    return Artifacts(
        v1=build_function_zip(ames_bundle, root / "v1.zip"),
        v2=build_function_zip(v2_bundle, root / "v2.zip"),
        broken=build_function_zip(broken_bundle, root / "broken.zip"),
        layer=small_layer_zip(root),
        example=schema["example"],
    )


def _config(tag: str, **overrides: Any) -> AwsConfig:
    """A deployment of its own; the TLS-only bucket policy is left out, as moto is reached over HTTP.

    tests/faults/test_aws_privilege_faults.py applies that policy and shows what it refuses.
    """
    return AwsConfig(
        region=REGION,
        bucket=f"loopml-{tag}",
        function_name=f"ames-{tag}",
        prefix=PREFIX,
        bucket_tls_only=False,
        **overrides,
    )


def _environment(config: AwsConfig) -> dict[str, str]:
    return {"STORAGE_URL": f"s3://{config.bucket}/{PREFIX}", "MAX_BATCH_ROWS": "100"}


def _runner(
    config: AwsConfig, work_dir: Path, layers: list[Path], environment: dict[str, str]
) -> LocalVersionRunner:
    session = boto3.Session(region_name=REGION)
    return LocalVersionRunner(
        session.client("lambda"),
        session.client("s3"),
        config.function_name,
        work_dir,
        layers,
        environment,
        log_file=work_dir / "function.log",
    )


def _deploy(
    config: AwsConfig,
    invoker: Callable[[str, dict[str, Any]], dict[str, Any]],
    artifact: Artifact,
    artifacts: Artifacts,
    model_version: str,
    *,
    sleep: Callable[[float], None] | None = None,
) -> DeploymentResult:
    options = {} if sleep is None else {"sleep": sleep}
    deployer = AwsDeployer(
        config, boto3.Session(region_name=REGION), invoker, model_name=MODEL_NAME, **options
    )
    return deployer.deploy(
        artifact,
        artifacts.example,
        model_version,
        layer_zip=artifacts.layer,
        environment=_environment(config),
    )


@pytest.fixture
def make_runner(
    tmp_path: Path, local_layers: list[Path], child_environment: dict[str, str]
) -> Iterator[Callable[[AwsConfig], LocalVersionRunner]]:
    runners: list[LocalVersionRunner] = []

    def make(config: AwsConfig) -> LocalVersionRunner:
        work_dir = tmp_path / config.function_name
        work_dir.mkdir()
        runners.append(_runner(config, work_dir, local_layers, child_environment))
        return runners[-1]

    yield make
    for runner in runners:
        runner.close()


@pytest.fixture(scope="module")
def first(
    artifacts: Artifacts,
    local_layers: list[Path],
    child_environment: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    config = _config("first")
    with _runner(config, tmp_path_factory.mktemp("first"), local_layers, child_environment) as runner:
        yield Deployed(config, _deploy(config, runner, artifacts.v1, artifacts, "1"), artifacts)


def _alias(clients: Clients, config: AwsConfig) -> dict[str, Any]:
    return clients.lambda_.get_alias(FunctionName=config.function_name, Name=ALIAS)


def _alarms(clients: Clients, config: AwsConfig) -> dict[str, str]:
    alarms = clients.cloudwatch.describe_alarms(AlarmNamePrefix=f"{config.function_name}-")["MetricAlarms"]
    return {alarm["AlarmName"]: alarm["StateValue"] for alarm in alarms}


def _weights(alias: dict[str, Any]) -> dict[str, float]:
    return (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}


def _layer_versions(clients: Clients, config: AwsConfig) -> list[dict[str, Any]]:
    return clients.lambda_.list_layer_versions(LayerName=config.layer_name)["LayerVersions"]


def _published_versions(clients: Clients, config: AwsConfig) -> list[str]:
    versions = clients.lambda_.list_versions_by_function(FunctionName=config.function_name)["Versions"]
    return [item["Version"] for item in versions if item["Version"] != "$LATEST"]


def _health(runner: LocalVersionRunner, qualifier: str) -> dict[str, Any]:
    response = runner(qualifier, http_event("GET", "/health"))
    assert response["statusCode"] == 200
    return json.loads(response["body"])


def test_first_deploy_creates_everything(first: Deployed, clients: Clients) -> None:
    config, result = first.config, first.result
    assert result.function_version == "1"
    assert result.previous_version is None
    assert result.changed
    assert not result.already_live

    blocks = clients.s3.get_public_access_block(Bucket=config.bucket)["PublicAccessBlockConfiguration"]
    assert blocks == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    encryption = clients.s3.get_bucket_encryption(Bucket=config.bucket)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert clients.s3.get_bucket_versioning(Bucket=config.bucket)["Status"] == "Enabled"
    [rule] = clients.s3.get_bucket_lifecycle_configuration(Bucket=config.bucket)["Rules"]
    assert (rule["ID"], rule["Filter"], rule["NoncurrentVersionExpiration"]) == (
        "loopml-expire-noncurrent-versions",
        {"Prefix": f"{PREFIX}/"},
        {"NoncurrentDays": 30},
    )

    role = clients.iam.get_role(RoleName=config.role_name)["Role"]
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [(s["Principal"], s["Action"], s["Condition"]) for s in trust] == [
        (
            {"Service": "lambda.amazonaws.com"},
            "sts:AssumeRole",
            {"StringEquals": {"aws:SourceAccount": clients.account_id}},
        )
    ]
    assert clients.iam.list_role_policies(RoleName=config.role_name)["PolicyNames"] == [
        f"{config.function_name}-execution"
    ]
    boundary_arn = f"arn:aws:iam::{clients.account_id}:policy/{config.function_name}-boundary"
    assert role["PermissionsBoundary"] == {
        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
        "PermissionsBoundaryArn": boundary_arn,
    }
    boundary = clients.iam.get_policy(PolicyArn=boundary_arn)["Policy"]
    [boundary_version] = clients.iam.list_policy_versions(PolicyArn=boundary_arn)["Versions"]
    inline = clients.iam.get_role_policy(
        RoleName=config.role_name, PolicyName=f"{config.function_name}-execution"
    )
    assert boundary_version["VersionId"] == boundary["DefaultVersionId"]
    assert boundary_version["Document"] == inline["PolicyDocument"]  # the role can do no more than today

    for name in (config.log_group, config.access_log_group):
        groups = clients.logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
        assert [(group["logGroupName"], group.get("retentionInDays")) for group in groups] == [(name, 30)]

    layers = _layer_versions(clients, config)
    assert [layer["LayerVersionArn"] for layer in layers] == [result.layer_version_arn]
    assert layers[0]["CompatibleRuntimes"] == [LAMBDA_RUNTIME]
    assert json.loads(layers[0]["Description"]) == {"sha256": first.artifacts.layer.sha256}

    function = clients.lambda_.get_function_configuration(FunctionName=config.function_name, Qualifier="1")
    assert (function["Runtime"], function["Handler"], function["Architectures"]) == (
        LAMBDA_RUNTIME,
        HANDLER,
        ["x86_64"],
    )
    assert function["Role"] == role["Arn"]
    assert [layer["Arn"] for layer in function["Layers"]] == [result.layer_version_arn]
    assert function["Environment"]["Variables"] == _environment(config)
    assert function["CodeSha256"] == first.artifacts.v1.code_sha256 == result.code_sha256
    assert _published_versions(clients, config) == ["1"]
    alias = _alias(clients, config)
    assert alias["FunctionVersion"] == "1"
    assert not _weights(alias)

    record = recorded_artifact(clients.lambda_, config.function_name, "1")
    key = f"{PREFIX}/lambda/{config.function_name}/function-{first.artifacts.v1.sha256[:16]}.zip"
    assert (record.model_version, record.uri, record.sha256) == (
        "1",
        f"s3://{config.bucket}/{key}",
        first.artifacts.v1.sha256,
    )
    assert result.artifact_uri == record.uri
    layer_key = f"{PREFIX}/lambda/layers/{config.layer_name}-{first.artifacts.layer.sha256[:16]}.zip"
    assert (
        clients.s3.head_object(Bucket=config.bucket, Key=layer_key)["ContentLength"]
        == first.artifacts.layer.size
    )

    apis = [api for api in clients.apigw.get_apis()["Items"] if api["Name"] == config.api_name]
    assert [(api["ApiId"], api["ApiEndpoint"], api["ProtocolType"], api["Tags"]) for api in apis] == [
        (result.api_id, result.endpoint, "HTTP", {PROJECT_TAG_KEY: config.function_name})
    ]
    integrations = clients.apigw.get_integrations(ApiId=result.api_id)["Items"]
    assert [(i["IntegrationType"], i["IntegrationUri"], i["PayloadFormatVersion"]) for i in integrations] == [
        ("AWS_PROXY", alias["AliasArn"], "2.0")
    ]
    routes = clients.apigw.get_routes(ApiId=result.api_id)["Items"]
    assert {route["RouteKey"]: route["Target"] for route in routes} == dict.fromkeys(
        ROUTES, f"integrations/{integrations[0]['IntegrationId']}"
    )
    assert {route["AuthorizationType"] for route in routes} == {"AWS_IAM"}  # SigV4 unless told otherwise
    stages = clients.apigw.get_stages(ApiId=result.api_id)["Items"]
    assert [(stage["StageName"], stage["AutoDeploy"]) for stage in stages] == [("$default", True)]
    throttling = {"ThrottlingRateLimit": 100.0, "ThrottlingBurstLimit": 200}
    assert stages[0]["DefaultRouteSettings"] == throttling
    access_logs = stages[0]["AccessLogSettings"]
    assert access_logs["DestinationArn"] == (
        f"arn:aws:logs:{REGION}:{clients.account_id}:log-group:{config.access_log_group}"
    )
    assert {"requestId", "sourceIp", "routeKey", "status", "integrationError"} <= set(
        json.loads(access_logs["Format"])
    )
    assert not clients.apigw.get_api(ApiId=result.api_id).get("CorsConfiguration")
    assert _alarms(clients, config) == {
        f"{config.function_name}-server-error-rate": "OK",
        f"{config.function_name}-latency-p99": "OK",
        f"{config.function_name}-function-errors": "OK",
        f"{config.function_name}-throttles": "OK",
    }
    [latency] = clients.cloudwatch.describe_alarms(AlarmNames=[f"{config.function_name}-latency-p99"])[
        "MetricAlarms"
    ]
    assert (latency["Namespace"], latency["MetricName"], latency["ExtendedStatistic"]) == (
        "LoopML/Serving",
        "Latency",
        "p99",
    )
    assert latency["Dimensions"] == [{"Name": "ModelName", "Value": MODEL_NAME}]
    assert latency["Threshold"] == 1000.0
    assert (function["TracingConfig"]["Mode"], function.get("KMSKeyArn") or "") == ("PassThrough", "")
    assert "ReservedConcurrentExecutions" not in clients.lambda_.get_function_concurrency(
        FunctionName=config.function_name
    )

    policy = json.loads(
        clients.lambda_.get_policy(FunctionName=config.function_name, Qualifier=ALIAS)["Policy"]
    )
    grants = [(s["Sid"], s["Principal"]) for s in policy["Statement"]]
    assert (f"apigateway-{result.api_id}", {"Service": "apigateway.amazonaws.com"}) in grants


S3_PREDICTIONS = re.compile(r"^arn:aws:s3:::[a-z0-9.-]+/[^*]+/predictions/\*$")
S3_BUNDLE = re.compile(r"^arn:aws:s3:::[a-z0-9.-]+/[^*]+/lambda/[A-Za-z0-9_-]+/\*$")
LOG_STREAMS = re.compile(r"^arn:aws:logs:us-east-1:\d{12}:log-group:/aws/lambda/[A-Za-z0-9_-]+:\*$")


def _statements_items(policy: dict[str, Any], key: str) -> list[str]:
    items: list[str] = []
    for statement in policy["Statement"]:
        value = statement[key]
        items += [value] if isinstance(value, str) else value
    return items


def test_execution_policy_grants_no_wildcards(first: Deployed, clients: Clients) -> None:
    """Named actions only; a `*` only as the S3 prediction prefix or the function's log streams."""
    config = first.config
    deployed = clients.iam.get_role_policy(
        RoleName=config.role_name, PolicyName=f"{config.function_name}-execution"
    )
    deployed_policy = deployed["PolicyDocument"]
    with_firehose = execution_policy(
        config, "aws", clients.account_id, {**_environment(config), "FIREHOSE_STREAM": "ames-predictions"}
    )
    account = clients.account_id
    log_streams = f"arn:aws:logs:{REGION}:{account}:log-group:/aws/lambda/{config.function_name}:*"
    predictions = f"arn:aws:s3:::{config.bucket}/{PREFIX}/predictions/*"
    stream = f"arn:aws:firehose:{REGION}:{account}:deliverystream/ames-predictions"
    bundle = f"arn:aws:s3:::{config.bucket}/{PREFIX}/lambda/{config.function_name}/*"

    assert set(_statements_items(deployed_policy, "Resource")) == {log_streams, bundle, predictions}
    assert set(_statements_items(with_firehose, "Resource")) == {log_streams, bundle, predictions, stream}
    assert set(_statements_items(with_firehose, "Action")) == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:PutObject",
        "firehose:PutRecordBatch",
    }
    for policy in (deployed_policy, with_firehose):
        assert all(
            s["Effect"] == "Allow" and not {"NotAction", "NotResource"} & set(s) for s in policy["Statement"]
        )
        assert all("*" not in action and ":" in action for action in _statements_items(policy, "Action"))
        for resource in _statements_items(policy, "Resource"):
            assert resource != "*"
            assert (
                "*" not in resource
                or S3_PREDICTIONS.match(resource)
                or S3_BUNDLE.match(resource)
                or LOG_STREAMS.match(resource)
            ), resource

    # The deployer's own policy: named actions everywhere, and `*` only where AWS allows nothing
    # narrower, which that statement's Sid says.
    deployer = deployer_policy(config, "aws", account)
    assert all("*" not in action for action in _statements_items(deployer, "Action"))
    star = [
        s
        for s in deployer["Statement"]
        if "*" in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    ]
    assert [s["Sid"] for s in star] == [
        "LogDeliveryAndLogGroupListingSupportNoResourceLevelPermissionsSoAwsRequiresStar",
        "ListLayerVersionsSupportsNoResourceLevelPermissionsSoAwsRequiresStar",
    ]
    assert star[1]["Action"] == ["lambda:ListLayerVersions"]
    assert {action.split(":")[0] for action in star[0]["Action"]} == {"logs"}  # delivery of access logs


def test_optional_grants_name_their_resources(clients: Clients) -> None:
    """KMS, X-Ray and VPC grants appear only with their setting; `*` only where AWS allows nothing else."""
    account = clients.account_id
    key = f"arn:aws:kms:{REGION}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    config = _config(
        "options", kms_key_arn=key, tracing="Active", subnet_ids=("subnet-1",), security_group_ids=("sg-1",)
    )
    execution = execution_policy(config, "aws", account, _environment(config))
    deployer = deployer_policy(config, "aws", account)
    for policy in (execution, deployer):
        for statement in policy["Statement"]:
            resources = (
                [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
            )
            actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
            assert all("*" not in action for action in actions)
            if "*" in resources:
                assert statement["Sid"].endswith("AwsRequiresStar"), statement
            if any(action.startswith("kms:") for action in actions):
                assert resources == [key]
    ec2 = f"arn:aws:ec2:{REGION}:{account}"
    granted = {action: s["Resource"] for s in execution["Statement"] for action in s["Action"]}
    assert granted["ec2:CreateNetworkInterface"] == [
        f"{ec2}:subnet/subnet-1",
        f"{ec2}:security-group/sg-1",
        f"{ec2}:network-interface/*",
    ]
    [deletion] = [s for s in execution["Statement"] if "ec2:DeleteNetworkInterface" in s["Action"]]
    assert (deletion["Resource"], deletion["Condition"]) == (
        f"{ec2}:*/*",
        {"ArnEqualsIfExists": {"ec2:Subnet": [f"{ec2}:subnet/subnet-1"]}},
    )
    assert (granted["kms:GenerateDataKey"], granted["xray:PutTelemetryRecords"]) == (key, "*")
    plain = execution_policy(_config("options"), "aws", account, _environment(config))
    plain_actions = {action for s in plain["Statement"] for action in s["Action"]}
    assert not {action for action in plain_actions if action.split(":")[0] in {"kms", "xray", "ec2"}}
    assert "kms:CreateGrant" not in json.dumps(deployer_policy(_config("options"), "aws", account))


def test_new_champion_reuses_api_and_layer_and_rerun_changes_nothing(
    artifacts: Artifacts, clients: Clients, make_runner: Callable[[AwsConfig], LocalVersionRunner]
) -> None:
    config = _config("champion")
    runner = make_runner(config)
    first = _deploy(config, runner, artifacts.v1, artifacts, "1")
    second = _deploy(config, runner, artifacts.v2, artifacts, "2")

    assert (second.api_id, second.endpoint) == (first.api_id, first.endpoint)
    assert (second.function_version, second.previous_version) == ("2", "1")
    assert second.layer_version_arn == first.layer_version_arn
    assert not any(change.startswith("layer version") for change in second.changes)
    assert len(_layer_versions(clients, config)) == 1
    assert _alias(clients, config)["FunctionVersion"] == "2"
    assert _health(runner, ALIAS)["model_version"] == "2"
    assert recorded_artifact(clients.lambda_, config.function_name, "2").sha256 == artifacts.v2.sha256

    # the same target interface rolls back: smoke test first, then the alias; the URL stays
    deployer = AwsDeployer(config, boto3.Session(region_name=REGION), runner)
    back = deployer.rollback("1")
    assert (back.function_version, back.previous_version, back.model_version) == ("1", "2", "1")
    assert back.endpoint == first.endpoint
    assert _alias(clients, config)["FunctionVersion"] == "1"
    assert _health(runner, ALIAS)["model_version"] == "1"
    assert [(v.version, v.model_version, v.live) for v in deployer.versions()] == [
        ("1", "1", True),
        ("2", "2", False),
    ]
    with pytest.raises(UsageError, match="has no version 9; published versions: 1, 2"):
        deployer.rollback("9")
    with deployer.live() as invoke:
        assert json.loads(invoke(http_event("GET", "/health"))["body"])["model_version"] == "1"
    deployer.rollback("2")

    again = _deploy(config, runner, artifacts.v2, artifacts, "2")
    assert not again.changed, again.changes
    assert again.already_live
    assert (again.function_version, again.previous_version, again.api_id) == ("2", "2", first.api_id)
    assert _published_versions(clients, config) == ["1", "2"]
    assert len(_layer_versions(clients, config)) == 1
    assert [api["Name"] for api in clients.apigw.get_apis()["Items"]].count(config.api_name) == 1
    assert len(clients.apigw.get_integrations(ApiId=first.api_id)["Items"]) == 1
    assert {route["RouteKey"] for route in clients.apigw.get_routes(ApiId=first.api_id)["Items"]} == ROUTES


def test_broken_artifact_fails_smoke_test_and_live_stays(
    artifacts: Artifacts, clients: Clients, make_runner: Callable[[AwsConfig], LocalVersionRunner]
) -> None:
    config = _config("broken")
    runner = make_runner(config)
    good = _deploy(config, runner, artifacts.v1, artifacts, "1")

    with pytest.raises(
        DeployError, match=r"smoke-testing version 2 \(before moving live; it was not moved\)"
    ) as failure:
        _deploy(config, runner, artifacts.broken, artifacts, "2")

    assert "failed to start" in str(failure.value)
    alias = _alias(clients, config)
    assert (alias["FunctionVersion"], _weights(alias)) == ("1", {})
    assert _published_versions(clients, config) == ["1", "2"]  # published, tested, never served
    assert _health(runner, ALIAS)["model_version"] == "1"
    deployer = AwsDeployer(config, boto3.Session(region_name=REGION), runner)
    with pytest.raises(DeployError, match=r"rollback to version 2 failed its smoke test; live stays on 1"):
        deployer.rollback("2")
    assert _alias(clients, config)["FunctionVersion"] == "1"
    rerun = _deploy(config, runner, artifacts.v1, artifacts, "1")
    assert (rerun.already_live, rerun.function_version, rerun.api_id) == (True, "1", good.api_id)


def test_live_code_runs_locally_and_logs_predictions_to_s3(
    first: Deployed,
    clients: Clients,
    local_layers: list[Path],
    child_environment: dict[str, str],
    tmp_path: Path,
) -> None:
    config = first.config
    record = recorded_artifact(clients.lambda_, config.function_name, ALIAS)
    # moto's Code.Location is a made-up URL; the recorded key in our bucket is the way back.
    location = clients.lambda_.get_function(FunctionName=config.function_name, Qualifier=ALIAS)["Code"][
        "Location"
    ]
    assert config.bucket not in location
    assert record.bucket == config.bucket

    request_id = "req-local-1"
    body = json.dumps({"instances": [first.artifacts.example]})
    with run_deployed_version(
        clients.lambda_, clients.s3, config.function_name, ALIAS, tmp_path, local_layers, child_environment
    ) as function:
        response = function.invoke(http_event("POST", "/predict", body, request_id=request_id))
    answer = json.loads(response["body"])
    assert response["statusCode"] == 200, answer
    assert (answer["model_name"], answer["model_version"], len(answer["predictions"])) == (MODEL_NAME, "1", 1)

    listed = clients.s3.list_objects_v2(Bucket=config.bucket, Prefix=f"{PREFIX}/predictions/{MODEL_NAME}/")
    pattern = re.compile(
        rf"^{PREFIX}/predictions/{MODEL_NAME}/dt=\d{{4}}-\d{{2}}-\d{{2}}/hour=\d{{2}}/{request_id}\.jsonl$"
    )
    keys = [item["Key"] for item in listed.get("Contents", []) if pattern.match(item["Key"])]
    assert len(keys) == 1, [item["Key"] for item in listed.get("Contents", [])]
    logged = json.loads(clients.s3.get_object(Bucket=config.bucket, Key=keys[0])["Body"].read())
    assert (logged["request_id"], logged["model_version"], logged["prediction"]) == (
        request_id,
        "1",
        answer["predictions"][0],
    )

    original = clients.s3.get_object(Bucket=record.bucket, Key=record.key)["Body"].read()
    clients.s3.put_object(Bucket=record.bucket, Key=record.key, Body=b"tampered")
    try:
        with pytest.raises(ArtifactMismatchError, match="CodeSha256"):
            fetch_version_code(
                clients.lambda_, clients.s3, config.function_name, ALIAS, tmp_path / "tampered"
            )
    finally:
        clients.s3.put_object(Bucket=record.bucket, Key=record.key, Body=original)


def test_canary_deploy_sets_weights_then_moves_fully(
    artifacts: Artifacts, clients: Clients, make_runner: Callable[[AwsConfig], LocalVersionRunner]
) -> None:
    config = _config("canary", canary_weight=0.25, canary_bake_seconds=30, bake_poll_seconds=10)
    runner = make_runner(config)
    seen: list[tuple[str, str, dict[str, float]]] = []
    baked: list[tuple[float, dict[str, float]]] = []

    def clock(seconds: float) -> None:
        """The bake's waits, with where the alias pointed at each (no real time passes)."""
        baked.append((seconds, _weights(_alias(clients, config))))

    def observing_invoker(version: str, event: dict[str, Any]) -> dict[str, Any]:
        """The real runner, noting where the alias pointed at each call."""
        try:
            alias = _alias(clients, config)
            seen.append((version, alias["FunctionVersion"], _weights(alias)))
        except clients.lambda_.exceptions.ResourceNotFoundException:
            seen.append((version, "", {}))
        return runner(version, event)

    _deploy(config, observing_invoker, artifacts.v1, artifacts, "1", sleep=clock)
    assert {invoked for invoked, *_ in seen} == {"1"}  # first deploy: no canary, nothing to share with
    assert not baked
    seen.clear()

    result = _deploy(config, observing_invoker, artifacts.v2, artifacts, "2", sleep=clock)

    assert (result.function_version, result.previous_version) == ("2", "1")
    assert ("2", "1", {}) in seen  # the plain smoke test before any traffic moved
    assert ("2", "1", {"2": 0.25}) in seen  # the second smoke test during the canary
    assert (ALIAS, "1", {"2": 0.25}) in seen  # the alias itself answered during the canary
    assert "canary 2@0.25" in result.changes
    assert baked == [(10, {"2": 0.25})] * 3  # a 30 s bake, alarms checked every 10 s, all OK
    alias = _alias(clients, config)
    assert (alias["FunctionVersion"], _weights(alias)) == ("2", {})


def test_an_alarm_during_the_bake_puts_live_back_and_fails_the_deploy(
    artifacts: Artifacts, clients: Clients, make_runner: Callable[[AwsConfig], LocalVersionRunner]
) -> None:
    config = _config("bake", canary_weight=0.5, canary_bake_seconds=60, bake_poll_seconds=20)
    runner = make_runner(config)
    error_rate = f"{config.function_name}-server-error-rate"
    baked: list[dict[str, float]] = []

    def clock_with_failing_canary(seconds: float) -> None:
        """The first wait of the bake: the canary's 5xx share crosses the threshold."""
        del seconds
        baked.append(_weights(_alias(clients, config)))
        if len(baked) == 1:
            clients.cloudwatch.set_alarm_state(
                AlarmName=error_rate, StateValue="ALARM", StateReason="server errors above 5% of requests"
            )

    _deploy(config, runner, artifacts.v1, artifacts, "1")
    with pytest.raises(DeployError) as failure:
        _deploy(config, runner, artifacts.v2, artifacts, "2", sleep=clock_with_failing_canary)

    message = str(failure.value)
    assert "canary of version 2 failed, live is back on 1" in message
    assert f"{error_rate} went into ALARM during the 60 s bake at 50% of the traffic" in message
    assert baked == [{"2": 0.5}]  # the alarm was seen at the next check; the bake stopped there
    alias = _alias(clients, config)
    assert (alias["FunctionVersion"], _weights(alias)) == ("1", {})
    assert _health(runner, ALIAS)["model_version"] == "1"

    # Once the alarm clears, the same deploy bakes cleanly and moves live.
    clients.cloudwatch.set_alarm_state(AlarmName=error_rate, StateValue="OK", StateReason="recovered")
    waits: list[float] = []
    result = _deploy(config, runner, artifacts.v2, artifacts, "2", sleep=waits.append)
    assert (result.function_version, result.previous_version) == ("2", "1")
    assert waits == [20, 20, 20]
    assert _alias(clients, config)["FunctionVersion"] == "2"


def test_firehose_sink_delivers_the_same_records(
    clients: Clients,
    ames_bundle: Path,
    local_layers: list[Path],
    child_environment: dict[str, str],
    tmp_path: Path,
) -> None:
    """With FIREHOSE_STREAM set, the built function sends its records to Firehose, newline-ended."""
    firehose = boto3.client("firehose", region_name=REGION)
    clients.s3.create_bucket(Bucket="firehose-logs")
    firehose.create_delivery_stream(
        DeliveryStreamName="ames-predictions",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{clients.account_id}:role/firehose-delivery",
            "BucketARN": "arn:aws:s3:::firehose-logs",
            "Prefix": "predictions/",
        },
    )
    code = unpack_artifact(build_function_zip(ames_bundle, tmp_path / "function.zip").path, tmp_path / "code")
    environment = {**child_environment, "AWS_DEFAULT_REGION": REGION, "FIREHOSE_STREAM": "ames-predictions"}
    example = json.loads((ames_bundle / "schema.json").read_text())["example"]
    with LocalFunction(code, local_layers, environment) as function:
        body = json.dumps({"instances": [example, {**example, "neighborhood": "Atlantis"}]})
        response = function.invoke(http_event("POST", "/predict", body, request_id="firehose-1"))
        assert response["statusCode"] == 200, response["body"]
        refused = function.invoke(http_event("POST", "/predict", json.dumps({"instances": []})))
        assert refused["statusCode"] == 400
    listed = clients.s3.list_objects_v2(Bucket="firehose-logs", Prefix="predictions/")["Contents"]
    payload = b"".join(
        clients.s3.get_object(Bucket="firehose-logs", Key=item["Key"])["Body"].read() for item in listed
    )
    records = [json.loads(line) for line in payload.decode().splitlines()]
    assert [(r["request_id"], r["row"]) for r in records] == [("firehose-1", 0), ("firehose-1", 1)]
    assert records[1]["unknown_categories"] == ["neighborhood"]
    assert payload.endswith(b"\n")


def test_jwt_cors_tracing_kms_vpc_and_concurrency_are_applied_once(
    artifacts: Artifacts, clients: Clients, make_runner: Callable[[AwsConfig], LocalVersionRunner]
) -> None:
    key_arn = clients.kms.create_key(Description="loopml test key")["KeyMetadata"]["Arn"]
    vpc = clients.ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = clients.ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group = clients.ec2.create_security_group(VpcId=vpc, GroupName="loopml-fn", Description="function")[
        "GroupId"
    ]
    issuer = "https://login.example.com/"
    config = _config(
        "hardened",
        api_auth="jwt",
        jwt_issuer=issuer,
        jwt_audience=("loopml-clients",),
        throttle_rate=25.0,
        throttle_burst=50,
        cors_origins=("https://app.example.com",),
        tracing="Active",
        kms_key_arn=key_arn,
        subnet_ids=(subnet,),
        security_group_ids=(group,),
        reserved_concurrency=20,
        alarm_p99_latency_ms=250.0,
    )
    runner = make_runner(config)
    result = _deploy(config, runner, artifacts.v1, artifacts, "1")

    routes = clients.apigw.get_routes(ApiId=result.api_id)["Items"]
    assert {route["AuthorizationType"] for route in routes} == {"JWT"}
    [authorizer_id] = {route["AuthorizerId"] for route in routes}
    authorizer = clients.apigw.get_authorizer(ApiId=result.api_id, AuthorizerId=authorizer_id)
    assert (authorizer["AuthorizerType"], authorizer["IdentitySource"]) == (
        "JWT",
        ["$request.header.Authorization"],
    )
    assert authorizer["JwtConfiguration"] == {"Issuer": issuer, "Audience": ["loopml-clients"]}
    cors = clients.apigw.get_api(ApiId=result.api_id)["CorsConfiguration"]
    assert cors["AllowOrigins"] == ["https://app.example.com"]
    assert {"authorization", "content-type"} <= set(cors["AllowHeaders"])
    [stage] = clients.apigw.get_stages(ApiId=result.api_id)["Items"]
    assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": 25.0, "ThrottlingBurstLimit": 50}

    function = clients.lambda_.get_function_configuration(FunctionName=config.function_name, Qualifier="1")
    assert (function["TracingConfig"]["Mode"], function["KMSKeyArn"]) == ("Active", key_arn)
    assert (function["VpcConfig"]["SubnetIds"], function["VpcConfig"]["SecurityGroupIds"]) == (
        [subnet],
        [group],
    )
    concurrency = clients.lambda_.get_function_concurrency(FunctionName=config.function_name)
    assert concurrency["ReservedConcurrentExecutions"] == 20
    rule = clients.s3.get_bucket_encryption(Bucket=config.bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": key_arn,
    }
    [latency] = clients.cloudwatch.describe_alarms(AlarmNames=[f"{config.function_name}-latency-p99"])[
        "MetricAlarms"
    ]
    assert latency["Threshold"] == 250.0

    role_policy = clients.iam.get_role_policy(
        RoleName=config.role_name, PolicyName=f"{config.function_name}-execution"
    )["PolicyDocument"]
    granted = {
        action: statement["Resource"]
        for statement in role_policy["Statement"]
        for action in statement["Action"]
    }
    assert granted["kms:Decrypt"] == key_arn
    assert granted["xray:PutTraceSegments"] == "*"
    ec2 = f"arn:aws:ec2:{REGION}:{clients.account_id}"
    assert granted["ec2:CreateNetworkInterface"] == [
        f"{ec2}:subnet/{subnet}",
        f"{ec2}:security-group/{group}",
        f"{ec2}:network-interface/*",
    ]

    again = _deploy(config, runner, artifacts.v1, artifacts, "1")
    assert not again.changed, again.changes
    assert len(clients.apigw.get_routes(ApiId=result.api_id)["Items"]) == len(ROUTES)

    # Opening the API is a choice that has to be made; the next deploy applies it.
    opened = replace(config, api_auth="none", cors_origins=())
    changed = _deploy(opened, runner, artifacts.v1, artifacts, "1")
    routes = clients.apigw.get_routes(ApiId=result.api_id)["Items"]
    assert {route["AuthorizationType"] for route in routes} == {"NONE"}
    assert not clients.apigw.get_api(ApiId=result.api_id).get("CorsConfiguration")
    assert "api cors" in changed.changes
