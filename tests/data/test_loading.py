"""Reading and validating training tables: formats, sources and every bad-data case."""

from __future__ import annotations

import functools
import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deployments.lambda_handler.contract import ServingSchema
from tasks.core.data_source import MissingDataError, check_local_source
from tasks.core.dataset_spec import AMES_SPEC, DatasetSpec, DatasetSpecError, load_dataset_spec
from tasks.core.errors import is_transient
from tasks.learning.bundle import build_schema
from tasks.learning.data import (
    DataValidationError,
    describe_bounds,
    normalise_columns,
    prepare_data,
    read_table,
)
from tasks.learning.split import split_data
from tests.support.processes import free_port

SPEC = DatasetSpec(name="toy", target="Price", drop=[], categorical=[], task="regression")


def _toy_frame(rows: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "Lot Area": rng.integers(1000, 20000, rows),
            "1st Flr SF": rng.integers(300, 3000, rows),
            "Kind": rng.choice(["a", "b", "c"], rows),
            "Price": rng.normal(200_000, 30_000, rows).round(),
        }
    )


def _prepare(path: Path, spec: DatasetSpec = SPEC, min_rows: int = 50):
    return prepare_data(read_table(str(path), spec.missing_values), spec, str(path), min_rows)


@pytest.mark.parametrize("separator", [",", "\t", ";"])
def test_text_tables_are_read_with_any_separator(tmp_path: Path, separator: str) -> None:
    path = tmp_path / "toy.txt"
    _toy_frame().to_csv(path, sep=separator, index=False)
    data = _prepare(path)
    assert data.numeric == ["lot_area", "f_1st_flr_sf"]
    assert data.categorical == ["kind"]
    assert data.target == "price"
    assert len(data.frame) == 60


def test_parquet_and_gzip_give_the_same_table(tmp_path: Path) -> None:
    frame = _toy_frame()
    frame.to_parquet(tmp_path / "toy.parquet")
    with gzip.open(tmp_path / "toy.csv.gz", "wt") as handle:
        frame.to_csv(handle, index=False)
    from_parquet = _prepare(tmp_path / "toy.parquet").frame
    from_gzip = _prepare(tmp_path / "toy.csv.gz").frame
    pd.testing.assert_frame_equal(from_parquet, from_gzip)


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_source_is_read_through_fsspec(http_root: tuple[Path, str]) -> None:
    folder, url = http_root
    _toy_frame().to_csv(folder / "toy.tsv", sep="\t", index=False)
    data = prepare_data(read_table(f"{url}/toy.tsv", None), SPEC, url, 50)
    assert len(data.frame) == 60


def test_s3_source_follows_the_endpoint_variable(moto_endpoint: str) -> None:
    """A data source on S3 is read from the store `AWS_ENDPOINT_URL` names (moto here), gzip inferred."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="training-data")
    s3.put_object(
        Bucket="training-data",
        Key="toy.csv.gz",
        Body=gzip.compress(_toy_frame().to_csv(index=False).encode()),
    )
    source = "s3://training-data/toy.csv.gz"
    data = prepare_data(read_table(source, None), SPEC, source, 50)
    assert len(data.frame) == 60


def test_a_command_checks_a_local_data_file_before_it_starts_anything(tmp_path: Path) -> None:
    """A missing path or file:// URL is refused at once; a URL is read (and judged) when used."""
    present = tmp_path / "ames.csv"
    present.write_text("a,b\n1,2\n")
    check_local_source(str(present), "ames-housing")
    check_local_source(present.as_uri(), "ames-housing")
    check_local_source("s3://no-such-bucket/ames.csv", "ames-housing")
    refused = r"^cannot read .*nope\.csv: no such file \(data: MLOPS_DATA"
    for missing in (str(tmp_path / "nope.csv"), (tmp_path / "nope.csv").as_uri()):
        with pytest.raises(MissingDataError, match=refused):
            check_local_source(missing, "ames-housing")
    assert not is_transient(MissingDataError("x"))


def test_http_source_missing_or_unreachable_is_told_apart(http_root: tuple[Path, str]) -> None:
    """A 404 is a permanent data error; a server that cannot be reached is transient and says so."""
    _, url = http_root
    with pytest.raises(DataValidationError, match=r"cannot read .*/nope\.csv: no such file"):
        read_table(f"{url}/nope.csv")
    closed = f"http://127.0.0.1:{free_port()}/ames.csv"
    unreachable = r"cannot reach .*ames\.csv: .*set MLOPS_DATA_SOURCE"
    with pytest.raises(ConnectionError, match=unreachable) as failure:
        read_table(closed)
    assert is_transient(failure.value)


