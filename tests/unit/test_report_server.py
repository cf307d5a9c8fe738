"""The report server listens only where MLOPS_REPORTS_URL says, and only on loopback."""

from __future__ import annotations

import pytest

from monitoring.publish.report_server import ReportServerError, bind_address


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127.0.0.1:8765", ("127.0.0.1", 8765)),
        ("http://localhost:9000/", ("localhost", 9000)),
        ("http://[::1]:8765", ("::1", 8765)),
        ("http://127.0.0.2", ("127.0.0.2", 80)),
    ],
)
def test_loopback_addresses_are_served(url: str, address: tuple[str, int]) -> None:
    assert bind_address(url) == address


@pytest.mark.parametrize(
    "url",
    [
        "http://0.0.0.0:8765",
        "http://[::]:8765",
        "http://10.1.2.3:8765",
        "http://reports.example.com",
        "https://127.0.0.1:8765",
        "http://127.0.0.1:8765/reports",
    ],
)
def test_anything_else_is_refused_in_one_line(url: str) -> None:
    with pytest.raises(
        ReportServerError, match=r"the report server listens only on a loopback address"
    ) as error:
        bind_address(url)
    assert "\n" not in str(error.value)
