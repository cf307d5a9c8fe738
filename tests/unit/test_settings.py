import re
from pathlib import Path

import pytest

from tasks.core.settings import (
    AMES_SOURCE_URL,
    SettingsError,
    check_home,
    known_variables,
    load_settings,
    unknown_variables,
)


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
    from deployments.aws.config import AwsConfig

    monkeypatch.setenv("MLOPS_TARGET", "aws")
    monkeypatch.setenv("MLOPS_STORAGE_URL", "s3://acme-ml/prod/")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("MLOPS_CANARY_WEIGHT", "0.1")
    config = AwsConfig.from_settings(load_settings(), "ames-price")
    assert (config.region, config.bucket, config.prefix) == ("eu-west-1", "acme-ml", "prod")
    assert (config.function_name, config.role_name, config.canary_weight) == (
        "ames-price-serving",
        "ames-price-serving-execution",
        0.1,
    )


def test_production_settings_reach_the_aws_config(mlops_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from deployments.aws.config import AwsConfig

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
    config = AwsConfig.from_settings(load_settings(), "ames-price")
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


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MLOPS_MAX_QUALITY_DROP", "inf"),
        ("MLOPS_DRIFT_NUMERIC_THRESHOLD", "Infinity"),
        ("MLOPS_DRIFT_THRESHOLD", "nan"),
        ("MLOPS_RETRAIN_COOLDOWN_HOURS", "inf"),
        ("MLOPS_CANARY_BAKE_SECONDS", "inf"),
        ("MLOPS_TUNING_TIMEOUT_SECONDS", "inf"),
        ("MLOPS_ALARM_P99_LATENCY_MS", "-inf"),
    ],
)
def test_non_finite_numbers_are_refused(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(
        SettingsError, match=re.escape(f"{variable}='{value}': Input should be a finite number")
    ):
        load_settings()


def test_non_finite_run_parameters_are_refused(mlops_env: Path) -> None:
    with pytest.raises(
        SettingsError, match="Invalid parameters: max_quality_drop=inf: Input should be a finite"
    ):
        load_settings().with_values(max_quality_drop=float("inf"))


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:8765", "https://reports.example.com/loopml/", "http://[::1]:9000"]
)
def test_reports_url_takes_http_urls_with_a_host(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MLOPS_REPORTS_URL", value)
    assert load_settings().reports_url == value.rstrip("/")


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1:8765", "ftp://127.0.0.1/x", "http://", "http://:8765", "http://host:99999", "file:///r"],
)
def test_reports_url_must_be_http_with_a_host(
    mlops_env: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MLOPS_REPORTS_URL", value)
    with pytest.raises(
        SettingsError, match=re.escape(f"MLOPS_REPORTS_URL='{value}': must be an http:// or https://")
    ):
        load_settings()


def test_unknown_variables_are_named_with_the_closest_setting(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "MLOPS_PROMOTON_MARGIN=0.1\nMLOPS_MODEL_NAME=x\nAWS_REGION=eu-west-1\n", encoding="utf-8"
    )
    environment = {
        "MLOPS_DRIFT_TRESHOLD": "0.3",
        "mlops_random_seed": "7",  # settings are read case-insensitively
        "MLOPS_TEST_AMES_CSV": "/data/ames.csv",  # the test suite's own variable
        "MLOPS_ZZZ": "1",
        "MLFLOW_TRACKING_URI": "sqlite:///x.db",
        "PATH": "/usr/bin",
    }
    ignored = "is not a setting and is ignored;"
    assert unknown_variables(environment, env_file) == [
        f"MLOPS_DRIFT_TRESHOLD (environment) {ignored} did you mean MLOPS_DRIFT_THRESHOLD?",
        f"MLOPS_PROMOTON_MARGIN ({env_file}) {ignored} did you mean MLOPS_PROMOTION_MARGIN?",
        f"MLOPS_ZZZ (environment) {ignored} see the configuration table in README.md",
    ]
    assert unknown_variables({}, tmp_path / "absent.env") == []


def test_every_setting_of_the_readme_is_known() -> None:
    from tests.conftest import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(MLOPS_[A-Z0-9_]+)` \|", readme, re.MULTILINE))
    assert documented == known_variables()


def test_a_home_that_cannot_be_created_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(
        SettingsError, match=r"MLOPS_HOME='.*/file/home': cannot create the folder \(Not a directory\)"
    ):
        check_home(tmp_path / "file" / "home")


def test_a_home_is_created_and_written(tmp_path: Path) -> None:
    check_home(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the probe file is gone
