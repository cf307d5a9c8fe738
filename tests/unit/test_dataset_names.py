from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from tasks.core.dataset_spec import DatasetSpec, DatasetSpecError, normalise_column_name
from tasks.learning.data_snapshot import write_snapshot


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Gr Liv Area", "gr_liv_area"),
        ("1st Flr SF", "f_1st_flr_sf"),
        ("3Ssn Porch", "f_3ssn_porch"),
        ("SalePrice", "sale_price"),
        ("MS SubClass", "ms_sub_class"),
        ("BsmtFin SF 1", "bsmt_fin_sf_1"),
        ("mean radius", "mean_radius"),
        ("Année", "annee"),
        ("  x--y  ", "x_y"),
    ],
)
def test_names_become_identifiers(raw: str, expected: str) -> None:
    name = normalise_column_name(raw)
    assert name == expected
    assert name.isidentifier()


def test_names_without_letters_or_digits_are_refused() -> None:
    with pytest.raises(ValueError, match="has no letters or digits"):
        normalise_column_name("%%")


@pytest.mark.parametrize("name", ["../../../x", "a/b", ".hidden", "", "-dash", "x" * 64, "naïve"])
def test_spec_names_follow_the_model_name_rule(name: str) -> None:
    with pytest.raises(ValidationError, match="use letters, digits"):
        DatasetSpec(name=name)


@pytest.mark.parametrize("name", ["ames-housing", "churn_v2", "sales.2026", "7eleven"])
def test_ordinary_spec_names_are_kept(name: str) -> None:
    assert DatasetSpec(name=name).name == name


def test_a_snapshot_never_leaves_the_storage_root(tmp_path: Path) -> None:
    storage = tmp_path / "deep" / "storage"
    frame = pd.DataFrame({"a": [1, 2]})
    with pytest.raises(DatasetSpecError, match=r"dataset name '\.\./\.\./x': use letters"):
        write_snapshot(frame, storage.as_uri(), "../../x")
    assert list(tmp_path.rglob("*")) == []
    snapshot = write_snapshot(frame, storage.as_uri(), "ames-housing")
    assert snapshot.url.startswith(f"{storage.as_uri()}/snapshots/ames-housing/")
