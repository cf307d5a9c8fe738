"""Send real requests through the in-process handler so tests read logs the handler wrote."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from deployments.local_runner import http_event


def instances_from_reference(bundle: Path, rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """Instances drawn from the bundle's reference sample (traffic like training data)."""
    return reference_traffic(bundle, rows, seed)[0]


def reference_traffic(bundle: Path, rows: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[Any]]:
    """Instances drawn from the reference sample, and their true target values."""
    reference = pd.read_parquet(bundle / "reference.parquet")
    schema = json.loads((bundle / "schema.json").read_text())
    names = [feature["name"] for feature in schema["features"]]
    drawn = reference.sample(n=rows, replace=rows > len(reference), random_state=seed)
    sample = drawn[names]
    instances = []
    for record in sample.to_dict("records"):
        instance = {}
        for name, value in record.items():
            if isinstance(value, float) and np.isnan(value):
                continue
            if value == "":
                continue
            instance[name] = value
        instances.append(instance)
    return instances, drawn[schema["target"]].tolist()


def shifted(instances: list[dict[str, Any]], schema: dict[str, Any], factor: float) -> list[dict[str, Any]]:
    """The same instances with every numeric feature multiplied by `factor` (a strong drift)."""
    numeric = {feature["name"] for feature in schema["features"] if feature["type"] == "number"}
    return [{k: (v * factor if k in numeric else v) for k, v in instance.items()} for instance in instances]


def send(app: ModuleType, instances: list[dict[str, Any]], per_request: int = 1) -> list[dict[str, Any]]:
    """POST instances in requests of `per_request` rows; return the decoded answers (all must be 200)."""
    answers = []
    for start in range(0, len(instances), per_request):
        body = json.dumps({"instances": instances[start : start + per_request]})
        response = app.handler(http_event("POST", "/predict", body))
        assert response["statusCode"] == 200, response["body"]
        answers.append(json.loads(response["body"]))
    return answers
