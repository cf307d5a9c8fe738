"""Print the IAM documents for the current settings: `python -m deployments.aws.policy_cli KIND`.

KIND is `deployer` (what a person or the CD role needs to deploy; `--api-id` narrows its API
statements from the project's tag to that one API), `execution` (the function's inline
policy), `boundary` (the execution role's permissions boundary), `trust` (who may assume the
execution role), `bucket` (the bucket's TLS-only policy) or `github-trust` (the trust policy of
the role GitHub Actions assumes through OIDC; needs `--repository`). The deployer puts the
execution, boundary, trust and bucket documents in place itself. The account comes from the
credentials in use unless `--account-id` is given.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import boto3

from deployments.aws.bucket import bucket_policy
from deployments.aws.config import AwsConfig
from deployments.aws.deployer_policy import deployer_policy
from deployments.aws.execution_policies import boundary_policy, execution_policy, trust_policy
from deployments.aws.policies import function_environment, github_trust_policy
from tasks.core.errors import UsageError, run_command
from tasks.core.settings import Settings, load_settings

KINDS = ("deployer", "execution", "boundary", "trust", "bucket", "github-trust")
API_ID = re.compile(r"[a-z0-9]{1,32}")


def _document(
    args: argparse.Namespace, settings: Settings, config: AwsConfig, partition: str
) -> dict[str, Any]:
    """The document of the asked kind for these settings."""
    account = args.account_id or str(
        boto3.Session(region_name=config.region).client("sts").get_caller_identity()["Account"]
    )
    if args.kind == "deployer":
        return deployer_policy(config, partition, account, args.api_id)
    if args.kind in {"execution", "boundary"}:
        variables = function_environment(config, settings.function_environment)
        render = execution_policy if args.kind == "execution" else boundary_policy
        return render(config, partition, account, variables)
    if args.kind == "trust":
        return trust_policy(account)
    if args.kind == "bucket":
        return bucket_policy(config, partition)
    if not args.repository:
        raise UsageError("github-trust needs --repository owner/name")
    return github_trust_policy(partition, account, args.repository, args.environment)


def main(argv: list[str] | None = None) -> None:
    """Print one rendered policy document as JSON."""
    parser = argparse.ArgumentParser(description="Print an IAM policy document for the current settings.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    parser.add_argument("--account-id", help="AWS account id (default: that of the credentials in use)")
    parser.add_argument("--api-id", help="deployer: the id of the deployment's HTTP API, once it exists")
    parser.add_argument("--repository", help="github-trust: owner/name of the GitHub repository")
    parser.add_argument("--environment", default="production", help="github-trust: GitHub environment")
    args = parser.parse_args(argv)

    def run() -> None:
        settings = load_settings()
        if settings.target != "aws":
            msg = "set MLOPS_TARGET=aws (with MLOPS_STORAGE_URL and MLOPS_AWS_REGION) to render AWS policies"
            raise UsageError(msg)
        if args.api_id is not None and not API_ID.fullmatch(args.api_id):
            msg = f"--api-id {args.api_id!r} is not an HTTP API id (lowercase letters and digits)"
            raise UsageError(msg)
        config = AwsConfig.from_settings(settings, args.model or settings.model_name)
        partition = str(boto3.Session(region_name=config.region).get_partition_for_region(config.region))
        document = _document(args, settings, config, partition)
        print(json.dumps(document, indent=2))  # noqa: T201 - the document is the output

    run_command(run)


if __name__ == "__main__":
    main()
