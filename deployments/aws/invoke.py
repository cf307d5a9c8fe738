"""Call deployed function versions: through Lambda on AWS, or locally from the recorded artifact.

`lambda_invoker` is the smoke-test invoker on real AWS. `run_deployed_version` fetches the
exact zip a version was published from (the S3 key its Description records, checked against
the version's `CodeSha256`) and runs it in the local runner, to debug a version with its own
configuration (and, in tests, because moto cannot run Lambda code without Docker).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from deployments.aws.config import ArtifactRecord
from deployments.lambda_package.function_process import LocalFunction, unpack_artifact

Invoker = Callable[[str, dict[str, Any]], dict[str, Any]]
LAMBDA_TASK_ROOT = "/var/task"  # where Lambda unpacks the function zip


class InvokeError(RuntimeError):
    """The function raised (Lambda's FunctionError) instead of answering."""


class ArtifactMismatchError(RuntimeError):
    """The recorded artifact is not the code the version runs."""


def lambda_invoker(client: Any, function_name: str) -> Invoker:
    """Invoke a version or alias of a function synchronously on AWS and return its answer."""

    def invoke(version: str, event: dict[str, Any]) -> dict[str, Any]:
        response = client.invoke(
            FunctionName=function_name,
            Qualifier=version,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            msg = f"{function_name}:{version} failed ({response['FunctionError']}): {payload[:2000]!r}"
            raise InvokeError(msg)
        return json.loads(payload)

    return invoke


def fetch_version_code(
    lambda_client: Any, s3_client: Any, function_name: str, qualifier: str, destination: Path
) -> tuple[dict[str, Any], Path]:
    """Download the zip a version was published from; verify it is the code Lambda runs.

    moto's `Code.Location` cannot be downloaded (and on AWS it is a short-lived URL), so the
    deployer's own record in the version Description says where the artifact is.
    """
    configuration = lambda_client.get_function_configuration(FunctionName=function_name, Qualifier=qualifier)
    record = ArtifactRecord.from_description(configuration.get("Description", ""))
    body = s3_client.get_object(Bucket=record.bucket, Key=record.key)["Body"].read()
    digest = hashlib.sha256(body)
    code_sha256 = base64.b64encode(digest.digest()).decode()
    if digest.hexdigest() != record.sha256 or code_sha256 != configuration.get("CodeSha256"):
        msg = (
            f"{record.uri} has sha256 {code_sha256}, but {function_name}:{configuration.get('Version')} "
            f"runs CodeSha256 {configuration.get('CodeSha256')} (recorded {record.sha256})"
        )
        raise ArtifactMismatchError(msg)
    destination.mkdir(parents=True, exist_ok=True)
    path = destination / f"{function_name}-{configuration['Version']}-{record.sha256[:16]}.zip"
    path.write_bytes(body)
    return configuration, path


def lambda_environment(
    configuration: Mapping[str, Any], code_dir: Path, region: str, extra: Mapping[str, str]
) -> dict[str, str]:
    """The variables Lambda would give this version, with `/var/task` paths mapped to `code_dir`."""
    variables = dict((configuration.get("Environment") or {}).get("Variables") or {})
    for name, value in variables.items():
        if value == LAMBDA_TASK_ROOT or value.startswith(f"{LAMBDA_TASK_ROOT}/"):
            variables[name] = str(code_dir) + value.removeprefix(LAMBDA_TASK_ROOT)
    variables.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": str(configuration.get("FunctionName", "")),
            "AWS_LAMBDA_FUNCTION_VERSION": str(configuration.get("Version", "")),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", "")),
            "LAMBDA_TASK_ROOT": str(code_dir),
        }
    )
    variables.update(extra)  # endpoint and credentials: the role's, on AWS; fake ones for moto
    return variables


def run_deployed_version(
    lambda_client: Any,
    s3_client: Any,
    function_name: str,
    qualifier: str,
    work_dir: Path,
    layer_dirs: list[Path],
    environment: Mapping[str, str],
    *,
    log_file: Path | None = None,
) -> LocalFunction:
    """Start the code of a published version (or alias) locally, configured as that version is."""
    configuration, artifact = fetch_version_code(lambda_client, s3_client, function_name, qualifier, work_dir)
    code_dir = unpack_artifact(artifact, work_dir / artifact.stem)
    variables = lambda_environment(configuration, code_dir, lambda_client.meta.region_name, environment)
    return LocalFunction(code_dir, layer_dirs, variables, handler=configuration["Handler"], log_file=log_file)
