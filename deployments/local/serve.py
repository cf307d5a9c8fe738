"""Serve the local `live` version over HTTP on 127.0.0.1, as API Gateway would.

`python -m deployments.local.serve --port 8080` answers the API's routes (`POST /predict`,
`GET /schema`, `GET /health`) with the version `live` points to: uvicorn parses HTTP,
`deployments.local.http_front` applies the gateway's rules and turns each request into a payload 2.0
event, and `deployments.local.live_function` follows the alias and replaces a crashed function
process. While it runs, the server is registered under the model's deployments folder, so a
deploy or rollback reports success only once this server answers the new version.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import socket

import uvicorn

from deployments.local.http_front import FrontLimits, FunctionFront, guarded_protocol
from deployments.local.live_function import LiveFunction
from deployments.local.local_target import LocalDeployer
from tasks.core.errors import run_command
from tasks.core.settings import load_settings, split_list

logger = logging.getLogger("deployments.local.serve")


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def serve(deployer: LocalDeployer, host: str, port: int, limits: FrontLimits, cors: tuple[str, ...]) -> None:
    """Serve until interrupted (SIGINT or SIGTERM)."""
    live = LiveFunction(deployer)
    front = FunctionFront(live, limits, cors)
    listener = _listening_socket(host, port)
    url = f"http://{host}:{listener.getsockname()[1]}"
    config = uvicorn.Config(
        front,
        http=guarded_protocol(limits),
        loop="uvloop",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive_seconds,
    )
    entry = deployer.servers.register(url)
    serving = live.version or "none yet"
    logger.info("listening on %s for %s (live version: %s)", url, deployer.model_name, serving)
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        with contextlib.suppress(OSError):
            entry.unlink()
        front.close()
        live.close()
        listener.close()


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, then serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    parser.add_argument("--max-connections", type=int, default=FrontLimits.max_connections)
    parser.add_argument("--header-timeout", type=float, default=FrontLimits.header_timeout_seconds)
    parser.add_argument("--body-timeout", type=float, default=FrontLimits.body_timeout_seconds)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def run() -> None:
        settings = load_settings()
        name = args.model or settings.model_name
        deployer = LocalDeployer(settings.home, name, settings.storage, settings.function_environment)
        limits = FrontLimits(
            header_timeout_seconds=args.header_timeout,
            body_timeout_seconds=args.body_timeout,
            max_connections=args.max_connections,
        )
        serve(deployer, args.host, args.port, limits, split_list(settings.api_cors_origins))

    run_command(run)


if __name__ == "__main__":
    main()