def test_ames_copy_reads_with_bom_and_na_as_category(ames_csv: Path) -> None:
    data = _prepare(ames_csv, AMES_SPEC)
    assert (len(data.frame), data.out_of_bounds) == (2925, 5)  # the houses above 4,000 sq ft
    assert data.frame["gr_liv_area"].max() <= 4000
    assert data.target == "sale_price"
    assert "order" not in data.frame.columns
    assert "pid" not in data.frame.columns
    assert "ms_sub_class" in data.categorical
    assert "f_1st_flr_sf" in data.numeric
    # "NA" means "no alley" in Ames, a category of its own, not a missing value.
    assert "NA" in set(data.frame["alley"])
    assert len(data.features) == 79


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("   \n\n", "is empty"),
        ("Lot Area,Price\n", "has a header but no data rows"),
    ],
)
def test_empty_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(DataValidationError, match=message):
        _prepare(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=r"cannot read .*nope\.csv: no such file"):
        _prepare(tmp_path / "nope.csv")


def test_missing_target_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    _toy_frame().drop(columns=["Price"]).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"target column 'price' not found .*columns are: lot_area"):
        _prepare(path)


def test_unparseable_numbers_name_column_and_rows(tmp_path: Path) -> None:
    frame = _toy_frame().astype({"Lot Area": object})
    frame.loc[3, "Lot Area"] = "12a"
    frame.loc[7, "Lot Area"] = "n/a?"
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        DataValidationError, match=r"'lot_area' has 2 values that are not numbers \(row 4: '12a', row 8"
    ):
        _prepare(path)


def test_unparseable_target_is_refused(tmp_path: Path) -> None:
    frame = _toy_frame().astype({"Price": object})
    frame.loc[0, "Price"] = "expensive"
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(
        DataValidationError, match=r"'price' has 1 values that are not numbers \(row 1: 'expensive'"
    ):
        _prepare(path)


def test_missing_target_values_are_refused(tmp_path: Path) -> None:
    frame = _toy_frame()
    frame.loc[5, "Price"] = np.nan
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataValidationError, match=r"target 'price' is missing in 1 rows \(row 6"):
        _prepare(path)


def test_non_finite_values_are_refused(tmp_path: Path) -> None:
    frame = _toy_frame().astype({"Lot Area": float})
    frame.loc[2, "Lot Area"] = np.inf
    path = tmp_path / "toy.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataValidationError, match=r"'lot_area' has non-finite values \(row 3"):
        _prepare(path)


def test_too_few_rows_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    _toy_frame(rows=20).to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="has 20 rows; at least 50 are needed"):
        _prepare(path)


