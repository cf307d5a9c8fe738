"""The dependency layer: published from S3 only when its bytes change."""

from __future__ import annotations

import json
from typing import Any

from deployments.aws.config import AwsClients, all_items
from deployments.lambda_package.function_artifact import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME, Artifact


def _layer_sha256(description: str | None) -> str | None:
    try:
        return str(json.loads(description or "")["sha256"])
    except (TypeError, ValueError, KeyError):
        return None


def latest_layer_version(aws: AwsClients) -> dict[str, Any] | None:
    """The newest published version of the layer, or None."""
    versions = all_items(aws.lambda_, "list_layer_versions", "LayerVersions", LayerName=aws.config.layer_name)
    return max(versions, key=lambda item: int(item["Version"]), default=None)


def ensure_layer(aws: AwsClients, layer_zip: Artifact, key: str) -> str:
    """Publish the layer from S3 only when its sha256 differs from the latest version's; its ARN."""
    latest = latest_layer_version(aws)
    if latest is not None and _layer_sha256(latest.get("Description")) == layer_zip.sha256:
        return str(latest["LayerVersionArn"])
    published = aws.lambda_.publish_layer_version(
        LayerName=aws.config.layer_name,
        Description=json.dumps({"sha256": layer_zip.sha256}, separators=(",", ":")),
        # From S3: the real layer is over Lambda's 50 MB direct-upload limit.
        Content={"S3Bucket": aws.config.bucket, "S3Key": key},
        CompatibleRuntimes=[LAMBDA_RUNTIME],
        CompatibleArchitectures=[LAMBDA_ARCHITECTURE],
    )
    aws.changed(f"layer version {published['Version']}")
    return str(published["LayerVersionArn"])
