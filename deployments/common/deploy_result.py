"""What a deploy did, the same shape for every target."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
    already_live: bool = False
    changes: list[str] = Field(default_factory=list, description="What this deploy created or changed.")
    api_id: str | None = Field(None, description="AWS: the HTTP API in front of `live`.")
    layer_version_arn: str | None = Field(None, description="AWS: the dependency layer the version uses.")


class FunctionVersion(BaseModel):
    """A published function version and the model version it serves."""

    version: str
    model_version: str
    sha256: str
    live: bool = False
