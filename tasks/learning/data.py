"""Load a training table from a path or URL, normalise its columns and validate it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import fsspec
import numpy as np
import pandas as pd

from deployments.lambda_handler.contract import MISSING_CATEGORY
from tasks.core.data_source import missing_file
from tasks.core.dataset_spec import DatasetSpec, normalise_column_name
from tasks.core.errors import UserError
from tasks.core.metric_names import DEFAULT_METRIC, TaskType
from tasks.core.row_bounds import rows_within
from tasks.core.storage import storage_options

PARQUET_SUFFIXES = (".parquet", ".pq")
NUMERIC_SHARE_FOR_TYPO = 0.9
MAX_EXAMPLES = 3


class DataValidationError(UserError, ValueError):
    """The training data cannot be used; the message says where and why."""


@dataclass(frozen=True)
class PreparedData:
    """A validated table: normalised column names, typed features and an encoded target."""

    frame: pd.DataFrame
    target: str
    task: TaskType
    numeric: list[str]
    categorical: list[str]
    classes: list[str] = field(default_factory=list)
    dropped_empty: list[str] = field(default_factory=list)
    time_column: str | None = None  # orders the rows; an input only when also numeric or categorical
    monitor_exclude: list[str] = field(default_factory=list)
    metric: str = ""  # what ranks and gates models (the spec's primary metric)
    row_bounds: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    out_of_bounds: int = 0  # source rows left out by `row_bounds`

    def __post_init__(self) -> None:
        if not self.metric:
            object.__setattr__(self, "metric", DEFAULT_METRIC[self.task])

    @property
    def features(self) -> list[str]:
        """Model inputs in table order."""
        inputs = {*self.numeric, *self.categorical}
        return [name for name in self.frame.columns if name in inputs]


def read_table(source: str, missing_values: list[str] | None = None) -> pd.DataFrame:
    """Read CSV, tab-separated text or Parquet from a local path or any fsspec URL.

    Text is read as strings so that values are typed (and typos caught) by `prepare_data`.
    """
    try:
        with fsspec.open(source, "rb", compression="infer", **storage_options(source)) as handle:
            raw = handle.read()
    except FileNotFoundError as error:
        cause = error.__cause__  # fsspec's HTTP filesystem reports a failed connection this way too
        if isinstance(cause, OSError) and not isinstance(cause, FileNotFoundError):
            msg = f"cannot reach {source}: {cause}; without network access, set MLOPS_DATA_SOURCE to a copy"
            raise ConnectionError(msg) from cause
        raise DataValidationError(missing_file(source)) from None
    if not raw.strip():
        msg = f"{source} is empty"
        raise DataValidationError(msg)
    path = source.split("?", 1)[0].lower().removesuffix(".gz")
    if path.endswith(PARQUET_SUFFIXES):
        return _read_parquet(source, raw)
    return _read_text(source, raw, missing_values)


def _read_parquet(source: str, raw: bytes) -> pd.DataFrame:
    try:
        return pd.read_parquet(io.BytesIO(raw))
    except Exception as error:  # noqa: BLE001 - pyarrow raises many unrelated types for bad files
        msg = f"{source} is not a readable Parquet file: {error}"
        raise DataValidationError(msg) from None


def _read_text(source: str, raw: bytes, missing_values: list[str] | None) -> pd.DataFrame:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        msg = f"{source} is not UTF-8 text (byte {error.start}); expected CSV, TSV or Parquet"
        raise DataValidationError(msg) from None
    header = text.split("\n", 1)[0]
    try:
        separator = csv.Sniffer().sniff(header, delimiters=",\t;|").delimiter
    except csv.Error:
        separator = ","
    try:
        return pd.read_csv(
            io.StringIO(text),
            sep=separator,
            dtype=str,
            keep_default_na=missing_values is None,
            na_values=missing_values,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        msg = f"{source} is not a readable table: {error}"
        raise DataValidationError(msg) from None


def normalise_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Rename every column to its safe identifier, refusing names that collide."""
    renamed: dict[str, object] = {}
    for column in frame.columns:
        name = normalise_column_name(column)
        if name in renamed:
            msg = f"columns {renamed[name]!r} and {column!r} both normalise to {name!r}"
            raise DataValidationError(msg)
        renamed[name] = column
    return frame.set_axis(list(renamed), axis=1)


def _row_examples(values: pd.Series, bad: pd.Series) -> str:
    positions = np.flatnonzero(bad.to_numpy())[:MAX_EXAMPLES]
    return ", ".join(f"row {pos + 1}: {values.iloc[pos]!r}" for pos in positions)


def _parse_numbers(column: str, values: pd.Series, *, strict: bool) -> pd.Series | None:
    """Numbers from a column, None when it is text, or an error for a few stray values."""
    if pd.api.types.is_bool_dtype(values):
        values = values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(values, errors="coerce")
        unparsed = numbers.isna() & values.notna()
        if unparsed.any():
            share = 1.0 - unparsed.sum() / max(values.notna().sum(), 1)
            if not strict and share < NUMERIC_SHARE_FOR_TYPO:
                return None
            msg = (
                f"column {column!r} has {int(unparsed.sum())} values that are not numbers "
                f"({_row_examples(values, unparsed)})"
            )
            raise DataValidationError(msg)
    infinite = np.isinf(numbers.to_numpy(dtype="float64", na_value=np.nan))
    if infinite.any():
        msg = f"column {column!r} has non-finite values ({_row_examples(values, pd.Series(infinite))})"
        raise DataValidationError(msg)
    return numbers.astype("float64")


