"""Build a real model bundle from a CSV without MLflow, for serving and deployment tests."""

from __future__ import annotations

from pathlib import Path

from tasks.core.dataset_spec import DatasetSpec
from tasks.learning.bundle import (
    BundleMetadata,
    MonitoringBaseline,
    build_schema,
    reference_sample,
    sha256_hex,
    write_bundle,
)
from tasks.learning.candidate_selection import fit_candidate, select_deployable
from tasks.learning.data import prepare_data, read_table
from tasks.learning.importance import measure_importance
from tasks.learning.split import split_data


def make_bundle(
    csv: Path,
    spec: DatasetSpec,
    family: str,
    folder: Path,
    *,
    model_name: str = "test-model",
    model_version: str = "1",
) -> Path:
    """Fit one family, export it to ONNX and write the bundle files into `folder`."""
    data = prepare_data(read_table(str(csv), spec.missing_values), spec, str(csv), 50)
    split = split_data(data, spec.time_column, 0.2, 42)
    candidate = fit_candidate(family, data, split, 42)
    deployable = select_deployable([candidate], data, split.holdout, 1e-4)
    schema = build_schema(data, split.train)
    scores = (
        candidate.pipeline.predict(split.train[data.features])
        if data.task == "regression"
        else (candidate.pipeline.predict_proba(split.train[data.features])[:, 1])
    )
    metadata = BundleMetadata(
        model_name=model_name,
        model_version=model_version,
        run_id="test-run",
        family=family,
        task=data.task,
        data_digest="0" * 64,
        data_snapshot=str(csv),
        metrics=deployable.onnx_metrics,
        onnx_sha256=sha256_hex(deployable.onnx_model),
        onnx_max_rel_error=deployable.parity.max_rel_error,
    )
    baseline = MonitoringBaseline(
        reference=reference_sample(data, split.train, scores, 2000, 42),
        holdout=reference_sample(data, split.holdout, deployable.onnx_scores, 2000, 42),
        importance=measure_importance(
            candidate.pipeline, split.holdout, data.features, data.target, data.task, repeats=2, seed=42
        ),
    )
    return write_bundle(folder, deployable.onnx_model, schema, metadata, baseline)
