"""Serving latency: the ONNX handler against the scikit-learn pipeline, cold start, artifact sizes.

Run: `.venv/bin/python -m benchmarks.handler [--data PATH] [--rows 2000]`
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from deployments.lambda_package.function_artifact import (
    LAMBDA_PLATFORM,
    LAMBDA_PYTHON_VERSION,
    LAYER_PACKAGES,
    build_function_zip,
    build_layer,
    pinned_requirements,
)
from deployments.lambda_package.function_process import LocalFunction, http_event, unpack_artifact
from deployments.local.local_target import local_layers
from tasks.core.dataset_spec import AMES_SPEC
from tasks.core.settings import PROJECT_ROOT
from tasks.learning.bundle import BundleMetadata, MonitoringBaseline, build_schema, sha256_hex, write_bundle
from tasks.learning.candidate_selection import fit_candidate, select_deployable
from tasks.learning.data import prepare_data, read_table
from tasks.learning.importance import FeatureImportance, normalised_shares
from tests.support.handler import load_handler


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds."""
    values = np.array(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def timed(call: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of each call after a warm-up."""
    for _ in range(50):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def _valid(app: ModuleType, instance: dict) -> bool:
    try:
        app.validate_instances([instance], app.MODEL.rules)
    except app.RequestError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(PROJECT_ROOT.parent / "shared/data/AmesHousing.csv"))
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--family", default="gradient_boosting")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-serving-"))

    data = prepare_data(read_table(args.data, AMES_SPEC.missing_values), AMES_SPEC, args.data, 50)
    from tasks.learning.split import split_data

    split = split_data(data, None, 0.2, 42)
    candidate = fit_candidate(args.family, data, split, 42)
    deployable = select_deployable([candidate], data, split.holdout, 1e-4)
    metadata = BundleMetadata(
        model_name="ames-bench",
        model_version="1",
        run_id="bench",
        family=args.family,
        task="regression",
        data_digest="-",
        data_snapshot=args.data,
        metrics=deployable.onnx_metrics,
        onnx_sha256=sha256_hex(deployable.onnx_model),
        onnx_max_rel_error=deployable.parity.max_rel_error,
    )
    bundle = write_bundle(
        work / "bundle",
        deployable.onnx_model,
        build_schema(data, split.train),
        metadata,
        MonitoringBaseline(
            reference=split.train.head(10),
            holdout=split.holdout.head(10),
            importance=FeatureImportance(
                metric="rmse",
                repeats=0,
                rows=0,
                seconds=0.0,
                shares=normalised_shares(data.features, np.zeros(len(data.features))),
            ),
        ),
    )
    instances = [
        {k: (None if (isinstance(v, float) and np.isnan(v)) or v == "" else v) for k, v in row.items()}
        for row in split.holdout[data.features].to_dict("records")
    ]
    app = load_handler(bundle, work / "logs")
    instances = [instance for instance in instances if _valid(app, instance)]
    bodies = [json.dumps(instance) for instance in instances]
    index = iter(range(10**9))
    # the function's log lines (one per request) go to a file, as the local runner's do
    with (work / "function.log").open("w") as log, contextlib.redirect_stderr(log):
        handler_samples = timed(
            lambda: app.handler(http_event("POST", "/predict", bodies[next(index) % len(bodies)])),
            args.requests,
        )
    predict_only = timed(
        lambda: app.MODEL.predict(
            app.validate_instances([instances[next(index) % len(instances)]], app.MODEL.rules)
        ),
        args.requests,
    )
    pipeline = candidate.pipeline
    features = data.features

    def sklearn_request() -> None:
        instance = instances[next(index) % len(instances)]
        frame = pd.DataFrame([instance], columns=features)
        frame[data.numeric] = frame[data.numeric].astype("float64")
        frame[data.categorical] = frame[data.categorical].fillna("").astype(object)
        pipeline.predict(frame)

    sklearn_samples = timed(sklearn_request, args.requests)
    artifact = build_function_zip(bundle, work / "function.zip")
    code = unpack_artifact(artifact.path, work / "code")
    layers = local_layers(PROJECT_ROOT / ".mlops" / "cache" / "layers")
    cold = []
    for _ in range(5):
        function = LocalFunction(code, layers, {"STORAGE_URL": (work / "logs").as_uri()})
        cold.append(function.cold_start_seconds)
        function.close()
    lambda_layer = build_layer(
        PROJECT_ROOT / ".mlops" / "cache" / "layers",
        pinned_requirements(LAYER_PACKAGES),
        platform=LAMBDA_PLATFORM,
        python_version=LAMBDA_PYTHON_VERSION,
        zipped=True,
    )

    handler_p50, handler_p99 = percentiles(handler_samples)
    predict_p50, predict_p99 = percentiles(predict_only)
    sklearn_p50, sklearn_p99 = percentiles(sklearn_samples)
    print(f"model: {args.family} on Ames, {args.requests} single-row requests each")
    print(
        f"handler (JSON + validation + ONNX + log write): p50 {handler_p50:.3f} ms  p99 {handler_p99:.3f} ms"
    )
    print(
        f"validation + ONNX only:                         p50 {predict_p50:.3f} ms  p99 {predict_p99:.3f} ms"
    )
    print(
        f"sklearn pipeline (DataFrame + predict):         p50 {sklearn_p50:.3f} ms  p99 {sklearn_p99:.3f} ms"
    )
    print(f"speed-up, sklearn p50 / handler p50:            {sklearn_p50 / handler_p50:.1f}x")
    print(f"speed-up, sklearn p50 / validation+ONNX p50:    {sklearn_p50 / predict_p50:.1f}x")
    print(
        f"cold start in a fresh process (import + load):  median {statistics.median(cold):.3f} s, max {max(cold):.3f} s"
    )
    print(f"function zip:                                   {artifact.size / 1024:.1f} KiB")
    print(
        f"Lambda layer ({LAMBDA_PLATFORM}, py{LAMBDA_PYTHON_VERSION}):  {lambda_layer.zip.size / 2**20:.1f} MiB zipped, "
        f"{lambda_layer.unpacked_bytes / 2**20:.1f} MiB unpacked"
    )


if __name__ == "__main__":
    main()
