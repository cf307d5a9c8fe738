"""Load the Lambda handler in this process with a given bundle and log folder."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

HANDLER_MODULES = [
    "deployments.lambda_handler.app",
    "deployments.lambda_handler.config",
    "deployments.lambda_handler.metrics",
    "deployments.lambda_handler.model",
    "deployments.lambda_handler.sinks",
    "deployments.lambda_handler.validation",
]


def load_handler(model_dir: Path, storage: Path, **environment: str) -> ModuleType:
    """Import the handler module afresh (its cold start reads the environment)."""
    saved = {key: os.environ.get(key) for key in ("MODEL_DIR", "STORAGE_URL", *environment)}
    os.environ.update({"MODEL_DIR": str(model_dir), "STORAGE_URL": storage.as_uri(), **environment})
    try:
        for name in HANDLER_MODULES:
            sys.modules.pop(name, None)
        return importlib.import_module("deployments.lambda_handler.app")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def logged_files(storage: Path) -> list[Path]:
    """Every prediction-log object under a storage folder."""
    return sorted(storage.rglob("*.jsonl"))
