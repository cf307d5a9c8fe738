"""The prediction page in a real browser, served by the real local server in front of a deployed model.

One server (`python -m deployments.local.serve`) serves a deployed Ames ridge champion and its page
at `GET /`; headless chromium (through Playwright) opens it as a person would, and every answer
is compared with what a direct `POST /predict` of the same values gets. A second, static web
server on another port serves the page that `python -m deployments.targets.page_file` writes, to show it
calling the API across origins (CORS).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Request

from deployments.lambda_handler.contract import ServingSchema
from deployments.lambda_package.function_artifact import build_function_zip
from deployments.local.local_target import LocalDeployer
from deployments.page import build_page
from deployments.page.form import build_form
from deployments.page.typical import typical_values
from tasks.core.dataset_spec import AMES_SPEC
from tasks.learning.data import normalise_columns, read_table
from tasks.steps.batch_steps import to_instances
from tests.conftest import PROJECT_ROOT
from tests.support.browser import chromium
from tests.support.processes import free_port, http_json, stop, wait_until

pytestmark = pytest.mark.integration
MODEL = "ames-test"  # the name inside the `ames_bundle` metadata


@dataclass(frozen=True)
class Site:
    """The API server, a static web server on another origin, and what stands behind them."""

    url: str
    static_url: str
    static_dir: Path
    bundle: Path
    schema: ServingSchema
    environment: dict[str, str]


def _serving(url: str, process: subprocess.Popen) -> bool:
    assert process.poll() is None, "the server exited"
    try:
        return http_json("GET", f"{url}/health", timeout=2)[0] == 200
    except OSError:
        return False


def _deployed_home(root: Path, bundle: Path, model: str, session_home: Path) -> Path:
    """A local home where the bundle is deployed as version 1 of `model`."""
    home = root / "home"
    (home / "cache").mkdir(parents=True)
    (session_home / "layers").mkdir(exist_ok=True)
    (home / "cache" / "layers").symlink_to(session_home / "layers")  # built once per session
    deployer = LocalDeployer(home, model, (home / "storage").as_uri())
    example = json.loads((bundle / "schema.json").read_text())["example"]
    deployer.deploy(build_function_zip(bundle, root / "v1.zip"), example, "1")
    return home


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, ames_bundle: Path, session_home: Path) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("page")
    home = _deployed_home(root, ames_bundle, MODEL, session_home)
    port, static_port = free_port(), free_port()
    url, static_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{static_port}"
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")}
    environment = {**clean, "MLOPS_HOME": str(home), "MLOPS_API_CORS_ORIGINS": static_url}
    static_dir = root / "static"
    static_dir.mkdir()
    processes: list[subprocess.Popen] = []
    try:
        with (root / "server.log").open("ab") as log:
            command = [sys.executable, "-m", "deployments.local.serve", "--port", str(port), "--model", MODEL]
            processes.append(
                subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=log, stderr=log)
            )
            static = [
                sys.executable,
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                "--directory",
                str(static_dir),
            ]
            processes.append(subprocess.Popen([*static, str(static_port)], stdout=log, stderr=log))
        wait_until(lambda: _serving(url, processes[0]), 60, "the server to serve")
        yield Site(url, static_url, static_dir, ames_bundle, ServingSchema.load(ames_bundle), environment)
    finally:
        for process in processes:
            stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, errors


def _predict(site: Site, instance: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return http_json("POST", f"{site.url}/predict", {"instances": [instance]})


def _fill(page: Page, site: Site, values: dict[str, Any]) -> None:
    """Type or choose each value with the keyboard focus on its input, as a person would."""
    kinds = {feature.name: feature.kind for feature in site.schema.features}
    for name, value in values.items():
        control = page.locator(f"#f-{name}")
        control.focus()
        if kinds[name] == "category":
            control.select_option(str(value))
        else:
            control.fill("")
            page.keyboard.type(str(value))


def _top_values(site: Site, source: dict[str, Any]) -> dict[str, Any]:
    return {field.name: source[field.name] for field in build_form(site.bundle).top if field.name in source}


def _typical_rest(site: Site) -> dict[str, Any]:
    """What the folded inputs start with: the typical values, as a direct request would send them."""
    typical = typical_values(site.bundle, site.schema)
    numeric = set(site.schema.numeric)
    rest = [field.name for field in build_form(site.bundle).more]
    return {
        name: float(typical[name].text) if name in numeric else typical[name].text
        for name in rest
        if typical[name].text
    }


def test_the_page_loads_from_the_server_and_asks_no_other_host(page: Page, site: Site) -> None:
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    response = page.goto(f"{site.url}/")
    assert response is not None
    assert response.status == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert len(response.body()) < 100 * 1024
    assert page.locator("h1").inner_text() == "Predict the sale price"
    top = build_form(site.bundle).top
    assert len(top) == 10
    for field in top:  # every input is reached through its label
        assert page.get_by_label(field.label, exact=False).first.get_attribute("name") == field.name
    assert page.locator("#more").get_attribute("open") is None  # the rest are folded away
    assert all(url.startswith(site.url) for url in requests), requests


def test_a_person_gets_the_prediction_a_direct_post_gets(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    example = site.schema.example or {}
    top = _top_values(site, example)
    _fill(page, site, top)
    numeric_top = next(name for name in top if name in site.schema.numeric)
    page.locator(f"#f-{numeric_top}").focus()
    page.keyboard.press("Enter")  # submits the form from the keyboard
    page.locator("#answer").wait_for(state="visible")
    status, direct = _predict(site, {**_typical_rest(site), **top})
    assert status == 200
    shown = float(page.locator("#prediction").get_attribute("data-value") or "nan")
    assert shown == direct["predictions"][0]
    meta = page.locator("#answer-meta").inner_text()
    assert f"{MODEL} version 1" in meta
    assert "request id" in meta


def test_a_wrong_value_shows_the_apis_message_next_to_its_field(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    example = site.schema.example or {}
    top = _top_values(site, example)
    numeric_top = next(name for name in top if name in site.schema.numeric)
    _fill(page, site, {**top, numeric_top: "large"})
    page.locator("#predict").click()
    slot = page.locator(f"#e-{numeric_top}")
    slot.wait_for(state="visible")
    status, direct = _predict(site, {**_typical_rest(site), **top, numeric_top: "large"})
    assert (status, direct["field"]) == (400, numeric_top)
    assert slot.inner_text() == direct["error"]
    assert page.locator(f"#f-{numeric_top}").get_attribute("aria-invalid") == "true"
    assert page.locator("#answer").is_hidden()

    # A folded input with a value far outside its training range: the details open on it.
    folded = next(field.name for field in build_form(site.bundle).more if field.kind == "number")
    page.locator(f"#f-{numeric_top}").fill(str(top[numeric_top]))
    page.locator("#more summary").click()
    page.locator(f"#f-{folded}").fill("1e30")
    page.locator("#more summary").click()  # folded again before the request
    page.locator("#predict").click()
    page.locator(f"#e-{folded}").wait_for(state="visible")
    assert "far outside the training range" in page.locator(f"#e-{folded}").inner_text()
    assert page.locator("#more").get_attribute("open") is not None
    assert page.locator(f"#e-{numeric_top}").is_hidden()


def test_each_dropdown_lists_exactly_the_schemas_categories(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    categorical = [feature for feature in site.schema.features if not feature.is_number]
    assert categorical
    for feature in categorical:
        options = page.locator(f"#f-{feature.name} option")
        values = options.evaluate_all("(options) => options.map((option) => option.value)")
        assert values[0] == ""  # "(not given)": the model imputes it
        assert values[1:] == list(feature.categories), feature.name


def test_the_answer_names_the_inputs_the_model_filled_in(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/")
    example = site.schema.example or {}
    top = _top_values(site, example)
    left_empty = [name for name in top if name in site.schema.numeric][:2]
    given = {name: value for name, value in top.items() if name not in left_empty}
    _fill(page, site, given)
    page.locator("#predict").click()
    page.locator("#answer").wait_for(state="visible")
    status, direct = _predict(site, {**_typical_rest(site), **given})
    assert status == 200
    imputed = direct["imputed_fields"][0]
    assert set(left_empty) <= set(imputed)
    labels = {field.name: field.label for field in build_form(site.bundle).fields}
    notes = page.locator("#notes").inner_text()
    assert notes.startswith(f"The model filled in {len(imputed)} inputs that were left empty: ")
    assert all(labels[name] in notes for name in imputed)
    assert float(page.locator("#prediction").get_attribute("data-value") or "nan") == direct["predictions"][0]


def test_an_input_beyond_the_training_range_is_priced_with_a_caution(page: Page, site: Site) -> None:
    """A house bigger than any the model learnt from gets its price and a note saying so."""
    page.goto(f"{site.url}/")
    top = _top_values(site, site.schema.example or {})
    area = next(feature for feature in site.schema.features if feature.name == "gr_liv_area")
    assert area.name in top
    assert area.maximum is not None
    given = {**top, area.name: int(area.maximum) + 1642}
    _fill(page, site, given)
    page.locator("#predict").click()
    page.locator("#answer").wait_for(state="visible")
    status, direct = _predict(site, {**_typical_rest(site), **given})
    assert status == 200
    assert direct["outside_training"] == [[area.name]]
    notes = page.locator("#notes")
    label = next(field.label for field in build_form(site.bundle).fields if field.name == area.name)
    caution = f"Outside the range the model was trained on: {label} {given[area.name]}. The answer is"
    assert notes.inner_text().startswith(f"{caution} an extrapolation")
    assert "caution" in (notes.get_attribute("class") or "")
    assert float(page.locator("#prediction").get_attribute("data-value") or "nan") == direct["predictions"][0]

    _fill(page, site, {area.name: int(area.maximum)})  # the largest trained on: no caution
    page.locator("#predict").click()
    page.wait_for_function("() => !document.getElementById('notes').classList.contains('caution')")
    assert not notes.inner_text().startswith("Outside the range")


def _ames_rows(ames_csv: Path, count: int) -> list[str]:
    with ames_csv.open(encoding="utf-8-sig") as handle:
        return [next(handle) for _ in range(count + 1)]


def _score_file(page: Page, csv_path: Path) -> list[dict[str, str]]:
    page.locator("#csv").set_input_files(str(csv_path))
    page.locator("#score").click()
    link = page.locator("#download")
    link.wait_for(state="visible", timeout=30_000)
    with page.expect_download() as download:
        link.click()
    return list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))


def test_a_csv_upload_returns_one_prediction_per_row(
    page: Page, site: Site, ames_csv: Path, tmp_path: Path
) -> None:
    lines = _ames_rows(ames_csv, 30)
    header = next(csv.reader([lines[0]]))
    bad, unseen, huge = 5, 9, 12  # data rows (0-based): a wrong value, an unseen neighbourhood, a huge house
    rows = [next(csv.reader([line])) for line in lines[1:]]
    rows[bad][header.index("Gr Liv Area")] = "large"
    rows[unseen][header.index("Neighborhood")] = "Old Town"
    rows[huge][header.index("Gr Liv Area")] = "6000"
    upload = tmp_path / "houses.csv"
    with upload.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])
    page.goto(f"{site.url}/")
    scored = _score_file(page, upload)

    assert [row["line"] for row in scored] == [str(line) for line in range(2, 32)]
    frame = normalise_columns(read_table(str(upload), AMES_SPEC.missing_values))
    instances = [
        {key: value.strip() if isinstance(value, str) else value for key, value in instance.items()}
        for instance in to_instances(frame, site.schema)
    ]
    good = [index for index in range(30) if index != bad]
    status, direct = http_json("POST", f"{site.url}/predict", {"instances": [instances[i] for i in good]})
    assert status == 200
    assert [float(scored[i]["prediction"]) for i in good] == direct["predictions"]
    assert scored[bad]["prediction"] == ""
    assert scored[bad]["error"] == "field 'gr_liv_area' must be a number, got string"
    assert scored[unseen]["unknown_categories"] == "neighborhood"
    assert [scored[i]["imputed_fields"] for i in good] == [" ".join(f) for f in direct["imputed_fields"]]
    assert [scored[i]["outside_training"] for i in good] == [" ".join(f) for f in direct["outside_training"]]
    assert "gr_liv_area" in scored[huge]["outside_training"].split()
    status_text = page.locator("#file-status").inner_text()
    assert status_text.startswith("Scored 29 of 30 rows of houses.csv in 2 requests. 1 failed: line 7: ")
    assert "Order, PID and SalePrice" in status_text  # columns that are no model input


def test_the_static_page_calls_the_api_from_another_origin(page: Page, site: Site) -> None:
    written = site.static_dir / "index.html"
    command = [
        sys.executable,
        "-m",
        "deployments.targets.page_file",
        "--out",
        str(written),
        "--bundle",
        str(site.bundle),
    ]
    completed = subprocess.run(  # noqa: PLW1510 - the return code is asserted
        [*command, "--api-url", site.url],
        cwd=PROJECT_ROOT,
        env=site.environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"wrote {written} (")
    page.goto(f"{site.static_url}/index.html")
    top = _top_values(site, site.schema.example or {})
    _fill(page, site, top)
    page.locator("#predict").click()
    page.locator("#answer").wait_for(state="visible")
    status, direct = _predict(site, {**_typical_rest(site), **top})
    assert status == 200
    assert float(page.locator("#prediction").get_attribute("data-value") or "nan") == direct["predictions"][0]


def test_under_jwt_the_page_sends_the_token_it_was_given(page: Page, site: Site) -> None:
    (site.static_dir / "jwt.html").write_text(build_page(site.bundle, site.url, "jwt"), encoding="utf-8")
    page.goto(f"{site.static_url}/jwt.html#access_token=token-from-the-sign-in&token_type=Bearer")
    assert page.evaluate("location.hash") == ""  # the token leaves the address bar at once
    assert page.locator("#token").input_value() == "token-from-the-sign-in"

    def predicted() -> Request:
        with page.expect_request(lambda request: request.method == "POST") as request:
            page.locator("#predict").click()
        page.locator("#answer").wait_for(state="visible")
        return request.value

    assert predicted().headers.get("authorization") == "Bearer token-from-the-sign-in"
    page.locator("#token").fill("a-pasted-token")
    assert predicted().headers.get("authorization") == "Bearer a-pasted-token"
    page.reload()  # kept for this tab
    assert page.locator("#token").input_value() == "a-pasted-token"


def test_a_classifier_page_shows_each_class_probability(
    browser: Browser, cancer_bundle: Path, session_home: Path, tmp_path: Path
) -> None:
    home = _deployed_home(tmp_path, cancer_bundle, "cancer-test", session_home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    clean = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")}
    command = [sys.executable, "-m", "deployments.local.serve", "--port", str(port), "--model", "cancer-test"]
    with (tmp_path / "server.log").open("ab") as log:
        server = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env={**clean, "MLOPS_HOME": str(home)}, stdout=log, stderr=log
        )
    try:
        wait_until(lambda: _serving(url, server), 60, "the server to serve")
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/")
        schema = ServingSchema.load(cancer_bundle)
        top = {field.name: (schema.example or {})[field.name] for field in build_form(cancer_bundle).top}
        for name, value in top.items():
            page.locator(f"#f-{name}").fill(str(value))
        page.locator("#predict").click()
        page.locator("#probabilities").wait_for(state="visible")
        rest = {
            name: float(value.text)
            for name, value in typical_values(cancer_bundle, schema).items()
            if name not in top and value.text
        }
        status, direct = http_json("POST", f"{url}/predict", {"instances": [{**rest, **top}]})
        assert status == 200
        label = direct["predictions"][0]
        assert page.locator("#prediction").get_attribute("data-value") == label
        rows = page.locator("#probabilities tr").all_inner_texts()
        shown = dict(row.split("\t") for row in rows[1:])
        expected = {name: f"{100 * share:.1f}%" for name, share in direct["probabilities"][0].items()}
        assert shown == expected
        context.close()
    finally:
        stop(server)
