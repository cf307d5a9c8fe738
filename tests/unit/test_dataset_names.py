import pytest

from tasks.dataset import normalise_column_name


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
