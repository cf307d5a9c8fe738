"""Typed settings for every flow, read from the environment and an optional `.env` file."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tasks.core.errors import UserError
from tasks.core.unknown_settings import unknown_names

DriftMeasure = Literal["weighted", "share"]  # what the verdict compares with MLOPS_DRIFT_THRESHOLD

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AMES_SOURCE_URL = "http://jse.amstat.org/v19n3/decock/AmesHousing.txt"
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_NAME_RULE = "use letters, digits, '.', '_' or '-', starting with a letter or digit"
ENV_FILE = ".env"
# Variables of the test suite (`MLOPS_TEST_AMES_CSV`) share the prefix but are no settings.
_STORAGE_SCHEMES = ("file://", "s3://")
_DASK_ADDRESS = re.compile(r"^(local|[a-z]+://\S+|[^\s:/]+:\d+)$")


class SettingsError(UserError, ValueError):
    """A setting is missing or invalid; the message names the environment variable."""


class Settings(BaseSettings):
    """Configuration shared by the flows; every field maps to one environment variable."""

    model_config = SettingsConfigDict(
        env_prefix="MLOPS_",
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        allow_inf_nan=False,
    )

    target: Literal["local", "aws"] = Field("local", description="Where models are served.")
    home: Path = Field(PROJECT_ROOT / ".mlops", description="Local state folder.")
    data_source: str = Field(AMES_SOURCE_URL, min_length=1, description="Training data.")
    dataset_spec: Path | None = Field(None, description="JSON dataset spec; Ames when unset.")
    storage_url: str | None = Field(None, description="Root for snapshots, logs and reports.")
    model_name: str = Field("ames-price", description="Registered model name.")
    mlflow_tracking_uri: str | None = Field(None, validation_alias="MLFLOW_TRACKING_URI")
    holdout_fraction: float = Field(0.2, gt=0.0, lt=0.5)
    random_seed: int = Field(42, ge=0)
    min_rows: int = Field(50, ge=10)
    promotion_margin: float = Field(0.0, ge=0.0, lt=1.0)
    shadow_check: bool = Field(
        default=True,
        description="Before promoting, score the last monitor window's logged requests with the challenger.",
    )
    shadow_tolerance: float = Field(
        0.05,
        ge=0.0,
        lt=1.0,
        description="How much worse than the champion's the challenger's estimated metric on those "
        "requests may be (a share of it).",
    )
    promotion_confidence: float = Field(
        0.9,
        ge=0.0,
        le=1.0,
        description="Share of paired bootstrap resamples of the holdout in which a retrain must beat "
        "the champion to be promoted; 0 turns the check off.",
    )
    onnx_tolerance: float = Field(1e-4, gt=0.0, le=0.1)
    reference_rows: int = Field(5000, ge=100)
    importance_repeats: int = Field(3, ge=1, le=50, description="Shuffles per input for its importance.")
    deploy_on_promotion: bool = True
    aws_region: str | None = Field(
        None, validation_alias=AliasChoices("MLOPS_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
    )
    lambda_function_name: str | None = Field(None, description="Defaults to <model>-serving.")
    lambda_memory_mb: int = Field(1024, ge=128, le=10240)
    canary_weight: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Share of traffic a new version gets first on AWS; unset moves at once.",
    )
    canary_bake_seconds: float = Field(
        300.0, ge=0.0, description="How long the canary serves while the alarms are watched."
    )
    alarm_error_rate_percent: float = Field(
        5.0, gt=0.0, le=100.0, description="Server-error share of requests (per minute) that raises an alarm."
    )
    alarm_p99_latency_ms: float = Field(
        1000.0, gt=0.0, description="p99 latency of the function (per minute) that raises an alarm."
    )
    alarm_topic_arn: str | None = Field(None, description="SNS topic the alarms notify.")
    api_auth: Literal["iam", "jwt", "none"] = Field(
        "iam", description="Who may call the HTTP API: SigV4 (iam), a JWT (jwt), or anyone (none)."
    )
    api_page_auth: Literal["iam", "jwt", "none"] | None = Field(None, description="Who may open GET /.")
    api_jwt_issuer: str | None = Field(None, description="Issuer URL of the identity provider (jwt).")
    api_jwt_audience: str | None = Field(
        None, description="Comma-separated audiences a token must have (jwt)."
    )
    api_throttle_rate: float = Field(100.0, gt=0.0, description="Steady requests per second the API accepts.")
    api_throttle_burst: int = Field(200, ge=1, description="Requests the API accepts at once above the rate.")
    api_cors_origins: str | None = Field(None, description="Comma-separated browser origins allowed (CORS).")
    lambda_tracing: Literal["Active", "PassThrough"] = Field(
        "PassThrough", description="Active turns on X-Ray tracing of the function."
    )
    kms_key_arn: str | None = Field(
        None, description="KMS key encrypting the bucket and the function's environment."
    )
    lambda_subnet_ids: str | None = Field(None, description="Comma-separated subnets to run the function in.")
    lambda_security_group_ids: str | None = Field(
        None, description="Comma-separated security groups of the function (with the subnets)."
    )
    lambda_reserved_concurrency: int | None = Field(
        None, ge=1, description="Reserved concurrency of the function."
    )
    lambda_provisioned_concurrency: int | None = Field(None, ge=0)  # of `live`; 0 removes it
    firehose_stream: str | None = None  # the stream the function sends its records to
    firehose_buffer_mib: int = Field(64, ge=1, le=128)  # Firehose's buffer size (MiB)
    firehose_buffer_seconds: int = Field(300, ge=0, le=900)  # Firehose's buffer interval
    firehose_layout: Literal["partitioned", "default"] = "partitioned"  # dt=/hour= or YYYY/MM/DD/HH
    missing_fields: Literal["impute", "reject"] = Field(
        "impute", description="The function imputes fields left out of a request, or refuses them."
    )
    drift_measure: DriftMeasure = Field(
        "weighted",
        description="What the drift verdict compares with the threshold: the importance share of drifted "
        "inputs (weighted) or the plain share of drifted inputs.",
    )
    drift_threshold: float = Field(
        0.15, gt=0.0, lt=1.0, description="Drift measure (MLOPS_DRIFT_MEASURE) above which a window drifts."
    )
    drift_numeric_threshold: float = Field(0.2, gt=0.0)
    drift_categorical_threshold: float = Field(0.2, gt=0.0, le=1.0)
    monitor_window_hours: float = Field(24.0, gt=0.0, le=24 * 90)
    monitor_min_rows: int = Field(100, ge=1)
    monitor_row_cap: int = Field(5_000, ge=100)  # rows of the sample behind the report and the estimate
    monitor_batch: Literal["exclude", "include"] = Field(
        "exclude", description="Whether batch-scored rows count in the monitor's verdict."
    )
    reports_url: str = Field(
        "http://127.0.0.1:8765",
        description="HTTP address where local reports are served (make reports).",
    )
    evidently_ui_port: int = Field(
        8000,
        ge=1,
        le=65535,
        description="Port of the Evidently UI (python -m monitoring.publish.history_ui).",
    )
    max_quality_drop: float = Field(0.2, gt=0.0)
    min_labelled_rows: int = Field(30, ge=1)
    retrain_cooldown_hours: float = Field(6.0, ge=0.0)
    retrain_mode: Literal["auto", "event", "inline", "off"] = "auto"
    production_lookback_hours: float = Field(24 * 30, gt=0.0)
    retrain_data: Literal["all", "recent", "weighted"] = Field(
        "all",
        description="Rows a drift-triggered retrain learns from: all, the recent days only, or all "
        "weighted by recency.",
    )
    retrain_recent_days: float = Field(90.0, gt=0.0, description="The window of MLOPS_RETRAIN_DATA=recent.")
    recency_half_life_days: float = Field(
        30.0, gt=0.0, description="Age at which a row weighs half as much (MLOPS_RETRAIN_DATA=weighted)."
    )
    recent_holdout_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Share of the newest labelled production rows the gate holds out."
    )
    recent_holdout_min_rows: int = Field(30, ge=1, description="Fewer recent rows than this skip the check.")
    compact_delete_originals: bool = False
    candidate_families: str | None = Field(None, description="Comma-separated model families to train.")
    tuning_trials: int = Field(
        16, ge=0, le=1000, description="Tuning trials per model family; 0 trains the fixed parameters."
    )
    tuning_timeout_seconds: float | None = Field(
        120.0, gt=0.0, description="No new tuning trials of a family start after this many seconds."
    )
    dask_address: str | None = Field(
        None,
        description="Dask scheduler for the training tasks (tcp://host:8786), `local` for worker processes "
        "on this machine, or unset for threads.",
    )
    dask_workers: int | None = Field(None, ge=1, description="Worker processes of `local` (CPU count).")

    @field_validator("tuning_timeout_seconds", mode="before")
    @classmethod
    def _no_timeout(cls, value: object) -> object:
        """An empty value or `none` lifts the limit."""
        return None if isinstance(value, str) and value.strip().lower() in {"", "none"} else value

    @field_validator("api_page_auth", mode="before")
    @classmethod
    def _page_auth_unset(cls, value: object) -> object:
        """An empty value leaves the page's authorization to MLOPS_API_AUTH."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("model_name")
    @classmethod
    def _valid_model_name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("reports_url")
    @classmethod
    def _http_reports_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        try:
            valid = parts.scheme in {"http", "https"} and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number from 1 to 65535
            valid = False
        if not valid:
            msg = "must be an http:// or https:// URL with a host, such as http://127.0.0.1:8765"
            raise ValueError(msg)
        return value.strip().rstrip("/")

    @field_validator("storage_url")
    @classmethod
    def _known_storage_scheme(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "://" not in value:
            return Path(value).expanduser().resolve().as_uri()
        if not value.startswith(_STORAGE_SCHEMES):
            msg = f"must be a local path, file:// or s3:// URL, got {value!r}"
            raise ValueError(msg)
        return value.rstrip("/")

    @field_validator("dask_address")
    @classmethod
    def _dask_address(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and not _DASK_ADDRESS.match(value):
            msg = f"must be `local` or a scheduler address such as tcp://10.0.0.5:8786, got {value!r}"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _derive_defaults(self) -> Settings:
        self.storage_url = self.storage
        self.mlflow_tracking_uri = self.tracking_uri
        if self.target == "aws":
            if not self.storage.startswith("s3://"):
                msg = "MLOPS_STORAGE_URL must be an s3:// URL when MLOPS_TARGET=aws"
                raise ValueError(msg)
            if not self.aws_region:
                msg = "MLOPS_AWS_REGION is required when MLOPS_TARGET=aws"
                raise ValueError(msg)
        for name, mode in (("MLOPS_API_AUTH", self.api_auth), ("MLOPS_API_PAGE_AUTH", self.api_page_auth)):
            if mode == "jwt" and not (self.api_jwt_issuer and split_list(self.api_jwt_audience)):
                msg = f"{name}=jwt needs MLOPS_API_JWT_ISSUER and MLOPS_API_JWT_AUDIENCE"
                raise ValueError(msg)
        if bool(split_list(self.lambda_subnet_ids)) != bool(split_list(self.lambda_security_group_ids)):
            msg = "MLOPS_LAMBDA_SUBNET_IDS and MLOPS_LAMBDA_SECURITY_GROUP_IDS go together"
            raise ValueError(msg)
        return self

    @property
    def storage(self) -> str:
        """The storage root URL (always set after validation)."""
        return self.storage_url or (self.home / "storage").as_uri()

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking and registry URI (always set after validation)."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def families(self) -> list[str] | None:
        """The candidate families named in `MLOPS_CANDIDATE_FAMILIES`, or None for all."""
        return list(split_list(self.candidate_families)) or None

    def with_values(self, **values: object) -> Settings:
        """A validated copy with a run's parameters in place of settings (None leaves a setting as is)."""
        updates = {name: value for name, value in values.items() if value is not None}
        if not updates:
            return self
        try:
            return Settings.model_validate({**self.model_dump(), **updates})
        except ValidationError as error:
            problems = [
                f"{item['loc'][0]}={item.get('input')!r}: {item['msg'].removeprefix('Value error, ')}"
                for item in error.errors()
            ]
            raise SettingsError("Invalid parameters: " + "; ".join(problems)) from None

    @property
    def function_environment(self) -> dict[str, str]:
        """Settings the serving function reads from its environment, set by every deployer."""
        return {"MISSING_FIELDS": self.missing_fields}

    @property
    def artifact_root(self) -> str:
        """Where new MLflow experiments keep their artifacts: under the storage root."""
        return f"{self.storage}/mlflow-artifacts"


def check_name(value: str) -> str:
    """A model or dataset name: it becomes a folder and key segment, so no separators or dots first."""
    if not _MODEL_NAME.match(value):
        raise ValueError(_NAME_RULE)
    return value


def split_list(value: str | None) -> tuple[str, ...]:
    """The items of a comma-separated setting, stripped, empty ones left out."""
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())


def env_name(field: str) -> str:
    """The environment variable that sets a settings field."""
    info = Settings.model_fields.get(field)
    if info is not None and isinstance(info.validation_alias, str):
        return info.validation_alias
    if info is not None and isinstance(info.validation_alias, AliasChoices):
        return str(info.validation_alias.choices[0])
    return f"MLOPS_{field.upper()}"


def known_variables() -> frozenset[str]:
    """Every `MLOPS_*` variable that sets a field (upper case, as written in the README)."""
    names = {env_name(field) for field in Settings.model_fields}
    for info in Settings.model_fields.values():
        if isinstance(info.validation_alias, AliasChoices):
            names.update(str(choice) for choice in info.validation_alias.choices)
    return frozenset(name.upper() for name in names if name.upper().startswith("MLOPS_"))


def unknown_variables(environment: Mapping[str, str], env_file: Path) -> list[str]:
    """One warning per `MLOPS_*` name in the environment or `.env` that is no setting."""
    return unknown_names(environment, env_file, known_variables())


_WARNED: set[str] = set()


def warn_unknown_variables() -> None:
    """Print each unknown-variable warning to stderr once per process (one command, one flow run)."""
    for warning in unknown_variables(os.environ, Path(ENV_FILE)):
        if warning not in _WARNED:
            _WARNED.add(warning)
            print(f"warning: {warning}", file=sys.stderr)  # noqa: T201


def check_home(home: Path) -> None:
    """Create the local state folder and prove it writable, or name MLOPS_HOME in one line.

    Every flow keeps state there (the MLflow database, caches, local function versions), and
    a folder that cannot be written would otherwise fail deep inside a run with a traceback.
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        msg = f"Invalid settings: MLOPS_HOME='{home}': cannot create the folder ({error.strerror})"
        raise SettingsError(msg) from None
    try:
        with tempfile.TemporaryFile(dir=home):
            pass
    except OSError as error:
        msg = f"Invalid settings: MLOPS_HOME='{home}': cannot write in the folder ({error.strerror})"
        raise SettingsError(msg) from None


def load_settings(**overrides: object) -> Settings:
    """Read and validate the settings, turning validation errors into one clear message.

    Unknown `MLOPS_*` variables are warned about (once per process), and the local state folder
    is created and checked, so a bad setting stops a command before it does anything.
    """
    warn_unknown_variables()
    settings = _validated(**overrides)
    check_home(settings.home)
    return settings


def _validated(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = str(item["loc"][0]) if item["loc"] else ""
            message = item["msg"].removeprefix("Value error, ")
            if field:
                problems.append(f"{env_name(field)}={item.get('input')!r}: {message}")
            else:
                problems.append(message)
        raise SettingsError("Invalid settings: " + "; ".join(problems)) from None
