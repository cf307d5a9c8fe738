"""Print the IAM documents for the current settings: `python -m deployments.aws.policy_cli KIND`.

KIND is `deployer` (what a person or the CD role needs to deploy), `execution` (the
function's inline policy, which the deployer puts in place itself) or `github-trust` (the
trust policy of the role GitHub Actions assumes through OIDC; needs `--repository`).
The account comes from the credentials in use unless `--account-id` is given.
"""

from __future__ import annotations

import argparse
import json

import boto3

from deployments.aws.policies import (
    deployer_policy,
    execution_policy,
    function_environment,
    github_trust_policy,
)
from deployments.targets import aws_config
from tasks.errors import UsageError, run_command
from tasks.settings import load_settings

KINDS = ("deployer", "execution", "github-trust")


def main(argv: list[str] | None = None) -> None:
    """Print one rendered policy document as JSON."""
    parser = argparse.ArgumentParser(description="Print an IAM policy document for the current settings.")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    parser.add_argument("--account-id", help="AWS account id (default: that of the credentials in use)")
    parser.add_argument("--repository", help="github-trust: owner/name of the GitHub repository")
    parser.add_argument("--environment", default="production", help="github-trust: GitHub environment")
    args = parser.parse_args(argv)

    def run() -> None:
        settings = load_settings()
        if settings.target != "aws":
            msg = "set MLOPS_TARGET=aws (with MLOPS_STORAGE_URL and MLOPS_AWS_REGION) to render AWS policies"
            raise UsageError(msg)
        config = aws_config(settings, args.model or settings.model_name)
        session = boto3.Session(region_name=config.region)
        partition = str(session.get_partition_for_region(config.region))
        account = args.account_id or str(session.client("sts").get_caller_identity()["Account"])
        if args.kind == "deployer":
            document = deployer_policy(config, partition, account)
        elif args.kind == "execution":
            variables = function_environment(config, settings.function_environment)
            document = execution_policy(config, partition, account, variables)
        else:
            if not args.repository:
                raise UsageError("github-trust needs --repository owner/name")
            document = github_trust_policy(partition, account, args.repository, args.environment)
        print(json.dumps(document, indent=2))  # noqa: T201 - the document is the output

    run_command(run)


if __name__ == "__main__":
    main()