def test_classification_needs_two_classes(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    _toy_frame().to_csv(path, index=False)
    spec = SPEC.model_copy(update={"target": "kind", "task": "classification"})
    with pytest.raises(DataValidationError, match=r"needs exactly 2 classes, found 3: 'a', 'b', 'c'"):
        _prepare(path, spec)


def test_unknown_spec_features_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    _toy_frame().to_csv(path, index=False)
    spec = DatasetSpec(target="Price", features=["Lot Area", "Garage"], drop=[], categorical=[])
    with pytest.raises(DataValidationError, match=r"columns \['garage'\] from the dataset spec"):
        _prepare(path, spec)


def test_ragged_rows_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    path.write_text("a,b,Price\n1,2,3\n1,2,3,4,5\n")
    with pytest.raises(DataValidationError, match="is not a readable table"):
        _prepare(path, min_rows=10)


def test_corrupt_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "toy.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(DataValidationError, match="is not a readable Parquet file"):
        _prepare(path)


def test_colliding_names_are_refused() -> None:
    with pytest.raises(DataValidationError, match="both normalise to 'lot_area'"):
        normalise_columns(pd.DataFrame({"Lot Area": [1], "lot_area": [2]}))


def test_empty_columns_are_dropped_and_reported(tmp_path: Path) -> None:
    frame = _toy_frame().assign(Nothing=np.nan)
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    data = _prepare(path)
    assert data.dropped_empty == ["nothing"]
    assert "nothing" not in data.frame.columns


def test_spec_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "spec.json"
    good.write_text('{"name": "churn", "target": "Churned", "task": "classification", "drop": ["Id"]}')
    spec = load_dataset_spec(good)
    assert (spec.target, spec.task, spec.drop) == ("churned", "classification", ["id"])
    bad = tmp_path / "bad.json"
    bad.write_text('{"target": "y", "task": "ranking"}')
    with pytest.raises(DatasetSpecError, match="not a valid dataset spec"):
        load_dataset_spec(bad)
    with pytest.raises(DatasetSpecError, match="no such file"):
        load_dataset_spec(tmp_path / "missing.json")


def _dated_frame(rows: int = 80) -> pd.DataFrame:
    frame = _toy_frame(rows)
    days = pd.date_range("2024-01-01", periods=rows, freq="D").strftime("%Y-%m-%d")
    return frame.assign(**{"Sold On": days}).sample(frac=1.0, random_state=1)  # shuffled: order by time


def test_the_time_column_orders_the_split_but_is_not_an_input(tmp_path: Path) -> None:
    path = tmp_path / "dated.csv"
    _dated_frame().to_csv(path, index=False)
    spec = SPEC.model_copy(update={"time_column": "sold_on"})
    data = _prepare(path, spec)
    assert "sold_on" not in data.features
    assert data.features == ["lot_area", "f_1st_flr_sf", "kind"]
    assert build_schema(data, data.frame).time_column == "sold_on"
    assert "sold_on" not in [feature.name for feature in build_schema(data, data.frame).features]
    split = split_data(data, "sold_on", 0.25, 42)
    assert split.method == "time:sold_on"
    assert split.train["sold_on"].max() < split.holdout["sold_on"].min()
    assert len(split.holdout) == 20


def test_time_feature_keeps_the_time_column_as_an_input(tmp_path: Path) -> None:
    path = tmp_path / "dated.csv"
    frame = _dated_frame()
    frame["Sold Year"] = (
        pd.to_datetime(frame["Sold On"]).dt.year + pd.to_datetime(frame["Sold On"]).dt.dayofyear / 1000
    )
    frame.drop(columns=["Sold On"]).to_csv(path, index=False)
    spec = SPEC.model_copy(update={"time_column": "sold_year", "time_feature": True})
    data = _prepare(path, spec)
    assert "sold_year" in data.numeric
    split = split_data(data, "sold_year", 0.25, 42)
    assert split.train["sold_year"].max() < split.holdout["sold_year"].min()


def test_bad_time_values_are_refused_naming_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "dated.csv"
    frame = _dated_frame()
    frame.iloc[3, frame.columns.get_loc("Sold On")] = "last tuesday"
    frame.to_csv(path, index=False)
    spec = SPEC.model_copy(update={"time_column": "sold_on"})
    with pytest.raises(DataValidationError, match=r"time column 'sold_on' has 1 values .* 'last tuesday'"):
        _prepare(path, spec)


def test_monitor_exclude_names_inputs_and_reaches_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    _toy_frame().to_csv(path, index=False)
    data = _prepare(path, SPEC.model_copy(update={"monitor_exclude": ["lot_area"]}))
    assert "lot_area" in data.features
    assert build_schema(data, data.frame).monitor_exclude == ["lot_area"]
    with pytest.raises(DataValidationError, match=r"columns \['nope'\] from the dataset spec"):
        _prepare(path, SPEC.model_copy(update={"monitor_exclude": ["nope"]}))


def _bounded(**bounds: list[float | None]) -> DatasetSpec:
    return DatasetSpec.model_validate({**SPEC.model_dump(), "row_bounds": bounds})


def test_row_bounds_leave_out_the_rows_outside_and_keep_missing_values(tmp_path: Path) -> None:
    frame = _toy_frame(80)
    frame.loc[3, "Lot Area"] = None
    path = tmp_path / "toy.csv"
    frame.to_csv(path, index=False)
    data = _prepare(path, _bounded(**{"Lot Area": [2000, 15000]}))
    area = frame["Lot Area"]
    inside = area.isna() | area.between(2000, 15000)
    assert 0 < (~inside).sum() < 40
    assert (len(data.frame), data.out_of_bounds) == (int(inside.sum()), int((~inside).sum()))
    kept = data.frame["lot_area"].reset_index(drop=True)
    pd.testing.assert_series_equal(
        kept, area[inside].astype("float64").reset_index(drop=True), check_names=False
    )
    assert data.row_bounds == {"lot_area": (2000.0, 15000.0)}
    # the bundle's schema carries them to the monitor, which reads them back as the contract's
    schema = ServingSchema.from_dict(json.loads(build_schema(data, data.frame).model_dump_json()))
    assert schema.row_bounds == (("lot_area", 2000.0, 15000.0),)
    with pytest.raises(
        DataValidationError, match=r"keeps \d+ rows within the spec's row_bounds; at least 50"
    ):
        _prepare(path, _bounded(**{"Lot Area": [None, 5000]}))


def test_bounds_read_as_words() -> None:
    assert [describe_bounds("x", *bounds) for bounds in ((None, 4000.0), (0.0, None), (1.5, 9.0))] == [
        "x at most 4000",
        "x at least 0",
        "x from 1.5 to 9",
    ]


def test_row_bounds_must_name_numeric_inputs_and_be_ordered(tmp_path: Path) -> None:
    path = tmp_path / "toy.csv"
    _toy_frame().to_csv(path, index=False)
    with pytest.raises(DataValidationError, match="row_bounds names 'kind', which is not a numeric input"):
        _prepare(path, _bounded(Kind=[0, 1]))
    with pytest.raises(DataValidationError, match="row_bounds names 'nope'"):
        _prepare(path, _bounded(Nope=[0, 1]))
    spec = tmp_path / "spec.json"
    for bounds, message in (
        ('{"Lot Area": [5, 1]}', "'Lot Area' has its low bound 5.0 above its high bound 1.0"),
        ('{"Lot Area": [null, null]}', "'Lot Area' has neither a low nor a high bound"),
        ('{"Lot Area": [1]}', "row_bounds.Lot Area"),
        ('{"Lot Area": ["big", 3]}', "row_bounds.Lot Area"),
    ):
        spec.write_text(f'{{"target": "Price", "row_bounds": {bounds}}}')
        with pytest.raises(DatasetSpecError, match=message):
            load_dataset_spec(spec)


def test_the_ames_spec_keeps_the_sale_date_out_of_the_drift_verdict() -> None:
    assert AMES_SPEC.monitor_exclude == ["yr_sold", "mo_sold"]


def _twins_frame(groups: int = 120, copies: int = 3) -> pd.DataFrame:
    """Every input row repeated `copies` times, the copies labelled differently (`yes`, `no`, ...)."""
    rng = np.random.default_rng(7)
    inputs = pd.DataFrame(
        {
            "Tenure": rng.integers(1, 60, groups),
            "Monthly Fee": rng.normal(50, 15, groups).round(2),
            "Plan": rng.choice(["basic", "plus", "pro"], groups),
        }
    )
    frame = pd.concat([inputs] * copies, ignore_index=True)
    labels = np.resize(np.array(["yes", "no"]), len(frame))
    labels[frame.index // groups == 0] = "yes"  # the first copy of every row says yes, the second no
    labels[frame.index // groups == 1] = "no"
    return frame.assign(Churned=labels).sample(frac=1.0, random_state=3)  # twins scattered in the file


def test_the_holdout_never_splits_twins_whatever_their_labels(tmp_path: Path) -> None:
    path = tmp_path / "twins.csv"
    frame = _twins_frame()
    frame.to_csv(path, index=False)
    spec = DatasetSpec(name="twins", target="Churned", task="classification", drop=[], categorical=[])
    data = _prepare(path, spec)

    split = split_data(data, None, 0.25, 42)

    assert split.method == "hash:42"
    inputs = data.features
    train_keys = set(split.train[inputs].itertuples(index=False, name=None))
    holdout_keys = set(split.holdout[inputs].itertuples(index=False, name=None))
    assert train_keys.isdisjoint(holdout_keys)  # no input seen in training is asked about in the holdout
    for part in (split.train, split.holdout):  # each row with all three of its copies
        assert set(part.groupby(inputs).size()) == {3}
    assert split.holdout[data.target].nunique() == 2  # twins of both labels went to the holdout together
    assert 0.1 < len(split.holdout) / len(data.frame) < 0.4

    flipped = data.frame.assign(**{data.target: 1 - data.frame[data.target]})
    same = split_data(replace(data, frame=flipped), None, 0.25, 42)
    assert same.holdout[inputs].equals(split.holdout[inputs])  # the target takes no part in the split


def test_row_bounds_that_leave_one_class_are_an_error(tmp_path: Path) -> None:
    frame = _toy_frame(120)
    frame["Sold"] = np.where(frame["Lot Area"] > 10_000, "yes", "no")
    path = tmp_path / "toy.csv"
    frame.drop(columns="Price").to_csv(path, index=False)
    spec = DatasetSpec.model_validate(
        {
            "name": "toy",
            "target": "Sold",
            "task": "classification",
            "row_bounds": {"Lot Area": [None, 10_000]},
        }
    )
    with pytest.raises(
        DataValidationError, match="keeps only one class of 'sold' within the spec's row_bounds"
    ):
        _prepare(path, spec)


def test_a_schema_from_before_row_bounds_has_none() -> None:
    """An older bundle's schema.json has no `row_bounds`: the monitor sees no bounds, not an error."""
    schema = {
        "task": "regression",
        "target": "price",
        "features": [{"name": "x", "type": "number", "nullable": False}],
    }
    assert ServingSchema.from_dict(schema).row_bounds == ()
    assert ServingSchema.from_dict({**schema, "row_bounds": {"x": [None, "4000"]}}).row_bounds == (
        ("x", None, 4000.0),
    )
