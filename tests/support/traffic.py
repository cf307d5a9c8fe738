"""Send real requests through the in-process handler so tests read logs the handler wrote."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from deployments.lambda_package.function_process import http_event
from flows.demo import SIZE_FEATURES


def instances_from_reference(bundle: Path, rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """Instances drawn from the bundle's reference sample (traffic like training data)."""
    return reference_traffic(bundle, rows, seed)[0]


def reference_traffic(
    bundle: Path, rows: int, seed: int = 0, sample: str = "reference.parquet"
) -> tuple[list[dict[str, Any]], list[Any]]:
    """Instances drawn from one of the bundle's samples (training rows by default), and their targets."""
    reference = pd.read_parquet(bundle / sample)
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


def size_shifted(instances: list[dict[str, Any]], factor: float) -> list[dict[str, Any]]:
    """The same instances with the area and size features multiplied by `factor` (bigger houses)."""
    return [
        {
            k: (v * factor if SIZE_FEATURES.search(k) and isinstance(v, int | float) else v)
            for k, v in item.items()
        }
        for item in instances
    ]


def send(app: ModuleType, instances: list[dict[str, Any]], per_request: int = 1) -> list[dict[str, Any]]:
    """POST instances in requests of `per_request` rows; return the decoded answers (all must be 200)."""
    answers = []
    for start in range(0, len(instances), per_request):
        body = json.dumps({"instances": instances[start : start + per_request]})
        response = app.handler(http_event("POST", "/predict", body))
        assert response["statusCode"] == 200, response["body"]
        answers.append(json.loads(response["body"]))
    return answers


class HttpTraffic:
    """A client on one kept-alive connection: sends instances and notes which version answered when."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlparse(url)
        self.connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        self.answers: list[tuple[float, int, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def post(self, instance: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """POST one instance to /predict; note the answer."""
        self.connection.request(
            "POST", "/predict", json.dumps(instance), {"content-type": "application/json"}
        )
        response = self.connection.getresponse()
        answer = json.loads(response.read())
        self.answers.append((time.time(), response.status, answer))
        return response.status, answer

    def trickle(self, instances: list[dict[str, Any]], pause: float, limit: int = 5_000) -> None:
        """Keep sending the instances, round and round, in a thread until `stop` (at most `limit`)."""

        def run() -> None:
            for count in range(limit):
                if self._stop.wait(pause):
                    return
                self.post(instances[count % len(instances)])

        self._thread = threading.Thread(target=run, name="traffic", daemon=True)
        self._thread.start()

    def first_answer_by(self, model_version: str) -> float | None:
        """When a version first answered, or None."""
        return next((at for at, _, body in self.answers if body.get("model_version") == model_version), None)

    def stop(self) -> None:
        """Stop the trickle and close the connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.connection.close()
