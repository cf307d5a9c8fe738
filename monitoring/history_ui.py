"""Evidently's UI on the monitoring history of the configured storage, on 127.0.0.1.

    python -m monitoring.history_ui              # http://127.0.0.1:8000
    python -m monitoring.history_ui --port 8010  # or MLOPS_EVIDENTLY_UI_PORT=8010

The workspace is `<MLOPS_STORAGE_URL>/evidently` (local or S3). The server runs in this
process, with this project's custom metric types imported. On a local workspace new
snapshots and projects show up as they are written; on S3 the server reads what exists
when it starts (a project's `/api/projects/<id>/reload` reads its new snapshots).
Telemetry is off unless `DO_NOT_TRACK` is set otherwise beforehand.
"""

from __future__ import annotations

import argparse
import os

HOST = "127.0.0.1"


def _port(argv: list[str] | None, default: int) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--port", type=int, default=default, help=f"default MLOPS_EVIDENTLY_UI_PORT ({default})"
    )
    port: int = parser.parse_args(argv).port
    return port


def serve(workspace: str, port: int) -> None:
    """Run Evidently's UI on a workspace (a local path or an fsspec URL) until interrupted."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently.ui.service.app import run_local

    import monitoring.evidently_metrics  # noqa: F401 - custom metric types known to the server

    print(f"Evidently UI for {workspace} at http://{HOST}:{port}", flush=True)  # noqa: T201
    run_local(host=HOST, port=port, workspace=workspace)


def main(argv: list[str] | None = None) -> None:
    """Serve `<storage>/evidently` of the configured storage."""
    from monitoring.history import workspace_location, workspace_url
    from tasks.errors import run_command
    from tasks.settings import load_settings

    def run() -> None:
        settings = load_settings()
        port = _port(argv, settings.evidently_ui_port)
        serve(workspace_location(workspace_url(settings.storage)), port)

    run_command(run)


if __name__ == "__main__":
    main()
