"""Keys of the Prefect artifacts the runs publish (promotion, deployment, drift, batch)."""

from __future__ import annotations


def artifact_key(prefix: str, model_name: str) -> str:
    """A Prefect artifact key for a model: lower-case letters, digits and dashes only."""
    return f"{prefix}-{model_name}".lower().replace("_", "-").replace(".", "-")
