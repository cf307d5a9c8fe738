"""Prediction logs on S3 (a moto server on 127.0.0.1): the handler writes, the monitor's reader reads."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest

from deployments.lambda_handler.contract import ServingSchema
from monitoring.logs.compaction import compact_hour
from monitoring.logs.reader import LogReader
from monitoring.logs.window import Window
from tests.support.handler import load_handler
from tests.support.traffic import instances_from_reference, send

pytestmark = pytest.mark.integration
BUCKET = "loopml-logs"
MODEL = "ames-test"


@pytest.fixture(scope="module")
def s3(moto_endpoint: str):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def test_logs_written_to_s3_are_read_back_and_compacted(s3, ames_bundle: Path, tmp_path: Path) -> None:
    schema = ServingSchema.load(ames_bundle)
    app = load_handler(ames_bundle, tmp_path, STORAGE_URL=f"s3://{BUCKET}/prod")
    answers = send(app, instances_from_reference(ames_bundle, 40), per_request=2)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET, Prefix="prod/predictions/")["Contents"]]
    assert len(keys) == 20
    assert all(key.startswith(f"prod/predictions/{MODEL}/dt=") and key.endswith(".jsonl") for key in keys)
    s3.put_object(
        Bucket=BUCKET, Key=keys[0].rsplit("/", 1)[0] + "/broken.jsonl", Body=b'{"request_id": "x", "ro'
    )

    reader = LogReader(f"s3://{BUCKET}/prod", MODEL, schema)
    window = Window.last(1)
    logs = reader.read(window)
    assert len(logs.frame) == 40
    assert set(logs.frame["request_id"]) == {answer["request_id"] for answer in answers}
    assert (logs.stats.objects, logs.stats.bad_lines, logs.stats.bad_objects) == (21, 1, 1)
    quarantine = reader.quarantine(logs.stats, window)
    assert quarantine.startswith(f"s3://{BUCKET}/prod/quarantine/{MODEL}/")
    assert (
        b"truncated object"
        in s3.get_object(Bucket=BUCKET, Key=quarantine.removeprefix(f"s3://{BUCKET}/"))["Body"].read()
    )

    hour = logs.frame["timestamp"].min().to_pydatetime().replace(minute=0, second=0, microsecond=0)
    hour_window = Window(hour, hour + timedelta(hours=1))
    before = reader.read(hour_window)
    done = compact_hour(reader, hour)
    assert done is not None
    assert done.url.startswith(f"s3://{BUCKET}/prod/predictions-compacted/{MODEL}/")
    after = reader.read(hour_window)
    assert after.stats.compacted_hours == 1
    assert after.stats.objects == 0
    pd.testing.assert_frame_equal(after.frame, before.frame)


def test_report_links_on_s3_are_presigned_and_open(
    s3, mlops_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser opens a report on S3 through a presigned HTTPS (here: moto's HTTP) URL."""
    import gzip
    import urllib.request

    from evidently import Dataset, Report
    from evidently.metrics import RowCount

    from monitoring.drift.report_html import REPORT_SUFFIX, read_html, save_html
    from monitoring.publish.report_links import report_link
    from tasks.core.settings import load_settings

    monkeypatch.setenv("MLOPS_STORAGE_URL", f"s3://{BUCKET}/prod")
    settings = load_settings()
    snapshot = Report([RowCount()]).run(Dataset.from_pandas(pd.DataFrame({"x": [1.0, 2.0]})))
    url = save_html(snapshot, f"s3://{BUCKET}/prod/reports/{MODEL}/window{REPORT_SUFFIX}")
    link = report_link(settings, url)
    assert "X-Amz-Signature=" in link
    assert "X-Amz-Expires=604800" in link  # 7 days
    with urllib.request.urlopen(link, timeout=10) as response:
        headers = (response.headers["Content-Type"], response.headers["Content-Encoding"])
        assert headers == ("text/html; charset=utf-8", "gzip")  # what the browser needs to show the page
        page = gzip.decompress(response.read()).decode("utf-8")
    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert page == read_html(url)
