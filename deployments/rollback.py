"""Point `live` at an earlier function version: `python -m deployments.rollback VERSION`.

Without VERSION it lists the versions and where `live` points. On the local target the
server follows at once; on AWS the API Gateway integration targets the alias, so the
endpoint URL stays the same.
"""

from __future__ import annotations

import argparse

from deployments.local_target import LocalDeployer
from tasks.settings import load_settings


def main(argv: list[str] | None = None) -> None:
    """List versions or move `live`."""
    parser = argparse.ArgumentParser(description="List function versions or move the live alias.")
    parser.add_argument("version", nargs="?", help="function version to make live")
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    args = parser.parse_args(argv)
    settings = load_settings()
    model = args.model or settings.model_name
    if settings.target == "aws":
        import boto3

        from deployments.aws_deployer import aws_config
        from deployments.aws_target import ALIAS

        config = aws_config(settings, model)
        client = boto3.client("lambda", region_name=config.region)
        if args.version:
            client.update_alias(
                FunctionName=config.function_name, Name=ALIAS, FunctionVersion=args.version, RoutingConfig={}
            )
        alias = client.get_alias(FunctionName=config.function_name, Name=ALIAS)
        print(f"{config.function_name}: live -> version {alias['FunctionVersion']}")
        return
    deployer = LocalDeployer(settings.home, model, settings.storage)
    if args.version:
        deployer.set_live(args.version)
    live = deployer.live_version()
    for info in deployer.versions():
        marker = "  <- live" if str(info["version"]) == live else ""
        print(
            f"version {info['version']}: model v{info['model_version']}, sha256 {info['sha256'][:12]}{marker}"
        )


if __name__ == "__main__":
    main()
