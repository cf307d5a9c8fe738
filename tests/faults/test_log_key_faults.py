"""No prediction-log record overwrites another on S3 (a moto server on 127.0.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from deployments.lambda_package.function_process import http_event
from tests.support.handler import load_handler

pytestmark = pytest.mark.integration
BUCKET = "loopml-keys"


def test_a_repeated_request_id_is_refused_and_the_first_record_stays(
    moto_endpoint: str, ames_bundle: Path, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    app = load_handler(ames_bundle, tmp_path, STORAGE_URL=f"s3://{BUCKET}/prod")
    example = json.loads((ames_bundle / "schema.json").read_text())["example"]
    first = app.handler(http_event("POST", "/predict", json.dumps(example), request_id="repeat"))
    assert first["statusCode"] == 200
    [key] = [
        item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="prod/predictions/")["Contents"]
    ]
    original = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    changed = json.dumps({**example, "gr_liv_area": 999})
    again = app.handler(http_event("POST", "/predict", changed, request_id="repeat"))
    assert again["statusCode"] == 409
    assert "already used" in json.loads(again["body"])["error"]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == original
    dotted = app.handler(http_event("POST", "/predict", json.dumps(example), request_id=".."))
    assert dotted["statusCode"] == 200
    assert not [key for key in _keys(s3) if key.rsplit("/", 1)[-1].startswith(".")]


def _keys(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="prod/predictions/")["Contents"]]
