"""The function zip: deterministic, small, and runnable with nothing but its layer."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from deployments.lambda_package.function_artifact import build_function_zip, write_deterministic_zip
from deployments.lambda_package.function_process import (
    FunctionError,
    LocalFunction,
    http_event,
    unpack_artifact,
)


def test_same_bundle_gives_the_same_bytes(ames_bundle: Path, tmp_path: Path) -> None:
    first = build_function_zip(ames_bundle, tmp_path / "a" / "function.zip")
    second = build_function_zip(ames_bundle, tmp_path / "b" / "function.zip")
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.size < 2 * 1024 * 1024
    names = zipfile.ZipFile(first.path).namelist()
    assert names == sorted(names)
    assert {"lambda_handler/app.py", "model/model.onnx", "model/schema.json", "model/metadata.json"} <= set(
        names
    )
    assert not any(name.endswith((".pyc", ".parquet")) for name in names)


def test_code_sha256_is_base64_of_the_digest(ames_bundle: Path, tmp_path: Path) -> None:
    import base64
    import hashlib

    artifact = build_function_zip(ames_bundle, tmp_path / "function.zip")
    assert (
        artifact.code_sha256 == base64.b64encode(hashlib.sha256(artifact.path.read_bytes()).digest()).decode()
    )


def test_artifact_runs_isolated_with_its_layer(
    ames_bundle: Path, local_layers: list[Path], tmp_path: Path
) -> None:
    code = unpack_artifact(build_function_zip(ames_bundle, tmp_path / "function.zip").path, tmp_path / "code")
    with LocalFunction(code, local_layers, {"STORAGE_URL": (tmp_path / "logs").as_uri()}) as function:
        assert function.cold_start_seconds < 10
        health = json.loads(function.invoke(http_event("GET", "/health"))["body"])
        assert health["model_name"] == "ames-test"
        # the child really is isolated: the project's own venv packages are not importable
        probe = function.invoke(
            {"instances": [json.loads((ames_bundle / "schema.json").read_text())["example"]]}
        )
        assert probe["statusCode"] == 200


def test_missing_dependency_fails_as_on_lambda(
    ames_bundle: Path, local_layers: list[Path], tmp_path: Path
) -> None:
    code = unpack_artifact(build_function_zip(ames_bundle, tmp_path / "function.zip").path, tmp_path / "code")
    # without the layer, numpy and onnxruntime are missing: the cold start fails
    with pytest.raises(FunctionError, match="No module named 'numpy'"):
        LocalFunction(code, [], {"STORAGE_URL": (tmp_path / "logs").as_uri()})
    # a handler that imports a training library cannot load either, even though this venv has it
    (code / "lambda_handler" / "needs_pandas.py").write_text("import pandas\n")
    config = code / "lambda_handler" / "config.py"
    config.write_text(config.read_text() + "\nfrom . import needs_pandas  # noqa\n")
    with pytest.raises(FunctionError, match="No module named 'pandas'"):
        LocalFunction(code, local_layers, {"STORAGE_URL": (tmp_path / "logs").as_uri()})


def test_deterministic_zip_ignores_file_times(tmp_path: Path) -> None:
    import os

    source = tmp_path / "file.txt"
    source.write_text("same content")
    first = write_deterministic_zip({"x/file.txt": source}, tmp_path / "one.zip")
    os.utime(source, (1_000_000_000, 1_000_000_000))
    second = write_deterministic_zip({"x/file.txt": source}, tmp_path / "two.zip")
    assert first.sha256 == second.sha256
