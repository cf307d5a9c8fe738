"""IAM policy documents from the templates in `deployments/iam/`, and the function's environment.

Templates name actions and resources explicitly; `${Name}` placeholders are filled here. A
statement whose placeholder has no value (None) is left out: that is how optional grants
(Firehose only with a stream, KMS only with a key, X-Ray only with tracing, EC2 only in a VPC)
work. A placeholder that is a whole string may stand for a list of resources.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from deployments.aws.config import AwsConfig
from deployments.lambda_handler.contract import PREDICTIONS_PREFIX

IAM_DIR = Path(__file__).resolve().parent.parent / "iam"
EXECUTION_POLICY = IAM_DIR / "lambda-execution-policy.json"
TRUST_POLICY = IAM_DIR / "lambda-trust-policy.json"
DEPLOYER_POLICY = IAM_DIR / "deployer-policy.json"
GITHUB_TRUST_POLICY = IAM_DIR / "github-oidc-trust-policy.json"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+)\}")


PolicyValue = str | list[str] | None


def _substitute(value: Any, values: Mapping[str, str | list[str]]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole and isinstance(values[whole.group(1)], list):
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), value)
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    return value


def render_policy(template: Path, values: Mapping[str, PolicyValue]) -> dict[str, Any]:
    """Fill `${Name}` placeholders; statements naming a placeholder whose value is None are dropped.

    A placeholder with no value at all is an error, so a policy never reaches IAM half-rendered.
    """
    document = json.loads(template.read_text(encoding="utf-8"))
    statements = []
    for statement in document["Statement"]:
        names = set(_PLACEHOLDER.findall(json.dumps(statement)))
        absent = names - set(values)
        if absent:
            msg = f"{template.name}: no value for {sorted(absent)}"
            raise KeyError(msg)
        if all(values[name] is not None for name in names):
            statements.append(statement)
    filled = {name: value for name, value in values.items() if value is not None}
    return {**document, "Statement": _substitute(statements, filled)}


def as_document(value: Any) -> Any:
    """IAM policy documents come back as dicts from boto3, or as JSON strings from some servers."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def storage_location(storage_url: str) -> tuple[str, str] | None:
    """Bucket and key prefix of an s3:// storage URL, or None for other schemes."""
    parsed = urlparse(storage_url)
    if parsed.scheme != "s3":
        return None
    return parsed.netloc, parsed.path.strip("/")


def function_environment(config: AwsConfig, environment: Mapping[str, str]) -> dict[str, str]:
    """The function's variables: STORAGE_URL defaults to the deploy bucket and prefix.

    Prediction logs must go to the bucket this deployer secures (public access blocked,
    encrypted), so an s3:// STORAGE_URL in another bucket is refused.
    """
    variables = dict(environment)
    variables.setdefault("STORAGE_URL", f"s3://{config.bucket}/{config.prefix}".rstrip("/"))
    if config.firehose_stream:
        variables.setdefault("FIREHOSE_STREAM", config.firehose_stream)
    location = storage_location(variables["STORAGE_URL"])
    if location is None and not variables.get("FIREHOSE_STREAM"):
        msg = f"STORAGE_URL must be s3:// on AWS, got {variables['STORAGE_URL']!r}"
        raise ValueError(msg)
    if location is not None and location[0] != config.bucket:
        msg = f"STORAGE_URL bucket {location[0]!r} is not the deploy bucket {config.bucket!r}"
        raise ValueError(msg)
    return variables


def execution_policy(
    config: AwsConfig, partition: str, account_id: str, environment: Mapping[str, str]
) -> dict[str, Any]:
    """The function's inline policy: its log streams, its bundle, its prediction prefix, its stream."""
    location = storage_location(environment.get("STORAGE_URL", ""))
    prediction_prefix = None
    if location is not None:
        prediction_prefix = "/".join(part for part in (location[1], PREDICTIONS_PREFIX) if part) + "/"
    return render_policy(
        EXECUTION_POLICY,
        {
            "Partition": partition,
            "Region": config.region,
            "AccountId": account_id,
            "FunctionName": config.function_name,
            "Bucket": config.bucket,
            "PredictionPrefix": prediction_prefix,
            # the function's artifacts (model bundle inside): reads only, nothing else in the bucket
            "BundlePrefix": config.key("lambda", config.function_name) + "/",
            "FirehoseStream": environment.get("FIREHOSE_STREAM") or None,
            "KmsKeyArn": config.kms_key_arn,
            "TracingResource": "*" if config.tracing == "Active" else None,
            **_vpc_values(config, partition, account_id),
        },
    )


def _vpc_values(config: AwsConfig, partition: str, account_id: str) -> dict[str, PolicyValue]:
    """The network-interface grants of a function in a VPC (all None outside one)."""
    if not config.subnet_ids:
        return {"VpcResources": None, "NetworkInterfaces": None, "VpcDescribeResource": None}
    ec2 = f"arn:{partition}:ec2:{config.region}:{account_id}"
    network_interfaces = f"{ec2}:network-interface/*"
    return {
        "VpcResources": [
            *(f"{ec2}:subnet/{subnet}" for subnet in config.subnet_ids),
            *(f"{ec2}:security-group/{group}" for group in config.security_group_ids),
            network_interfaces,
        ],
        "NetworkInterfaces": network_interfaces,
        "VpcDescribeResource": "*",
    }


def deployer_policy(config: AwsConfig, partition: str, account_id: str) -> dict[str, Any]:
    """The permissions a person or CI principal needs to run this deployer."""
    return render_policy(
        DEPLOYER_POLICY,
        {
            "Partition": partition,
            "Region": config.region,
            "AccountId": account_id,
            "Bucket": config.bucket,
            "ArtifactPrefix": config.key("lambda") + "/",
            "FunctionName": config.function_name,
            "RoleName": config.role_name,
            "LayerName": config.layer_name,
            "KmsKeyArn": config.kms_key_arn,
            "VpcDescribeResource": "*" if config.subnet_ids else None,
        },
    )


def github_trust_policy(partition: str, account_id: str, repository: str, environment: str) -> dict[str, Any]:
    """Trust of the CD role: only GitHub Actions jobs of one repository's environment assume it."""
    return render_policy(
        GITHUB_TRUST_POLICY,
        {
            "Partition": partition,
            "AccountId": account_id,
            "Repository": repository,
            "Environment": environment,
        },
    )


def trust_policy() -> dict[str, Any]:
    """The execution role's trust policy: only the Lambda service assumes it."""
    return render_policy(TRUST_POLICY, {})
