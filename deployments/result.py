"""What a deploy did, the same shape for every target."""

from __future__ import annotations

from pydantic import BaseModel


class DeploymentResult(BaseModel):
    """The version serving behind `live` after a deploy, and how to reach it."""

    target: str
    model_name: str
    model_version: str
    function_version: str
    previous_version: str | None
    endpoint: str
    code_sha256: str
    artifact_uri: str
    changed: bool
    detail: str = ""
