"""Serve local drift reports over HTTP on 127.0.0.1, so links in the Prefect UI open in a browser.

Browsers refuse `file://` links from an `http://` page such as the Prefect UI. The monitor
links each local report as `<MLOPS_REPORTS_URL>/<model>/<window>.html.gz`; this command serves
`<storage>/reports/` at that address, a compressed page with `Content-Encoding: gzip` so the
browser shows the page (reports on S3 are linked with presigned HTTPS URLs instead and need
no server):

    python -m monitoring.publish.report_server          # http://127.0.0.1:8765 by default
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import logging
import os
import socket
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse, urlsplit

from tasks.core.errors import UserError, run_command

logger = logging.getLogger("monitoring.publish.report_server")
REPORTS_FOLDER = "reports"


class ReportServerError(UserError, ValueError):
    """The settings ask the report server for something it does not do; the message says what."""


def reports_folder(storage_url: str) -> Path:
    """The local folder holding the reports of a `file://` storage root."""
    parsed = urlparse(storage_url)
    if parsed.scheme != "file":
        msg = f"reports under {storage_url} are not local; they are linked with presigned URLs instead"
        raise ReportServerError(msg)
    return Path(unquote(parsed.path)) / REPORTS_FOLDER


def report_address(report_url: str, storage_url: str, reports_url: str) -> str:
    """The HTTP address of a local report under the served reports folder."""
    folder = reports_folder(storage_url)
    relative = Path(unquote(urlparse(report_url).path)).relative_to(folder)
    return f"{reports_url.rstrip('/')}/{relative.as_posix()}"


def bind_address(reports_url: str) -> tuple[str, int]:
    """The loopback host and port of `MLOPS_REPORTS_URL` this server listens on.

    The server shows every report (and the rows they embed) to whoever connects, so it listens
    only on this machine; share reports through a web server of your own in front of it.
    """
    parts = urlsplit(reports_url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        loopback = False
    if parts.scheme != "http" or not loopback or parts.path not in {"", "/"}:
        msg = (
            f"MLOPS_REPORTS_URL={reports_url!r}: the report server listens only on a loopback address "
            "over plain http, without a path (e.g. http://127.0.0.1:8765, http://localhost:8765 or "
            "http://[::1]:8765); serve reports elsewhere through a web server of your own"
        )
        raise ReportServerError(msg)
    return host, parts.port or 80


COMPRESSED_PAGE = ".html.gz"


class _ReportHandler(SimpleHTTPRequestHandler):
    """Serves the folder; a compressed page (`.html.gz`) as HTML with `Content-Encoding: gzip`."""

    def _compressed_page(self) -> bool:
        path = self.translate_path(self.path)
        return path.endswith(COMPRESSED_PAGE) and Path(path).is_file()

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        if str(path).endswith(COMPRESSED_PAGE):
            return "text/html; charset=utf-8"
        return super().guess_type(path)

    def end_headers(self) -> None:
        if self.command in {"GET", "HEAD"} and self._compressed_page():
            self.send_header("Content-Encoding", "gzip")
        super().end_headers()


class _IPv6Server(ThreadingHTTPServer):
    """A threading HTTP server on an IPv6 address (`http://[::1]:8765`)."""

    address_family = socket.AF_INET6


def serve(folder: Path, host: str, port: int) -> ThreadingHTTPServer:
    """An HTTP server for a folder (not started)."""
    folder.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_ReportHandler, directory=str(folder))
    server_class = _IPv6Server if ":" in host else ThreadingHTTPServer
    return server_class((host, port), handler)


def main(argv: list[str] | None = None) -> None:
    """Serve `<storage>/reports` until interrupted."""
    from tasks.core.settings import load_settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.parse_args(argv)

    def run() -> None:
        settings = load_settings()
        host, port = bind_address(settings.reports_url)
        server = serve(reports_folder(settings.storage), host, port)
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        logger.info("serving %s at %s", reports_folder(settings.storage), settings.reports_url)
        with server, contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()

    run_command(run)


if __name__ == "__main__":
    main()
