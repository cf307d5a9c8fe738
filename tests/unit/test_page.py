"""The prediction page as generated from real bundles: its form, its limits and what it may load."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from deployments.lambda_handler.contract import ServingSchema
from deployments.page import build_page
from deployments.page.form import build_form, label_for
from deployments.page.render import PageError
from deployments.page.typical import typical_values


def _policy(page: str) -> dict[str, str]:
    [content] = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    return dict(part.strip().split(" ", 1) for part in content.replace("&#x27;", "'").split(";"))


def _spec(page: str) -> dict:
    [data] = re.findall(r'<script type="application/json" id="page-spec">(.*?)</script>', page, re.DOTALL)
    return json.loads(data)


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_form_puts_the_most_important_inputs_first(ames_bundle: Path) -> None:
    shares = json.loads((ames_bundle / "importance.json").read_text())["shares"]
    form = build_form(ames_bundle)
    assert len(form.fields) == len(shares) == 79
    expected = sorted(shares, key=lambda name: -shares[name])[:10]
    assert [field.name for field in form.top] == expected
    assert all(not field.top for field in form.more)
    assert [field.importance for field in form.fields] == sorted(shares.values(), reverse=True)


def test_folded_inputs_start_with_the_typical_training_values(ames_bundle: Path) -> None:
    import pandas as pd

    schema = ServingSchema.load(ames_bundle)
    rows = pd.read_parquet(ames_bundle / "reference.parquet")
    typical = typical_values(ames_bundle, schema)
    assert typical["gr_liv_area"].text == str(round(rows["gr_liv_area"].median()))
    assert typical["gr_liv_area"].integer
    assert typical["neighborhood"].text == rows["neighborhood"].value_counts().idxmax()
    page = build_page(ames_bundle)
    folded = next(field for field in build_form(ames_bundle).more if field.kind == "number" and field.typical)
    assert f'id="f-{folded.name}"' in page
    assert re.search(rf'id="f-{folded.name}"[^>]*value="{re.escape(folded.typical)}"', page)


def test_every_input_is_labelled_and_hinted(ames_bundle: Path) -> None:
    page = build_page(ames_bundle)
    schema = ServingSchema.load(ames_bundle)
    for feature in schema.features:
        assert f'<label for="f-{feature.name}">' in page
        assert f'aria-describedby="h-{feature.name} e-{feature.name}"' in page
    assert label_for("gr_liv_area") == "Gr liv area"
    assert label_for("f_1st_flr_sf") == "1st flr sf"
    hints = {field.name: field.hint for field in build_form(ames_bundle).fields}
    features = {feature.name: feature for feature in schema.features}
    area = features["gr_liv_area"]
    assert hints["gr_liv_area"] == f"square feet · training range {area.minimum:.0f} to {area.maximum:.0f}"
    count = len(features["neighborhood"].categories)
    assert hints["neighborhood"].startswith(f"one of {count} categories seen in training")


def test_the_page_is_small_and_loads_nothing_from_elsewhere(ames_bundle: Path) -> None:
    page = build_page(ames_bundle)
    assert len(page.encode()) < 100 * 1024
    policy = _policy(page)
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    [style] = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    [script] = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert (policy["style-src"], policy["script-src"]) == (_digest(style), _digest(script))
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no other host, not even a font


def test_a_static_page_calls_the_api_it_was_made_for(ames_bundle: Path) -> None:
    page = build_page(ames_bundle, "https://abc123.execute-api.eu-west-1.amazonaws.com/")
    assert _policy(page)["connect-src"] == "https://abc123.execute-api.eu-west-1.amazonaws.com"
    assert _spec(page)["api"]["url"] == "https://abc123.execute-api.eu-west-1.amazonaws.com/"
    with pytest.raises(PageError, match="must be an http:// or https:// URL"):
        build_page(ames_bundle, "javascript:alert(1)")


def test_the_page_says_how_browser_users_get_in(ames_bundle: Path) -> None:
    assert 'id="token"' not in build_page(ames_bundle)
    assert '<input type="password" id="token"' in build_page(ames_bundle, auth="jwt")
    signed = build_page(ames_bundle, auth="iam")
    assert "which a browser cannot send" in signed
    assert "MLOPS_API_AUTH=jwt" in signed


def test_a_classifier_page_lists_its_classes(cancer_bundle: Path) -> None:
    spec = _spec(build_page(cancer_bundle))
    assert spec["model"]["classes"] == ["benign", "malignant"]
    assert spec["model"]["task"] == "classification"


def test_text_in_the_schema_cannot_break_out_of_the_page(ames_bundle: Path, tmp_path: Path) -> None:
    bundle = Path(shutil.copytree(ames_bundle, tmp_path / "bundle"))
    schema = json.loads((bundle / "schema.json").read_text())
    hostile = '</script><script>alert(1)</script>"><b>'
    neighborhood = next(item for item in schema["features"] if item["name"] == "neighborhood")
    neighborhood["categories"] = [*neighborhood["categories"], hostile]
    (bundle / "schema.json").write_text(json.dumps(schema))
    page = build_page(bundle)
    assert hostile not in page
    assert page.count("<script>") == 1
    assert page.count("</script>") == 2  # the data block and the script, nothing injected
