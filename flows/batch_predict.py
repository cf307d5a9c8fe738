"""The batch scoring flow: score a file or prefix with the live model and log like online traffic."""

from __future__ import annotations

from datetime import UTC, datetime

from prefect import flow

from flows.cli.failed_runs import fails_in_one_line
from flows.cli.options import command_parameters
from flows.cli.temporary_server import run_flow
from tasks.core.errors import quiet_permanent_errors, run_command
from tasks.core.settings import load_settings
from tasks.steps.batch_steps import BatchResult, score_source
from tasks.steps.monitor_steps import load_reference


@flow(name="batch-predict")
@fails_in_one_line
def batch_predict(source: str, model_name: str | None = None) -> BatchResult:
    """Score a CSV/TSV/Parquet file, or every such file under a folder or S3 prefix.

    Rows go through the live function in batches, so they are validated and logged to the
    prediction logs exactly like API requests (the monitor sees them too). Scored rows are
    written to `<storage>/batch/<model>/<run>.parquet`; rows that fail the input schema go to
    `<run>-rejected.parquet` with the reason.
    """
    quiet_permanent_errors()
    settings = load_settings()
    name = model_name or settings.model_name
    context = load_reference(settings, name)
    run_name = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return score_source(settings, name, source, context.schema, run_name)


def main(argv: list[str] | None = None) -> None:
    """`python -m flows.batch_predict SOURCE [--model NAME]`: score once (`--help` for more)."""
    run_command(lambda: run_flow(batch_predict, command_parameters("batch_predict", argv)))


if __name__ == "__main__":
    main()
