"""A real browser for page tests: Playwright driving Debian's chromium (`make browser` installs it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path(os.environ.get("MLOPS_TEST_CHROMIUM", "/usr/bin/chromium"))  # `make CHROMIUM=...` sets it
# No sandbox (containers run as root), and nothing the browser would fetch for itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium; its absence is an error naming the command that installs it."""
    if not CHROMIUM.is_file():
        msg = f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
        raise FileNotFoundError(msg)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
