"""Point `live` at an earlier function version: `python -m deployments.rollback VERSION`.

Without VERSION it lists the versions and where `live` points. On the local target the
server follows at once; on AWS the API Gateway integration targets the alias, so the
endpoint URL stays the same. A rollback is not a pin: the next deploy of a champion (a
promotion with MLOPS_DEPLOY_ON_PROMOTION, or `python -m flows.deploy`) moves `live` again.
"""

from __future__ import annotations

import argparse

from deployments.local_target import LocalDeployer
from tasks.errors import UsageError, run_command
from tasks.settings import Settings, load_settings

NOT_A_PIN = (
    "note: this is not a pin; the next deploy of a champion moves live again "
    "(set MLOPS_DEPLOY_ON_PROMOTION=false to stop promotions from deploying)"
)


def _aws(settings: Settings, model: str, version: str | None) -> None:
    import boto3

    from deployments.lambda_handler.contract import LIVE_ALIAS
    from deployments.targets import aws_config

    config = aws_config(settings, model)
    client = boto3.client("lambda", region_name=config.region)
    pages = client.get_paginator("list_versions_by_function").paginate(FunctionName=config.function_name)
    published = [
        item["Version"] for page in pages for item in page["Versions"] if item["Version"] != "$LATEST"
    ]
    if version is not None:
        if version not in published:
            msg = (
                f"{config.function_name} has no version {version}; published versions: {', '.join(published)}"
            )
            raise UsageError(msg)
        client.update_alias(
            FunctionName=config.function_name, Name=LIVE_ALIAS, FunctionVersion=version, RoutingConfig={}
        )
    alias = client.get_alias(FunctionName=config.function_name, Name=LIVE_ALIAS)
    print(
        f"{config.function_name}: versions {', '.join(published)}; live -> version {alias['FunctionVersion']}"
    )


def _local(settings: Settings, model: str, version: str | None) -> None:
    deployer = LocalDeployer(settings.home, model, settings.storage)
    versions = deployer.versions()
    if version is not None:
        known = [str(info["version"]) for info in versions]
        if version not in known:
            listed = ", ".join(known) or "none (deploy one with python -m flows.deploy)"
            msg = f"{model} has no local function version {version}; versions: {listed}"
            raise UsageError(msg)
        deployer.set_live(version)
    live = deployer.live_version()
    for info in versions:
        marker = "  <- live" if str(info["version"]) == live else ""
        print(
            f"version {info['version']}: model v{info['model_version']}, sha256 {info['sha256'][:12]}{marker}"
        )


def main(argv: list[str] | None = None) -> None:
    """List versions or move `live`."""
    parser = argparse.ArgumentParser(description="List function versions or move the live alias.")
    parser.add_argument("version", nargs="?", help="function version to make live")
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    args = parser.parse_args(argv)

    def run() -> None:
        settings = load_settings()
        model = args.model or settings.model_name
        (_aws if settings.target == "aws" else _local)(settings, model, args.version)
        if args.version:
            print(NOT_A_PIN)

    run_command(run)


if __name__ == "__main__":
    main()
