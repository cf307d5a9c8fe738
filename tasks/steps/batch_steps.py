"""Batch scoring through the live function, so batch predictions are validated and logged alike."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from deployments.lambda_handler.contract import BATCH, PREDICTION, ServingSchema
from deployments.lambda_handler.validation import RequestError, rules_from_schema, validate_instances
from deployments.targets.selection import target_for
from tasks.core.errors import TRANSIENT_RETRIES
from tasks.core.settings import Settings
from tasks.core.storage import filesystem, join_url, write_bytes
from tasks.learning.data import PARQUET_SUFFIXES, normalise_columns, read_table
from tasks.steps.prefect_artifacts import artifact_key
from tasks.steps.step import step

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz", *PARQUET_SUFFIXES)
BATCH_ROWS = 500  # per invocation; under the function's MAX_BATCH_ROWS default of 1000


@dataclass(frozen=True)
class BatchResult:
    """Where the scored rows and the rejected rows went."""

    output_url: str
    rejected_url: str | None
    rows: int
    scored: int
    rejected: int


def source_files(source: str) -> list[str]:
    """The table files of a source: the file itself, or every table file under a prefix."""
    fs, path = filesystem(source)
    if fs.isdir(path):
        files = sorted(p for p in fs.find(path) if p.lower().endswith(TABLE_SUFFIXES))
        if not files:
            msg = f"no CSV, TSV or Parquet files under {source}"
            raise FileNotFoundError(msg)
        return [fs.unstrip_protocol(p) for p in files]
    return [source]


def _value(value: Any, *, numeric: bool) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if numeric and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value  # left as text: validation names the field
    return value


def to_instances(frame: pd.DataFrame, schema: ServingSchema) -> list[dict[str, Any]]:
    """Request instances from table rows: the schema's columns, numbers parsed, missing left out."""
    numeric = set(schema.numeric)
    columns = [name for name in schema.names if name in frame.columns]
    return [
        {
            key: _value(value, numeric=key in numeric)
            for key, value in row.items()
            if value is not None and value != "" and not (isinstance(value, float) and np.isnan(value))
        }
        for row in frame[columns].to_dict("records")
    ]


def split_valid(instances: list[dict[str, Any]], schema: ServingSchema) -> tuple[list[int], dict[int, str]]:
    """Positions of instances that pass the serving validation, and why each other one does not."""
    rules = rules_from_schema(schema)
    valid, rejected = [], {}
    for position, instance in enumerate(instances):
        try:
            validate_instances([instance], rules)
        except RequestError as error:
            rejected[position] = str(error).replace("instance 0: ", "")
            continue
        valid.append(position)
    return valid, rejected


def score_rows(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], instances: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Send instances in batches; return one result per instance (prediction, request id, row)."""
    results = []
    for start in range(0, len(instances), BATCH_ROWS):
        chunk = instances[start : start + BATCH_ROWS]
        response = invoke({"instances": chunk, "source": BATCH})
        body = json.loads(response["body"])
        if response["statusCode"] != 200:  # noqa: PLR2004
            msg = f"the live function refused a batch: {body.get('error')}"
            raise RuntimeError(msg)
        for row, prediction in enumerate(body["predictions"]):
            result = {PREDICTION: prediction, "request_id": body["request_id"], "row": row}
            if "probabilities" in body:
                result |= {f"probability_{k}": v for k, v in body["probabilities"][row].items()}
            results.append(result)
    return results


@step(**TRANSIENT_RETRIES)
def score_source(
    settings: Settings, model_name: str, source: str, schema: ServingSchema, run_name: str
) -> BatchResult:
    """Score every file of the source with the live function and write Parquet under `batch/`."""
    logger = get_run_logger()
    frames = [normalise_columns(read_table(path, [""])) for path in source_files(source)]
    frame = pd.concat(frames, ignore_index=True)
    instances = to_instances(frame, schema)
    valid, rejected = split_valid(instances, schema)
    with target_for(settings, model_name).live() as invoke:
        results = score_rows(invoke, [instances[position] for position in valid])
    scored = frame.iloc[valid].reset_index(drop=True).join(pd.DataFrame(results))
    base = join_url(settings.storage, "batch", model_name, run_name)
    buffer = io.BytesIO()
    scored.to_parquet(buffer, index=False)
    output_url = write_bytes(f"{base}.parquet", buffer.getvalue())
    rejected_url = None
    if rejected:
        rejects = frame.iloc[list(rejected)].assign(rejection=list(rejected.values()))
        buffer = io.BytesIO()
        rejects.astype(str).to_parquet(buffer, index=False)
        rejected_url = write_bytes(f"{base}-rejected.parquet", buffer.getvalue())
        logger.warning("Rejected %d rows that fail the input schema: %s", len(rejected), rejected_url)
    logger.info("Scored %d rows into %s", len(scored), output_url)
    create_markdown_artifact(
        key=artifact_key("batch", model_name),
        description="Batch scoring output",
        markdown=(
            f"# Scored {len(scored)} of {len(frame)} rows with {model_name}\n\n"
            f"- predictions: `{output_url}`\n"
            f"- rejected rows ({len(rejected)}, with the reason): `{rejected_url or 'none'}`\n"
            "- logged to the prediction logs with `source: batch` (the monitor leaves them out "
            "unless MLOPS_MONITOR_BATCH=include)"
        ),
    )
    return BatchResult(output_url, rejected_url, len(frame), len(scored), len(rejected))