def _encode_target(data: pd.DataFrame, spec: DatasetSpec) -> tuple[pd.Series, list[str]]:
    values = data[spec.target]
    missing = values.isna()
    if missing.any():
        examples = _row_examples(values, missing)
        msg = f"target {spec.target!r} is missing in {int(missing.sum())} rows ({examples})"
        raise DataValidationError(msg)
    if spec.task == "regression":
        numbers = _parse_numbers(spec.target, values, strict=True)
        assert numbers is not None
        return numbers, []
    labels = values.astype(str).str.strip()
    classes = sorted(labels.unique(), key=_natural_key)
    if len(classes) != 2:  # noqa: PLR2004 - binary classification
        shown = ", ".join(repr(item) for item in classes[:5])
        msg = f"classification target {spec.target!r} needs exactly 2 classes, found {len(classes)}: {shown}"
        raise DataValidationError(msg)
    return (labels == classes[1]).astype("int64"), classes


def _natural_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)


def _input_columns(data: pd.DataFrame, spec: DatasetSpec, source: str) -> list[str]:
    """The spec's inputs: its features (all columns by default) less dropped, target and time."""
    candidates = spec.features if spec.features is not None else list(data.columns)
    named = [*candidates, *spec.monitor_exclude, *([spec.time_column] if spec.time_column else [])]
    absent = [name for name in named if name not in data.columns]
    if absent:
        msg = f"columns {absent} from the dataset spec are not in {source}"
        raise DataValidationError(msg)
    left_out = {*spec.drop, spec.target}
    if spec.time_column is not None and not spec.time_feature:
        left_out.add(spec.time_column)
    return [name for name in candidates if name not in left_out]


def prepare_data(raw: pd.DataFrame, spec: DatasetSpec, source: str, min_rows: int) -> PreparedData:
    """Normalise, select, type and validate a raw table according to the spec."""
    data = normalise_columns(raw)
    if data.empty:
        msg = f"{source} has a header but no data rows"
        raise DataValidationError(msg)
    if spec.target not in data.columns:
        msg = f"target column {spec.target!r} not found in {source}; columns are: {', '.join(data.columns)}"
        raise DataValidationError(msg)
    if len(data) < min_rows:
        msg = f"{source} has {len(data)} rows; at least {min_rows} are needed to train"
        raise DataValidationError(msg)
    features = _input_columns(data, spec, source)
    target, classes = _encode_target(data, spec)
    columns: dict[str, pd.Series] = {}
    numeric: list[str] = []
    categorical: list[str] = []
    empty: list[str] = []
    for name in features:
        values = data[name]
        if values.isna().all():
            empty.append(name)
            continue
        numbers = None if name in spec.categorical else _parse_numbers(name, values, strict=False)
        if numbers is None:
            columns[name] = values.astype("string").str.strip().fillna(MISSING_CATEGORY).astype(object)
            categorical.append(name)
        else:
            columns[name] = numbers
            numeric.append(name)
    if not columns:
        msg = f"{source} has no usable feature columns besides the target {spec.target!r}"
        raise DataValidationError(msg)
    if spec.time_column is not None and spec.time_column not in columns:
        columns[spec.time_column] = time_values(spec.time_column, data[spec.time_column])
    columns[spec.target] = target
    frame = pd.DataFrame(columns).reset_index(drop=True)
    inside = _inside_bounds(frame, spec.row_bounds, numeric, source)
    frame = _bounded_rows(frame[inside].reset_index(drop=True), spec, source, min_rows)
    excluded = [name for name in spec.monitor_exclude if name in (*numeric, *categorical)]
    return PreparedData(
        frame,
        spec.target,
        spec.task,
        numeric,
        categorical,
        classes,
        empty,
        spec.time_column,
        excluded,
        spec.primary_metric,
        dict(spec.row_bounds),
        int((~inside).sum()),
    )


def _bounded_rows(frame: pd.DataFrame, spec: DatasetSpec, source: str, min_rows: int) -> pd.DataFrame:
    """The rows within the bounds, if enough of them are left (and both classes, for classification)."""
    if len(frame) < min_rows:
        msg = f"{source} keeps {len(frame)} rows within the spec's row_bounds; at least {min_rows} are needed"
        raise DataValidationError(msg)
    if spec.task == "classification" and frame[spec.target].nunique() < 2:  # noqa: PLR2004 - both classes
        msg = f"{source} keeps only one class of {spec.target!r} within the spec's row_bounds"
        raise DataValidationError(msg)
    return frame


def _inside_bounds(
    frame: pd.DataFrame, bounds: dict[str, tuple[float | None, float | None]], numeric: list[str], source: str
) -> np.ndarray:
    """Rows whose bounded inputs lie within their bounds; a missing value is within."""
    for name in bounds:
        if name not in numeric:
            msg = f"row_bounds names {name!r}, which is not a numeric input of {source}"
            raise DataValidationError(msg)
    return rows_within(frame, bounds)


def describe_bounds(name: str, low: float | None, high: float | None) -> str:
    """A bound in words: `gr_liv_area at most 4000`, `fee at least 0`, `age from 18 to 99`."""
    if low is None:
        return f"{name} at most {high:g}"
    if high is None:
        return f"{name} at least {low:g}"
    return f"{name} from {low:g} to {high:g}"


def time_values(column: str, values: pd.Series) -> pd.Series:
    """A time column's values as numbers (years, epochs) or UTC timestamps; an error names bad rows."""
    numbers = _parse_numbers(column, values, strict=False)
    if numbers is not None:
        bad = numbers.isna()
        parsed: pd.Series = numbers
    else:
        text = values.astype("string").str.strip()
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        bad = parsed.isna()
    if bad.any():
        msg = (
            f"time column {column!r} has {int(bad.sum())} values that are neither numbers nor dates "
            f"({_row_examples(values, bad)})"
        )
        raise DataValidationError(msg)
    return parsed
