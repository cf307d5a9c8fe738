"""Serve the local `live` version over HTTP on 127.0.0.1, as API Gateway would.

`python -m deployments.serve --port 8080` turns each request into an HTTP API payload 2.0
event for the version `live` points to. A watcher follows the alias: when a deploy moves
it, the new version is started (cold start) while the old one keeps answering, then requests
switch over and the old process stops once its request in flight is done. No request is lost.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from deployments.local_runner import FunctionError, LocalFunction, http_event
from deployments.local_target import LocalDeployer
from tasks.settings import load_settings

MAX_REQUEST_BYTES = 6 * 1024 * 1024
logger = logging.getLogger("deployments.serve")


class LiveFunction:
    """The running function for the version behind `live`, swapped when the alias moves."""

    def __init__(self, deployer: LocalDeployer, poll_seconds: float = 0.2) -> None:
        self.deployer = deployer
        self.poll_seconds = poll_seconds
        self._current: tuple[str, LocalFunction] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.refresh()
        self._watcher = threading.Thread(target=self._watch, name="live-alias-watcher", daemon=True)
        self._watcher.start()

    @property
    def version(self) -> str | None:
        """The version now answering requests."""
        current = self._current
        return current[0] if current else None

    def refresh(self) -> None:
        """Start the version `live` names if it is not the one running, then switch to it."""
        wanted = self.deployer.live_version()
        if wanted is None or wanted == self.version:
            return
        try:
            function = self.deployer.start_function(wanted)
        except FunctionError:
            logger.exception("version %s failed to start; still serving %s", wanted, self.version)
            return
        with self._lock:
            old, self._current = self._current, (wanted, function)
        logger.info("serving version %s (cold start %.3fs)", wanted, function.cold_start_seconds)
        if old is not None:
            old[1].close()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Answer an event with the live version, or None when nothing is deployed."""
        for _ in range(3):
            current = self._current
            if current is None:
                return None
            try:
                return current[1].invoke(event)
            except FunctionError:
                # The process was just retired by a swap: the next attempt uses the new one.
                if self._current is current:
                    raise
        msg = "function kept changing during the request"
        raise FunctionError(msg)

    def close(self) -> None:
        """Stop watching and stop the running function."""
        self._stop.set()
        self._watcher.join(timeout=2)
        with self._lock:
            current, self._current = self._current, None
        if current is not None:
            current[1].close()


def to_event(method: str, path: str, headers: dict[str, str], body: bytes, client_ip: str) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event for one HTTP request."""
    raw_path, _, query = path.partition("?")
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return http_event(
        method,
        raw_path,
        text if body else None,
        query=query,
        headers=headers,
        source_ip=client_ip,
        base64_body=encoded,
    )


def make_handler(live: LiveFunction) -> type[BaseHTTPRequestHandler]:
    """An HTTP request handler class bound to the live function."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Unbuffered, headers and body leave in separate writes, and with Nagle's algorithm
        # and the client's delayed ACK the second waits ~40 ms on a kept-alive connection.
        # A write buffer sends both in one segment (flushed after each request); TCP_NODELAY
        # keeps a response larger than the buffer from waiting either.
        wbufsize = 64 * 1024
        disable_nagle_algorithm = True

        def handle_expect_100(self) -> bool:
            """Send `100 Continue` at once, not when the buffered response is flushed."""
            answered = super().handle_expect_100()
            self.wfile.flush()
            return answered

        def _answer(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
            payload = body.encode()
            self.send_response(status)
            for key, value in (headers or {"content-type": "application/json"}).items():
                self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_REQUEST_BYTES:
                self.close_connection = True
                self._answer(413, json.dumps({"error": f"body is over {MAX_REQUEST_BYTES} bytes"}))
                return
            body = self.rfile.read(length) if length else b""
            event = to_event(self.command, self.path, dict(self.headers), body, self.client_address[0])
            try:
                response = live.invoke(event)
            except FunctionError as error:
                self._answer(502, json.dumps({"error": f"function failed: {error}"}))
                return
            if response is None:
                message = "no live version yet; deploy one with: python -m flows.deploy"
                self._answer(503, json.dumps({"error": message}))
                return
            self._answer(
                int(response.get("statusCode", 200)), response.get("body") or "", response.get("headers")
            )

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            logger.debug(format, *args)

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Run the server until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings = load_settings()
    deployer = LocalDeployer(settings.home, args.model or settings.model_name, settings.storage)
    live = LiveFunction(deployer)
    server = ThreadingHTTPServer((args.host, args.port), make_handler(live))
    logger.info(
        "listening on http://%s:%d for %s (live version: %s)",
        args.host,
        server.server_address[1],
        deployer.model_name,
        live.version or "none yet",
    )
    try:
        with server, contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        live.close()


if __name__ == "__main__":
    main()
