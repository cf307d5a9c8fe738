"""Ground truth: upload true values for logged predictions, read a window's back and join them.

Labels are JSON Lines records `{"request_id": ..., "row": ..., "actual": ...}` stored in the
hour partition of the prediction they belong to,
`<storage>/labels/<model>/dt=<prediction day>/hour=<HH>/<upload>.jsonl`, so a window reads
only its own hours' labels. Objects of the older layout, `labels/<model>/dt=<upload
day>/<upload>.jsonl`, are still read (from the window's first day on). `row` is the
instance's index in its request (0 for single-instance requests). A later upload for the
same (request_id, row) replaces an earlier one.

Upload a CSV with columns `request_id`, `row` (optional) and `actual`:

    python -m monitoring.labels labels.csv [--model NAME] [--since-hours 168]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from deployments.lambda_handler.contract import ACTUAL, LABEL_FIELDS, ServingSchema
from monitoring.labels.label_csv import LabelError, header_columns
from monitoring.labels.label_read import LabelReadStats, read_window_labels
from monitoring.labels.label_rules import LabelRules
from monitoring.labels.label_upload import DEFAULT_SINCE_HOURS, LabelUpload, store_labels
from monitoring.logs.window import Window

__all__ = [
    "LabelError",
    "LabelReadStats",
    "join_labels",
    "read_labels",
    "read_window_labels",
    "store_labels",
    "upload_labels",
]


def read_labels(
    storage_url: str,
    model_name: str,
    window: Window,
    now: datetime | None = None,
    schema: ServingSchema | None = None,
) -> pd.DataFrame:
    """The window's labels (valid ones, later uploads winning); with a schema, `actual` is checked too."""
    rules = LabelRules(None) if schema is None else LabelRules.for_schema(schema)
    labels, _ = read_window_labels(storage_url, model_name, window, rules, now=now)
    return labels


def join_labels(logs: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Logged rows with an `actual` column (null where no label has arrived)."""
    if labels.empty:
        return logs.assign(actual=pd.Series([None] * len(logs), dtype=object))
    return logs.merge(labels[list(LABEL_FIELDS)], on=["request_id", "row"], how="left")


def labelled_rows(keys: pa.Table, labels: pd.DataFrame) -> pd.DataFrame:
    """The rows of `keys` that have a label, with `actual` joined; no unlabelled row leaves Arrow."""
    if labels.empty:
        return join_labels(keys.slice(0, 0).to_pandas(), labels)
    ids = pa.array(labels["request_id"], pa.string())
    joined = join_labels(keys.filter(pc.is_in(keys.column("request_id"), value_set=ids)).to_pandas(), labels)
    return joined[joined[ACTUAL].notna()].reset_index(drop=True)


def _schema_for(schema_or_task: ServingSchema | str) -> ServingSchema:
    if isinstance(schema_or_task, ServingSchema):
        return schema_or_task
    if schema_or_task != "regression":
        msg = "classification labels are checked against the classes: pass the model's ServingSchema"
        raise ValueError(msg)
    return ServingSchema(task="regression", target="", features=())


def upload_labels(
    frame: pd.DataFrame,
    storage_url: str,
    model_name: str,
    schema_or_task: ServingSchema | str,
    now: datetime | None = None,
    since_hours: int = DEFAULT_SINCE_HOURS,
) -> str:
    """Store a frame of labels, checked as the command checks a CSV; return where labels live.

    All or nothing: a frame with any label the command would refuse stores nothing (LabelError
    names the reasons), since a program that builds its labels should build them right.
    """
    with tempfile.TemporaryDirectory(prefix="labels-") as folder:
        path = Path(folder) / "labels.csv"
        frame.to_csv(path, index=False)
        upload = store_labels(
            path,
            storage_url,
            model_name,
            _schema_for(schema_or_task),
            since_hours=since_hours,
            now=now,
            all_or_nothing=True,
        )
    return upload.location


def report(upload: LabelUpload, csv_path: str) -> list[str]:
    """What an upload did, in a few lines: stored, refused by reason, and where each went."""
    first, last = (partition.split("/", 2)[-1] for partition in (upload.partitions[0], upload.partitions[-1]))
    span = first if first == last else f"{first} .. {last}"
    stored = (
        f"stored {upload.stored} of {upload.rows} labels from {csv_path} in {len(upload.partitions)} "
        f"prediction-hour partitions under {upload.location}/ ({span})"
    )
    lines = [stored]
    if upload.refused.total:
        lines.append(f"refused {upload.refused.total}: {upload.refused.text()}")
        lines.append(f"refused labels (first {len(upload.refused.sample)}): {upload.refused_sample_url}")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Upload a CSV of labels for the configured model."""
    from tasks.core.errors import run_command

    parser = argparse.ArgumentParser(description="Upload ground-truth labels for logged predictions.")
    parser.add_argument("csv", help="CSV with request_id, row (optional) and actual")
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    parser.add_argument(
        "--since-hours",
        type=int,
        default=DEFAULT_SINCE_HOURS,
        help=f"match labels to predictions logged this many hours back (default {DEFAULT_SINCE_HOURS})",
    )
    args = parser.parse_args(argv)

    def upload() -> None:
        if args.since_hours <= 0:
            msg = f"--since-hours must be a positive number of hours, got {args.since_hours}"
            raise LabelError(msg)
        header_columns(Path(args.csv))  # a file that is no labels CSV fails before the registry is asked
        from tasks.core.settings import load_settings
        from tasks.registry.model_registry import fetch_bundle

        settings = load_settings()
        model = args.model or settings.model_name
        with tempfile.TemporaryDirectory() as folder:
            bundle, _ = fetch_bundle(settings.tracking_uri, model, None, Path(folder))
            schema = ServingSchema.load(bundle)
        result = store_labels(Path(args.csv), settings.storage, model, schema, since_hours=args.since_hours)
        for line in report(result, args.csv):
            print(line)  # noqa: T201

    run_command(upload)


if __name__ == "__main__":
    main()
