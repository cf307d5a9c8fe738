"""The ONNX model and its schema, loaded once per container."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime

from .contract import (
    CATEGORICAL_INPUT,
    METADATA_FILE,
    MODEL_FILE,
    NUMERIC_INPUT,
    SCHEMA_FILE,
    ServingSchema,
    packed_columns,
)
from .validation import FeatureRule, ValidatedBatch, rules_from_schema


@dataclass
class Predictions:
    """Model outputs for a batch, ready to serialise."""

    values: list[Any]
    probabilities: list[dict[str, float]] | None


class Model:
    """An onnxruntime session plus what the schema and metadata say about it."""

    def __init__(self, model_dir: Path) -> None:
        self.schema: dict[str, Any] = json.loads((model_dir / SCHEMA_FILE).read_text("utf-8"))
        self.spec = ServingSchema.from_dict(self.schema)
        metadata_path = model_dir / METADATA_FILE
        metadata = json.loads(metadata_path.read_text("utf-8")) if metadata_path.is_file() else {}
        self.name: str = metadata.get("model_name", "unknown")
        self.version: str = str(metadata.get("model_version") or "unregistered")
        self.task: str = self.spec.task
        self.classes: list[str] = list(self.spec.classes)
        self.rules: list[FeatureRule] = rules_from_schema(self.spec)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model_dir / MODEL_FILE), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.packed = self._check_packed_columns()

    def _check_packed_columns(self) -> bool:
        """Whether the graph takes the two packed matrices; their columns must be the schema's."""
        columns = packed_columns(self.session.get_modelmeta().custom_metadata_map)
        if columns is None:
            return False  # a graph exported with one input per feature
        expected = {NUMERIC_INPUT: self.spec.numeric, CATEGORICAL_INPUT: self.spec.categorical}
        for name, names in expected.items():
            if columns[name] != names:
                msg = f"{MODEL_FILE} and {SCHEMA_FILE} disagree on the {name} columns; rebuild the bundle"
                raise ValueError(msg)
        return True

    def _feeds(self, batch: ValidatedBatch) -> dict[str, np.ndarray]:
        if self.packed:
            return batch.feeds
        feeds = {}
        for name, columns in ((NUMERIC_INPUT, self.spec.numeric), (CATEGORICAL_INPUT, self.spec.categorical)):
            feeds.update({column: batch.feeds[name][:, [index]] for index, column in enumerate(columns)})
        return feeds

    def predict(self, batch: ValidatedBatch) -> Predictions:
        """Regression values, or class labels with per-class probabilities."""
        outputs = self.session.run(None, self._feeds(batch))
        if self.task == "regression":
            return Predictions([float(value) for value in np.asarray(outputs[0]).ravel()], None)
        labels = [self.classes[int(label)] for label in np.asarray(outputs[0]).ravel()]
        probabilities = [
            {name: float(p) for name, p in zip(self.classes, row, strict=True)}
            for row in np.asarray(outputs[1])
        ]
        return Predictions(labels, probabilities)
