"""Links a browser can open to a stored report."""

from __future__ import annotations

from monitoring.publish.report_server import report_address
from tasks.core.settings import Settings
from tasks.core.storage import s3_client


def report_link(settings: Settings, url: str | None, expires_seconds: int = 7 * 24 * 3600) -> str | None:
    """A link a browser can open: a presigned HTTPS URL on S3; locally, the report server's address."""
    if url is None:
        return None
    if url.startswith("s3://"):
        bucket, key = url.removeprefix("s3://").split("/", 1)
        link = s3_client(settings.aws_region).generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_seconds
        )
        return str(link)
    return report_address(url, settings.storage, settings.reports_url)
