"""The Firehose sink end to end against a real moto server: the deployer makes the stream, the
deployed function sends its records, the monitor's reader counts them.

moto writes each PutRecordBatch as one object at once, uncompressed, and expands no
`!{timestamp:…}` expression (it appends `YYYY/MM/DD/HH/` to the prefix as written), so the
delivery is followed with `firehose_layout="default"`, whose keys moto writes as AWS does.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from deployments.aws.config import PROJECT_TAG_KEY, AwsConfig, DeployRefusedError
from deployments.aws.deployer import AwsDeployer
from deployments.common.deploy_result import DeploymentResult
from deployments.lambda_handler.contract import ServingSchema
from deployments.lambda_package.function_artifact import build_function_zip
from deployments.lambda_package.function_process import http_event
from flows.monitor import monitor_model
from monitoring.drift.report_html import read_html
from monitoring.labels.commands import upload_labels
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from tests.support.aws_runner import LocalVersionRunner, small_layer_zip
from tests.support.moto_server import FAKE_CREDENTIALS, isolated_aws_files
from tests.support.traffic import instances_from_reference, reference_traffic
from tests.support.training import train_champion

pytestmark = pytest.mark.integration
REGION = "us-east-1"
PREFIX = "mlops"
MODEL = "ames-test"


@pytest.fixture(scope="module")
def deploy(
    moto_endpoint: str, ames_bundle: Path, local_layers: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("firehose")
    environment = {"AWS_ENDPOINT_URL": moto_endpoint, **FAKE_CREDENTIALS, **isolated_aws_files(root)}
    layer_zip = small_layer_zip(root)
    runners: list[LocalVersionRunner] = []
    session = boto3.Session(region_name=REGION)

    def run(
        config: AwsConfig, bundle: Path = ames_bundle, model: str = MODEL
    ) -> tuple[DeploymentResult, LocalVersionRunner]:
        work_dir = root / f"run-{len(runners)}"
        work_dir.mkdir()
        runner = LocalVersionRunner(
            session.client("lambda"),
            session.client("s3"),
            config.function_name,
            work_dir,
            local_layers,
            environment,
        )
        runners.append(runner)
        function_zip = build_function_zip(bundle, work_dir / "function.zip")
        example = json.loads((bundle / "schema.json").read_text(encoding="utf-8"))["example"]
        deployer = AwsDeployer(config, session, runner, model_name=model)
        result = deployer.deploy(
            function_zip,
            example,
            "1",
            layer_zip=layer_zip,
            environment={"STORAGE_URL": f"s3://{config.bucket}/{PREFIX}"},
        )
        return result, runner

    yield run
    for runner in runners:
        runner.close()


def _config(tag: str, **overrides: Any) -> AwsConfig:
    return AwsConfig(
        region=REGION,
        bucket=f"firehose-{tag}",
        function_name=f"ames-{tag}",
        prefix=PREFIX,
        bucket_tls_only=False,
        firehose_stream=f"ames-{tag}-predictions",
        **overrides,
    )


def _destination(name: str) -> dict[str, Any]:
    stream = boto3.client("firehose", region_name=REGION).describe_delivery_stream(DeliveryStreamName=name)
    description = stream["DeliveryStreamDescription"]
    assert description["DeliveryStreamType"] == "DirectPut"
    return description["Destinations"][0]["ExtendedS3DestinationDescription"]


def test_a_deploy_creates_the_stream_and_its_role_and_a_second_changes_nothing(deploy: Any) -> None:
    config = _config("stream")
    result, _ = deploy(config)

    assert f"Firehose stream {config.firehose_stream}" in result.changes
    destination = _destination(str(config.firehose_stream))
    assert (
        destination["Prefix"]
        == f"{PREFIX}/predictions/{MODEL}/dt=!{{timestamp:yyyy-MM-dd}}/hour=!{{timestamp:HH}}/"
    )
    assert destination["ErrorOutputPrefix"].startswith(
        f"{PREFIX}/firehose-errors/!{{firehose:error-output-type}}/"
    )
    assert destination["CompressionFormat"] == "GZIP"
    assert destination["BufferingHints"] == {"SizeInMBs": 64, "IntervalInSeconds": 300}
    assert destination["BucketARN"] == f"arn:aws:s3:::{config.bucket}"
    iam = boto3.client("iam", region_name=REGION)
    role = iam.get_role(RoleName=config.firehose_role_name)["Role"]
    assert destination["RoleARN"] == role["Arn"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"].endswith(f":policy/{config.boundary_name}")
    assert {tag["Key"]: tag["Value"] for tag in role["Tags"]} == {PROJECT_TAG_KEY: config.function_name}
    statement = role["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    tags = boto3.client("firehose", region_name=REGION).list_tags_for_delivery_stream(
        DeliveryStreamName=str(config.firehose_stream)
    )["Tags"]
    assert {PROJECT_TAG_KEY: config.function_name} == {tag["Key"]: tag["Value"] for tag in tags}

    rerun, _ = deploy(config)
    assert (rerun.already_live, rerun.changes) == (True, [])

    changed, _ = deploy(_config("stream", firehose_buffer_seconds=60))
    assert f"Firehose stream {config.firehose_stream} destination (BufferingHints)" in changed.changes
    assert _destination(str(config.firehose_stream))["BufferingHints"]["IntervalInSeconds"] == 60


def test_a_stream_that_delivers_elsewhere_stops_the_deploy(deploy: Any) -> None:
    config = _config("elsewhere")
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="someone-elses")
    boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName=str(config.firehose_stream),
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/theirs",
            "BucketARN": "arn:aws:s3:::someone-elses",
        },
    )
    with pytest.raises(DeployRefusedError, match="delivers to arn:aws:s3:::someone-elses, not to the deploy"):
        deploy(config)


def test_the_functions_records_reach_the_monitor(deploy: Any, ames_bundle: Path) -> None:
    config = _config("monitor", firehose_layout="default")
    _, runner = deploy(config)
    assert _destination(str(config.firehose_stream))["Prefix"] == f"{PREFIX}/predictions/{MODEL}/"
    instances = instances_from_reference(ames_bundle, 30)
    for start in range(0, 30, 10):
        body = json.dumps({"instances": instances[start : start + 10]})
        response = runner("live", http_event("POST", "/predict", body, request_id=f"fh-{start}"))
        assert response["statusCode"] == 200, response["body"]
    s3 = boto3.client("s3", region_name=REGION)
    keys = [
        item["Key"]
        for item in s3.list_objects_v2(Bucket=config.bucket, Prefix=f"{PREFIX}/predictions/")["Contents"]
    ]
    assert all(not key.endswith(".jsonl") for key in keys), keys  # no per-request objects: Firehose only

    reader = LogReader(f"s3://{config.bucket}/{PREFIX}", MODEL, ServingSchema.load(ames_bundle))
    logs = reader.read(Window.last(1))
    assert logs.stats.rows == 30  # smoke tests left out
    assert set(logs.frame["request_id"]) == {"fh-0", "fh-10", "fh-20"}
    assert (logs.stats.bad_lines, logs.stats.bad_objects) == (0, 0)

    # a GZIP delivery with a bad line and a corrupt one, in the same partition on S3
    folder = keys[0].rsplit("/", 1)[0]
    good = [
        json.dumps({**json.loads(line), "request_id": "fh-gz"}).encode()
        for line in _records(s3, config, keys[0])
    ]
    body = gzip.compress(b"\n".join([good[0], b'{"request_id": "fh-bad", "ro', *good[1:]]) + b"\n")
    name = f"{config.firehose_stream}-1-2026-12-03-10-00-00-{uuid.uuid4()}"
    s3.put_object(Bucket=config.bucket, Key=f"{folder}/{name}.gz", Body=body)
    s3.put_object(Bucket=config.bucket, Key=f"{folder}/{name[:-4]}beef.gz", Body=body[:-20])
    logs = reader.read(Window.last(1))
    assert logs.stats.rows == 30 + len(good)
    assert (logs.stats.bad_lines, logs.stats.bad_objects) == (1, 1)
    hour = logs.frame["timestamp"].min().to_pydatetime().replace(minute=0, second=0, microsecond=0)
    assert reader.read(Window(hour, hour + timedelta(hours=2))).stats.rows == 30 + len(good)


def _records(s3: Any, config: AwsConfig, key: str) -> list[bytes]:
    return s3.get_object(Bucket=config.bucket, Key=key)["Body"].read().splitlines()


def test_a_monitor_run_on_s3_counts_the_streams_records(
    deploy: Any,
    ames_csv: Path,
    tracking_uri: str,
    mlops_env: Path,
    prefect_api: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The whole monitor flow, storage on S3: the window's rows are the records Firehose delivered."""
    model = "ames-firehose"
    home = mlops_env / "champion"
    _, bundle = train_champion(home, tracking_uri, ames_csv, model, families=["ridge"])
    config = _config("flow", firehose_layout="default")
    _, runner = deploy(config, bundle=bundle, model=model)
    instances, actuals = reference_traffic(bundle, 150, seed=8, sample="holdout.parquet")
    ids = []
    for start in range(0, 150, 30):
        body = json.dumps({"instances": instances[start : start + 30]})
        response = runner("live", http_event("POST", "/predict", body, request_id=f"flow-{start}"))
        assert response["statusCode"] == 200, response["body"]
        ids.extend(f"flow-{start}" for _ in range(30))
    storage = f"s3://{config.bucket}/{PREFIX}"
    labels = pd.DataFrame({"request_id": ids, "row": [i % 30 for i in range(150)], "actual": actuals})
    upload_labels(labels, storage, model, "regression")
    for name, value in {
        "MLOPS_HOME": str(home),
        "MLOPS_STORAGE_URL": storage,
        "MLOPS_MODEL_NAME": model,
        "MLOPS_AWS_REGION": REGION,
        "MLOPS_RETRAIN_MODE": "off",
        "MLOPS_FIREHOSE_STREAM": str(config.firehose_stream),
        "MLOPS_FIREHOSE_LAYOUT": "default",
    }.items():
        monkeypatch.setenv(name, value)

    summary = monitor_model()

    assert summary.rows == 150  # every delivered record, none from a per-request object
    assert summary.served_versions == {"1": 1.0}
    assert summary.labelled_rows == 150
    assert summary.verdict.status in {"ok", "drift"}, summary.verdict
    assert summary.report_url.startswith(f"{storage}/reports/{model}/")
    assert read_html(summary.report_url).lstrip().startswith("<!DOCTYPE html>")
    s3 = boto3.client("s3", region_name=REGION)
    listed = s3.list_objects_v2(Bucket=config.bucket, Prefix=f"{PREFIX}/predictions/{model}/")
    assert all(not item["Key"].endswith(".jsonl") for item in listed["Contents"])
