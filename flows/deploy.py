"""The deploy flow: ship the champion (or a given version) to the configured target."""

from __future__ import annotations

import argparse

from prefect import flow

from deployments.result import DeploymentResult
from tasks.deploy import build_function_artifact, deploy_artifact, fetch_model_bundle
from tasks.errors import quiet_permanent_errors, run_command
from tasks.settings import load_settings


@flow(name="deploy")
def deploy_model(model_name: str | None = None, model_version: str | None = None) -> DeploymentResult:
    """Build the function artifact for a registered model version and make it `live`.

    Without `model_version` the current champion is deployed. Rerunning with what is already
    live changes nothing; a failed smoke test leaves `live` on the version it was on.
    """
    quiet_permanent_errors()
    settings = load_settings()
    name = model_name or settings.model_name
    bundle, version = fetch_model_bundle(settings, name, model_version)
    artifact = build_function_artifact(bundle)
    return deploy_artifact(settings, name, artifact, bundle, version)


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.deploy [--model NAME] [--version N]`: deploy the champion or a version."""
    parser = argparse.ArgumentParser(
        description="Deploy the champion (or a registered version) to MLOPS_TARGET."
    )
    parser.add_argument("--model", help="registered model name (default: MLOPS_MODEL_NAME)")
    parser.add_argument("--version", help="registered model version (default: the champion)")
    args = parser.parse_args(argv)
    run_command(lambda: deploy_model(model_name=args.model, model_version=args.version or None))


if __name__ == "__main__":
    main()
