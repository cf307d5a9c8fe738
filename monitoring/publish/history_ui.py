"""Evidently's UI on the monitoring history of the configured storage, on 127.0.0.1, read-only.

    python -m monitoring.publish.history_ui              # http://127.0.0.1:8000
    python -m monitoring.publish.history_ui --port 8010  # or MLOPS_EVIDENTLY_UI_PORT=8010

The workspace is `<MLOPS_STORAGE_URL>/evidently` (local or S3). The server runs in this
process, with this project's custom metric types imported. On a local workspace new
snapshots and projects show up as they are written; on S3 the server reads what exists
when it starts. Telemetry is off unless `DO_NOT_TRACK` is set otherwise beforehand.

Any web page the user opens can send requests to 127.0.0.1, so the server is guarded:

- Writes (adding, changing or deleting projects, snapshots, dashboards; a project's
  `/api/projects/<id>/reload`) need Evidently's secret: the `evidently-secret` header equal to
  `EVIDENTLY_SECRET`. Without that variable the secret is a random one nobody knows, and the
  UI is read-only.
- Only requests addressed to this machine's names are served (`Host` 127.0.0.1 or localhost,
  with or without the port), so a page whose own name was pointed at 127.0.0.1 (DNS
  rebinding) is refused.
- A write must be JSON: a form or text body, which a page may send anywhere without asking
  (a CORS "simple request"), is refused.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Callable

from evidently.ui.service.app import get_config
from evidently.ui.service.app import run as run_app
from evidently.ui.service.components.base import AppBuilder, Component, ComponentContext
from evidently.ui.service.storage.common import EVIDENTLY_SECRET_ENV
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.response.base import ASGIResponse
from litestar.types import ASGIApp, Receive, Scope, Send

import monitoring.drift.drift_metrics  # noqa: F401 - custom metric types known to the server

HOST = "127.0.0.1"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")
SECRET_ENV = EVIDENTLY_SECRET_ENV  # EVIDENTLY_SECRET, the variable Evidently's `run_local` reads
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def allowed_hosts(port: int) -> list[str]:
    """The `Host` header values served: the loopback names, bare or with the server's port."""
    return [*LOOPBACK_NAMES, *(f"{name}:{port}" for name in LOOPBACK_NAMES)]


def is_json(content_type: str | None) -> bool:
    """Whether a `Content-Type` names JSON (`application/json`, with or without parameters)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def refuses_body(method: str, content_type: str | None) -> bool:
    """Whether a request's body type is refused: a write whose body is declared other than JSON.

    POST, PUT and PATCH must say `application/json`; a DELETE may carry no content type.
    """
    if method in SAFE_METHODS:
        return False
    if content_type is None:
        return method in BODY_METHODS
    return not is_json(content_type)


def json_writes_only(app: ASGIApp) -> ASGIApp:
    """Litestar middleware: 415 for a write whose body is not declared as JSON."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            content_type = Headers.from_scope(scope).get("content-type")
            if refuses_body(scope["method"], content_type):
                body = b'{"detail":"writes take a JSON body (content-type: application/json)"}'
                response = ASGIResponse(body=body, status_code=415, media_type="application/json")
                await response(scope, receive, send)
                return
        await app(scope, receive, send)

    return middleware


class LoopbackGuard(Component):  # type: ignore[misc]
    """An Evidently UI component: only requests addressed to this machine, writes only as JSON."""

    served_port: int

    def get_middlewares(self, _ctx: ComponentContext) -> list[Callable[[ASGIApp], ASGIApp]]:
        """The JSON-only check, beside Evidently's own security middleware."""
        return [json_writes_only]

    def apply(self, ctx: ComponentContext, builder: AppBuilder) -> None:
        """Add the middleware, and Litestar's allowed-hosts check for the loopback names."""
        super().apply(ctx, builder)
        builder.kwargs["allowed_hosts"] = AllowedHostsConfig(
            allowed_hosts=allowed_hosts(self.served_port), www_redirect=False
        )


def serve(workspace: str, port: int) -> None:
    """Run Evidently's UI on a workspace (a local path or an fsspec URL) until interrupted."""
    os.environ.setdefault("DO_NOT_TRACK", "1")  # read when the app is built

    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    config = get_config(host=HOST, port=port, workspace=workspace, secret=secret)
    config.additional_components["loopback_guard"] = LoopbackGuard(served_port=port)
    writes = (
        f"writes need the evidently-secret header ({SECRET_ENV})"
        if os.environ.get(SECRET_ENV)
        else f"read-only ({SECRET_ENV} is unset)"
    )
    print(f"Evidently UI for {workspace} at http://{HOST}:{port}, {writes}", flush=True)  # noqa: T201
    run_app(config)


def _port(argv: list[str] | None, default: int) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--port", type=int, default=default, help=f"default MLOPS_EVIDENTLY_UI_PORT ({default})"
    )
    port: int = parser.parse_args(argv).port
    return port


def main(argv: list[str] | None = None) -> None:
    """Serve `<storage>/evidently` of the configured storage."""
    from monitoring.publish.history import workspace_location, workspace_url
    from tasks.core.errors import run_command
    from tasks.core.settings import load_settings

    def run() -> None:
        settings = load_settings()
        port = _port(argv, settings.evidently_ui_port)
        serve(workspace_location(workspace_url(settings.storage)), port)

    run_command(run)


if __name__ == "__main__":
    main()
