"""The local target through its interface: rollback (listing, smoke test, unknown versions), settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deployments.lambda_package.function_artifact import build_function_zip
from deployments.lambda_package.function_process import http_event
from deployments.lambda_package.smoke import SmokeTestError
from deployments.local.local_target import LocalDeployer
from deployments.targets import rollback
from deployments.targets.selection import target_for
from tasks.core.settings import load_settings

MODEL = "ames-test"  # the name inside the `ames_bundle` metadata


def test_rollback_lists_moves_and_refuses_unknown_versions(
    mlops_env: Path, ames_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as nothing_yet:
        rollback.main(["1", "--model", MODEL])
    assert nothing_yet.value.code == 2
    assert "has no local function version 1; versions: none" in capsys.readouterr().err

    deployer = LocalDeployer(mlops_env / "home", MODEL, (mlops_env / "home" / "storage").as_uri())
    example = json.loads((ames_bundle / "schema.json").read_text())["example"]
    deployer.deploy(build_function_zip(ames_bundle, tmp_path / "function.zip"), example, "1")
    assert deployer.live_version() == "1"

    with pytest.raises(SystemExit) as unknown:
        rollback.main(["7", "--model", MODEL])
    assert unknown.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == "error: ames-test has no local function version 7; versions: 1"
    assert "Traceback" not in captured.err

    rollback.main(["1", "--model", MODEL])
    listing = capsys.readouterr().out
    assert "version 1: model v1" in listing
    assert "<- live" in listing
    assert "not a pin" in listing


def test_rollback_smoke_tests_the_version_first(mlops_env: Path, ames_bundle: Path, tmp_path: Path) -> None:
    """A published version that does not answer is never made live by a rollback."""
    deployer = LocalDeployer(mlops_env / "home", MODEL, (mlops_env / "home" / "storage").as_uri())
    example = json.loads((ames_bundle / "schema.json").read_text())["example"]
    deployer.deploy(build_function_zip(ames_bundle, tmp_path / "good.zip"), example, "1")
    broken = tmp_path / "broken-bundle"
    broken.mkdir()
    for name in ("schema.json", "metadata.json"):
        (broken / name).write_text((ames_bundle / name).read_text())
    (broken / "model.onnx").write_bytes(b"not an onnx model")
    with pytest.raises(SmokeTestError, match="failed to start"):
        deployer.deploy(build_function_zip(broken, tmp_path / "broken.zip"), example, "2")
    assert [(v.version, v.live) for v in deployer.versions()] == [("1", True), ("2", False)]

    with pytest.raises(SmokeTestError, match="failed to start"):
        deployer.rollback("2")
    assert deployer.live_version() == "1"
    result = deployer.rollback("1")
    assert (result.function_version, result.previous_version, result.changed) == ("1", "1", False)


def test_missing_fields_setting_reaches_the_deployed_function(
    mlops_env: Path, ames_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_MISSING_FIELDS", "reject")
    target = target_for(load_settings(), MODEL)
    example = json.loads((ames_bundle / "schema.json").read_text())["example"]
    target.deploy(build_function_zip(ames_bundle, tmp_path / "function.zip"), example, "1")
    with target.live() as invoke:
        refused = invoke(http_event("POST", "/predict", json.dumps({**example, "gr_liv_area": None})))
        answered = invoke(http_event("POST", "/predict", json.dumps(example)))
    assert refused["statusCode"] == 400
    assert "is required (MISSING_FIELDS=reject)" in json.loads(refused["body"])["error"]
    assert answered["statusCode"] == 200
