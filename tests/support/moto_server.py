"""Run `moto_server` as a child process on 127.0.0.1, the way integration tests talk to "AWS"."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.processes import free_port, stop

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def moto_server(log_file: Path, startup_seconds: float = 30.0) -> Iterator[str]:
    """Start a moto server, yield its endpoint URL once it answers, stop it on exit."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    executable = Path(sys.executable).parent / "moto_server"
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + startup_seconds
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                msg = f"moto_server did not start on {url}; see {log_file}"
                raise RuntimeError(msg)
            time.sleep(0.1)
        yield url
    finally:
        stop(process)


def isolated_aws_files(root: Path) -> dict[str, str]:
    """Point the AWS config and credentials files at an empty folder.

    No profile, config or credentials file of this machine can leak into the tests.
    """
    return {"AWS_CONFIG_FILE": str(root / "config"), "AWS_SHARED_CREDENTIALS_FILE": str(root / "credentials")}
