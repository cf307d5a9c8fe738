"""The local HTTP front of the function: an ASGI app that answers as API Gateway's HTTP API does.

uvicorn (with httptools) parses HTTP; this app turns each request on one of the API's
routes into a payload 2.0 event for the live function and its answer into the response.
What the gateway refuses, it refuses the same way and before the function sees anything:
an unknown route (404), a POST without a length (411), a body over the limit, counted in
bytes as it arrives (413), a body that does not arrive in time (408), a client that leaves
before its body is complete (nothing is invoked or logged). With CORS origins set it answers
preflight `OPTIONS` requests itself, as the gateway does.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from deployments.lambda_handler.contract import (
    CORS_ALLOW_HEADERS,
    CORS_ALLOW_METHODS,
    CORS_EXPOSE_HEADERS,
    CORS_MAX_AGE_SECONDS,
    ROUTE_KEYS,
)
from deployments.lambda_package.function_process import FunctionError, http_event
from deployments.local.live_function import LiveFunction, UnavailableError
from deployments.local.local_servers import FUNCTION_VERSION_HEADER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

Answer = tuple[int, dict[str, str], bytes]  # status, headers, body

MAX_BODY_BYTES = 6 * 1024 * 1024  # API Gateway's payload limit for a Lambda integration
logger = logging.getLogger("deployments.local.serve")


@dataclass(frozen=True)
class FrontLimits:
    """How much the front accepts, and for how long it waits."""

    max_body_bytes: int = MAX_BODY_BYTES
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    max_connections: int = 256
    keep_alive_seconds: int = 5


class _ClientGoneError(Exception):
    """The client disconnected before its request was complete."""


def _gateway_error(status: int, message: str) -> Answer:
    return status, {"content-type": "application/json"}, json.dumps({"message": message}).encode()


NOT_FOUND = _gateway_error(404, "Not Found")
LENGTH_REQUIRED = _gateway_error(411, "Length Required")
TOO_LARGE = _gateway_error(413, "Request Entity Too Large")
TIMED_OUT = _gateway_error(408, "Request Timeout")


class FunctionFront:
    """The ASGI application: routes, limits and CORS in front of the live function."""

    def __init__(
        self, live: LiveFunction, limits: FrontLimits | None = None, cors_origins: tuple[str, ...] = ()
    ) -> None:
        self.live = live
        self.limits = limits or FrontLimits()
        self.cors_origins = frozenset(cors_origins)
        # Each function process answers one event at a time, as a Lambda instance does; the
        # threads only wait on its pipe, so a few are enough to keep it busy.
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="invoke")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one HTTP request."""
        if scope["type"] != "http":
            return
        headers = _headers(scope)
        status, response_headers, body = await self._answer(scope, headers, receive)
        origin = headers.get("origin")
        if origin and origin in self.cors_origins and scope["method"] != "OPTIONS":
            response_headers = {
                **response_headers,
                "access-control-allow-origin": origin,
                "access-control-expose-headers": ",".join(CORS_EXPOSE_HEADERS),
                "vary": "origin",
            }
        response_headers = {**response_headers, "content-length": str(len(body))}
        if status in {408, 411, 413}:
            response_headers["connection"] = "close"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(key.encode(), str(value).encode()) for key, value in response_headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope, headers: dict[str, str], receive: Receive) -> Answer:
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS" and self.cors_origins:
            return self._preflight(headers)
        routed = "GET" if method == "HEAD" else method
        if f"{routed} {path}" not in ROUTE_KEYS:
            return NOT_FOUND
        body = b""
        if method == "POST":
            read = await self._request_body(headers, receive)
            if isinstance(read, tuple):
                return read
            body = read
        query = scope.get("query_string", b"").decode("latin-1")
        client = scope.get("client") or ("127.0.0.1", 0)
        event = _event(routed, path, query, headers, body, client[0])
        return await self._invoke(event)

    async def _request_body(self, headers: dict[str, str], receive: Receive) -> bytes | Answer:
        """The body of a POST, or the gateway's refusal of it."""
        length = headers.get("content-length")
        if length is None and "chunked" not in headers.get("transfer-encoding", "").lower():
            return LENGTH_REQUIRED
        if length is not None and int(length) > self.limits.max_body_bytes:
            return TOO_LARGE
        try:
            return await self._read_body(receive)
        except TimeoutError:
            return TIMED_OUT
        except OverflowError:
            return TOO_LARGE
        except _ClientGoneError:
            return _gateway_error(400, "Bad Request")  # never sent: the client has gone

    async def _read_body(self, receive: Receive) -> bytes:
        """The body, counted in bytes as it arrives, within the limit and the time allowed.

        Past the limit the rest is read and dropped (up to as much again, within the time
        allowed) before the 413 goes out: closing on unread bytes would reset the connection
        and the client would never see the answer.
        """
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.body_timeout_seconds
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                if size > self.limits.max_body_bytes:
                    raise OverflowError from None
                raise
            if message["type"] == "http.disconnect":
                raise _ClientGoneError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= self.limits.max_body_bytes:
                chunks.append(chunk)
            elif size > 2 * self.limits.max_body_bytes or not message.get("more_body", False):
                raise OverflowError
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _invoke(self, event: dict[str, Any]) -> Answer:
        loop = asyncio.get_running_loop()
        try:
            answered = await loop.run_in_executor(self._pool, self.live.invoke, event)
        except UnavailableError as error:
            answer = {"message": "Service Unavailable", "error": str(error)}
            return 503, {"content-type": "application/json"}, json.dumps(answer).encode()
        except FunctionError as error:
            logger.warning("function failed: %s", error)
            return _gateway_error(500, "Internal Server Error")
        if answered is None:
            message = "no live version yet; deploy one with: python -m flows.deploy"
            return 503, {"content-type": "application/json"}, json.dumps({"error": message}).encode()
        version, response = answered
        body = response.get("body") or ""
        payload = base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()
        headers = {str(key).lower(): str(value) for key, value in (response.get("headers") or {}).items()}
        headers.setdefault("content-type", "application/json")
        headers[FUNCTION_VERSION_HEADER] = version
        return int(response.get("statusCode", 200)), headers, payload

    def _preflight(self, headers: dict[str, str]) -> Answer:
        """A CORS preflight answer, as API Gateway gives it for the configured origins."""
        origin = headers.get("origin", "")
        if origin not in self.cors_origins:
            return 204, {}, b""
        return (
            204,
            {
                "access-control-allow-origin": origin,
                "access-control-allow-methods": ",".join(CORS_ALLOW_METHODS),
                "access-control-allow-headers": ",".join(CORS_ALLOW_HEADERS),
                "access-control-max-age": str(CORS_MAX_AGE_SECONDS),
                "vary": "origin",
            },
            b"",
        )

    def close(self) -> None:
        """Stop the invocation threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers by lower-case name; repeated ones joined with commas, as the gateway does."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _event(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes, client_ip: str
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event for one HTTP request."""
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        text, encoded = base64.b64encode(body).decode(), True
    return http_event(
        method,
        path,
        text if body else None,
        query=query,
        headers=headers,
        source_ip=client_ip,
        base64_body=encoded,
    )


class GuardedProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with the gateway's connection rules.

    uvicorn times out idle kept-alive connections, but not a client that connects and sends
    nothing, or sends its request head a byte at a time: each request head must be complete
    within `header_timeout_seconds` of its first byte (or of the connection), and connections
    beyond `max_connections` are answered 503 and closed at once. Malformed requests get the
    gateway's JSON 400 instead of plain text. `guarded_protocol` binds the limits.
    """

    limits: ClassVar[FrontLimits] = FrontLimits()
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; one over the limit is refused at once."""
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._write_and_close(*_gateway_error(503, "Service Unavailable"))
            return
        self._arm_header_deadline()

    def _arm_header_deadline(self) -> None:
        self._cancel_header_deadline()
        self._header_deadline = self.loop.call_later(self.limits.header_timeout_seconds, self._head_timed_out)

    def _cancel_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _head_timed_out(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self._write_and_close(*TIMED_OUT)

    def _write_and_close(self, status: int, headers: dict[str, str], body: bytes) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS[status]}"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        lines += [f"content-length: {len(body)}", "connection: close", "", ""]
        self.transport.write("\r\n".join(lines).encode() + body)
        self.transport.close()

    def on_message_begin(self) -> None:
        """A request starts: its head must be complete in time."""
        super().on_message_begin()
        self._arm_header_deadline()

    def on_headers_complete(self) -> None:
        """The head arrived: the app takes over (and times the body)."""
        self._cancel_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the deadline of a closed connection."""
        self._cancel_header_deadline()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """A request httptools cannot parse (a length of -1, a bad chunk): the gateway's 400."""
        del msg
        self._cancel_header_deadline()
        self._write_and_close(*_gateway_error(400, "Bad Request"))


def guarded_protocol(limits: FrontLimits) -> type[GuardedProtocol]:
    """The protocol class for uvicorn, with these limits."""
    return type("GuardedProtocol", (GuardedProtocol,), {"limits": limits})


_REASONS = {400: "Bad Request", 408: "Request Timeout", 503: "Service Unavailable"}
