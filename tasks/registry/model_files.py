"""A registered version's files, read in one place: schema, baselines, metrics and importance."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from deployments.lambda_handler.contract import (
    HOLDOUT_FILE,
    IMPORTANCE_FILE,
    METADATA_FILE,
    REFERENCE_FILE,
    ServingSchema,
)
from tasks.core.settings import Settings
from tasks.registry.model_registry import fetch_bundle


@dataclass(frozen=True)
class ModelContext:
    """The model version the window is compared against: its schema, baselines and metrics.

    Bundles from before the holdout baseline and importance existed have neither: their
    quality is compared with the training rows and every input weighs the same.
    """

    model_name: str
    version: str
    schema: ServingSchema
    reference: pd.DataFrame  # training rows: the drift baseline
    holdout_metrics: dict[str, float]
    holdout: pd.DataFrame | None = None  # out-of-sample predictions: the quality baseline
    importance: dict[str, float] | None = None

    @property
    def quality_reference(self) -> pd.DataFrame:
        """What live quality is compared with: the holdout when the bundle has it."""
        return self.reference if self.holdout is None else self.holdout


def load_model_context(settings: Settings, model_name: str, version: str | None = None) -> ModelContext:
    """Fetch a registered version's bundle (the champion by default) and read what monitoring needs."""
    with tempfile.TemporaryDirectory() as folder:
        bundle, resolved = fetch_bundle(settings.tracking_uri, model_name, version, Path(folder))
        schema = ServingSchema.load(bundle)
        reference = pd.read_parquet(bundle / REFERENCE_FILE)
        metadata = json.loads((bundle / METADATA_FILE).read_text("utf-8"))
        holdout_path, importance_path = bundle / HOLDOUT_FILE, bundle / IMPORTANCE_FILE
        holdout = pd.read_parquet(holdout_path) if holdout_path.exists() else None
        importance = (
            json.loads(importance_path.read_text("utf-8"))["shares"] if importance_path.exists() else None
        )
    return ModelContext(
        model_name, resolved, schema, reference, metadata.get("metrics", {}), holdout, importance
    )


def registered_schema(settings: Settings, model_name: str, version: str | None = None) -> ServingSchema:
    """The serving schema of a registered version (the champion by default)."""
    with tempfile.TemporaryDirectory() as folder:
        bundle, _ = fetch_bundle(settings.tracking_uri, model_name, version, Path(folder))
        return ServingSchema.load(bundle)
