"""The deploy flow: ship the champion (or a given version) to the configured target."""

from __future__ import annotations

from prefect import flow

from deployments.common.deploy_result import DeploymentResult
from flows.cli.failed_runs import fails_in_one_line
from flows.cli.options import command_parameters
from flows.cli.temporary_server import run_flow
from tasks.core.errors import quiet_permanent_errors, run_command
from tasks.core.settings import load_settings
from tasks.steps.deploy_steps import build_artifact, deploy_artifact, fetch_model_bundle


@flow(name="deploy")
@fails_in_one_line
def deploy_model(model_name: str | None = None, model_version: str | None = None) -> DeploymentResult:
    """Build the function artifact for a registered model version and make it `live`.

    Without `model_version` the current champion is deployed. Rerunning with what is already
    live changes nothing; a failed smoke test leaves `live` on the version it was on.
    """
    quiet_permanent_errors()
    settings = load_settings()
    name = model_name or settings.model_name
    bundle, version = fetch_model_bundle(settings, name, model_version)
    artifact = build_artifact(settings, name, bundle)
    return deploy_artifact(settings, name, artifact, bundle, version)


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.deploy [--model NAME] [--version N]`: deploy the champion or a version."""
    run_command(lambda: run_flow(deploy_model, command_parameters("deploy", argv)))


if __name__ == "__main__":
    main()
