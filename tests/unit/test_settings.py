import re
from pathlib import Path

import pytest

from tasks.settings import AMES_SOURCE_URL, SettingsError, load_settings


def test_defaults_put_all_state_under_home(mlops_env: Path) -> None:
    settings = load_settings()
    home = (mlops_env / "home").resolve()
    assert settings.target == "local"
    assert settings.home == home
    assert settings.data_source == AMES_SOURCE_URL
    assert settings.storage == home.joinpath("storage").as_uri()
    assert settings.artifact_root == f"{settings.storage}/mlflow-artifacts"


def test_tracking_uri_defaults_to_sqlite_under_home(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    settings = load_settings()
    assert settings.tracking_uri == f"sqlite:///{(mlops_env / 'home').resolve() / 'mlflow.db'}"


def test_environment_and_dotenv_are_read(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (mlops_env / ".env").write_text("MLOPS_MODEL_NAME=from-dotenv\nMLOPS_PROMOTION_MARGIN=0.02\n")
    monkeypatch.setenv("MLOPS_STORAGE_URL", str(mlops_env / "store"))
    settings = load_settings()
    assert settings.model_name == "from-dotenv"
    assert settings.promotion_margin == pytest.approx(0.02)
    assert settings.storage == (mlops_env / "store").resolve().as_uri()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MLOPS_TARGET", "gcp", "MLOPS_TARGET='gcp'"),
        ("MLOPS_MODEL_NAME", "bad name!", "MLOPS_MODEL_NAME='bad name!'"),
        ("MLOPS_STORAGE_URL", "gs://bucket/x", "MLOPS_STORAGE_URL='gs://bucket/x'"),
        ("MLOPS_PROMOTION_MARGIN", "-1", "MLOPS_PROMOTION_MARGIN='-1'"),
        ("MLOPS_HOLDOUT_FRACTION", "half", "MLOPS_HOLDOUT_FRACTION='half'"),
        ("MLOPS_DATA_SOURCE", "", "MLOPS_DATA_SOURCE=''"),
    ],
)
def test_invalid_setting_names_the_variable(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=expected.replace("(", r"\(")):
        load_settings()


def test_aws_target_requires_s3_storage(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.setenv("MLOPS_AWS_REGION", "eu-west-1")
    with pytest.raises(SettingsError, match="MLOPS_STORAGE_URL must be an s3:// URL"):
        load_settings()


def test_aws_target_requires_region(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://bucket/prefix")
    with pytest.raises(SettingsError, match="MLOPS_AWS_REGION is required"):
        load_settings()


def test_aws_resources_are_named_from_settings(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.targets import aws_config

    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://acme-ml/prod/")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("MLOPS_CANARY_WEIGHT", "0.1")
    config = aws_config(load_settings(), "ames-price")
    assert (config.region, config.bucket, config.prefix) == ("eu-west-1", "acme-ml", "prod")
    assert (config.function_name, config.role_name, config.canary_weight) == (
        "ames-price-serving",
        "ames-price-serving-execution",
        0.1,
    )


def test_production_settings_reach_the_aws_config(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.targets import aws_config

    for variable, value in {
        "MLOPS_TARGET": "aws",
        "MLOPS_STORAGE_URL": "s3://acme-ml/prod",
        "MLOPS_AWS_REGION": "eu-west-1",
        "MLOPS_API_AUTH": "jwt",
        "MLOPS_API_JWT_ISSUER": "https://login.example.com/",
        "MLOPS_API_JWT_AUDIENCE": "web, mobile",
        "MLOPS_API_CORS_ORIGINS": "https://app.example.com",
        "MLOPS_LAMBDA_SUBNET_IDS": "subnet-1,subnet-2",
        "MLOPS_LAMBDA_SECURITY_GROUP_IDS": "sg-1",
        "MLOPS_LAMBDA_TRACING": "Active",
        "MLOPS_CANARY_BAKE_SECONDS": "120",
    }.items():
        monkeypatch.setenv(variable, value)
    config = aws_config(load_settings(), "ames-price")
    assert (config.api_auth, config.jwt_issuer, config.jwt_audience) == (
        "jwt",
        "https://login.example.com/",
        ("web", "mobile"),
    )
    assert (config.cors_origins, config.subnet_ids, config.security_group_ids) == (
        ("https://app.example.com",),
        ("subnet-1", "subnet-2"),
        ("sg-1",),
    )
    assert (config.tracing, config.canary_bake_seconds, config.throttle_rate) == ("Active", 120.0, 100.0)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"MLOPS_API_AUTH": "jwt"},
            "MLOPS_API_AUTH=jwt needs MLOPS_API_JWT_ISSUER and MLOPS_API_JWT_AUDIENCE",
        ),
        ({"MLOPS_API_AUTH": "basic"}, "MLOPS_API_AUTH='basic'"),
        (
            {"MLOPS_LAMBDA_SUBNET_IDS": "subnet-1"},
            "MLOPS_LAMBDA_SUBNET_IDS and MLOPS_LAMBDA_SECURITY_GROUP_IDS",
        ),
        ({"MLOPS_LAMBDA_TRACING": "on"}, "MLOPS_LAMBDA_TRACING='on'"),
        ({"MLOPS_API_THROTTLE_RATE": "0"}, "MLOPS_API_THROTTLE_RATE='0'"),
    ],
)
def test_bad_production_settings_are_named(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for variable, value in variables.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=re.escape(expected)):
        load_settings()


def test_run_parameters_override_settings_and_are_validated(mlops_env: Path) -> None:
    settings = load_settings()
    run = settings.with_values(drift_threshold=0.3, retrain_mode="inline", promotion_margin=None)
    assert (run.drift_threshold, run.retrain_mode) == (0.3, "inline")
    assert (run.promotion_margin, run.storage, run.tracking_uri) == (
        settings.promotion_margin,
        settings.storage,
        settings.tracking_uri,
    )
    assert settings.with_values(drift_threshold=None) is settings
    with pytest.raises(SettingsError, match="Invalid parameters: drift_threshold=3"):
        settings.with_values(drift_threshold=3)
