"""Deploy a built function artifact to AWS Lambda behind an HTTP API, with boto3 only.

Every step is idempotent: resources are found by name (the API by name and tag) and created
once, artifacts live under content-addressed S3 keys, a layer is published only when its bytes
change, and the `live` alias moves only after the new version passed its smoke test. The HTTP
API is created once and points at the alias, so its id and URL never change between deploys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from deployments.aws import alarms, function
from deployments.aws.boundary import check_boundary
from deployments.aws.bucket import ensure_bucket, upload
from deployments.aws.concurrency import ensure_concurrency
from deployments.aws.config import ArtifactRecord, AwsClients, AwsConfig, DeployError
from deployments.aws.execution_policies import boundary_policy
from deployments.aws.firehose import ensure_delivery_role, ensure_delivery_stream
from deployments.aws.http_api import api_endpoint, ensure_api, find_api
from deployments.aws.iam import ensure_log_group, ensure_role
from deployments.aws.invoke import Invoker, lambda_invoker
from deployments.aws.layer import ensure_layer
from deployments.aws.policies import function_environment
from deployments.common.deploy_result import DeploymentResult, FunctionVersion
from deployments.lambda_handler.contract import LIVE_ALIAS
from deployments.lambda_package.function_artifact import (
    LAMBDA_PLATFORM,
    LAMBDA_PYTHON_VERSION,
    LAYER_PACKAGES,
    Artifact,
    build_function_zip,
    build_layer,
    pinned_requirements,
)
from deployments.lambda_package.smoke import Invoke, smoke_test, smoke_test_version
from tasks.core.errors import UsageError


class AwsDeployer:
    """Deploys function artifacts for one `AwsConfig`; see `deploy`."""

    def __init__(
        self,
        config: AwsConfig,
        session: Any | None = None,
        invoker: Invoker | None = None,
        *,
        model_name: str | None = None,
        layer_cache: Path | None = None,
        function_settings: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`invoker` defaults to Lambda's own Invoke; `layer_cache` is where the layer is built."""
        self.config = config
        self.session = session
        self.invoker = invoker
        self.model_name = model_name or config.function_name
        self.layer_cache = layer_cache
        self.function_settings = dict(function_settings or {})
        self._sleep = sleep
        self._step = "start"
        self._alias_moved = False

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        """Name the step in progress, so a failure says where the deploy stopped."""
        self._step = name
        yield

    def build_layer(self) -> Artifact:
        """The python3.12 x86_64 layer (numpy, onnxruntime) as pinned here, cached while unchanged."""
        if self.layer_cache is None:
            msg = "no layer given and no layer_cache to build one in"
            raise DeployError(msg)
        layer = build_layer(
            self.layer_cache,
            pinned_requirements(LAYER_PACKAGES),
            platform=LAMBDA_PLATFORM,
            python_version=LAMBDA_PYTHON_VERSION,
            zipped=True,
        )
        assert layer.zip is not None
        return layer.zip

    def build_artifact(self, bundle: Path) -> Artifact:
        """The deterministic function zip (handler + bundle + page) this target serves, next to the bundle.

        The page authorizes its calls to `POST /predict` as the HTTP API asks (`api_auth`).
        """
        return build_function_zip(bundle, bundle.parent / "function.zip", browser_auth=self.config.api_auth)

    def deploy(
        self,
        function_zip: Artifact,
        example: dict[str, Any],
        model_version: str,
        *,
        layer_zip: Artifact | None = None,
        environment: Mapping[str, str] | None = None,
    ) -> DeploymentResult:
        """Ship the artifact as a new version and move `live` to it once it passed the smoke test.

        Rerunning with the same inputs changes nothing. Any failure before the alias move
        raises `DeployError` naming the step; `live` is left (or put back) where it was.
        """
        self._step = "start"
        self._alias_moved = False
        try:
            aws = AwsClients.connect(self.config, self.session, self._sleep)
            invoker = self.invoker or lambda_invoker(aws.lambda_, self.config.function_name)
            layer = layer_zip or self.build_layer()
            variables = {**self.function_settings, **(environment or {})}
            return self._deploy(aws, invoker, function_zip, layer, example, str(model_version), variables)
        except DeployError:
            raise
        except Exception as error:
            moved = (
                f"after moving {LIVE_ALIAS}"
                if self._alias_moved
                else f"before moving {LIVE_ALIAS}; it was not moved"
            )
            msg = f"deploy of {self.config.function_name} failed while {self._step} ({moved}): {error}"
            raise DeployError(msg) from error

    def _deploy(
        self,
        aws: AwsClients,
        invoker: Invoker,
        function_zip: Artifact,
        layer_zip: Artifact,
        example: dict[str, Any],
        model_version: str,
        environment: Mapping[str, str],
    ) -> DeploymentResult:
        config = self.config
        variables = function_environment(config, environment)
        function_key = config.key("lambda", config.function_name, f"function-{function_zip.sha256[:16]}.zip")
        record = ArtifactRecord(model_version, f"s3://{config.bucket}/{function_key}", function_zip.sha256)
        record.to_description()  # fails before any change if it would not fit
        with self._stage("checking the HTTP API and the permissions boundary"):
            # Both refuse before any change: a same-named API that is not ours, a boundary to widen.
            find_api(aws)
            check_boundary(aws, boundary_policy(config, aws.partition, aws.account_id, variables))
        with self._stage("ensuring the bucket"):
            ensure_bucket(aws)
        with self._stage("ensuring the log groups"):
            ensure_log_group(aws, config.log_group)
            ensure_log_group(aws, config.access_log_group)
        with self._stage("ensuring the execution role"):
            role_arn = ensure_role(aws, variables)
        if config.firehose_stream:
            with self._stage("ensuring the Firehose delivery stream"):
                ensure_delivery_stream(aws, self.model_name, ensure_delivery_role(aws))
        with self._stage("ensuring the alarms"):
            judges = [spec.name for spec in alarms.ensure_alarms(aws, self.model_name) if spec.judges_canary]
        with self._stage("uploading artifacts"):
            upload(aws, function_zip, function_key)
            layer_key = config.key("lambda", "layers", f"{config.layer_name}-{layer_zip.sha256[:16]}.zip")
            upload(aws, layer_zip, layer_key)
        with self._stage("publishing the layer"):
            layer_arn = ensure_layer(aws, layer_zip, layer_key)
        spec = function.FunctionSpec(
            function_zip.code_sha256,
            role_arn,
            (layer_arn,),
            variables,
            config.memory_mb,
            config.timeout_seconds,
            config.tracing,
            config.kms_key_arn or "",
            config.subnet_ids,
            config.security_group_ids,
        )
        with self._stage(f"reading the {LIVE_ALIAS} alias"):
            live = function.live_alias(aws)
        previous = live["FunctionVersion"] if live else None
        already_live = (
            previous is not None
            and not function.alias_weights(live)
            and spec.matches(function.function_configuration(aws, previous) or {})
        )
        if previous is not None and already_live:
            version = previous  # same code and configuration: an idempotent rerun
        else:
            version = self._release(aws, invoker, spec, function_key, record, example, live, judges)
        with self._stage(f"setting the concurrency of {LIVE_ALIAS}"):
            ensure_concurrency(aws)
        with self._stage("ensuring the HTTP API"):
            api_id, endpoint = ensure_api(aws)
        return DeploymentResult(
            target="aws",
            model_name=self.model_name,
            model_version=model_version,
            function_version=version,
            previous_version=previous,
            endpoint=endpoint,
            code_sha256=function_zip.code_sha256,
            # The key is content-addressed, so an already-live artifact has this same URI.
            artifact_uri=record.uri,
            changed=bool(aws.changes),
            detail="already live" if already_live else ", ".join(aws.changes),
            already_live=already_live,
            changes=list(aws.changes),
            api_id=api_id,
            layer_version_arn=layer_arn,
        )

    def _release(
        self,
        aws: AwsClients,
        invoker: Invoker,
        spec: function.FunctionSpec,
        function_key: str,
        record: ArtifactRecord,
        example: dict[str, Any],
        live: dict[str, Any] | None,
        judges: list[str],
    ) -> str:
        """Update the function, publish a version, smoke-test it and move `live` to it.

        With a canary weight, `live` first sends that share to the new version and the alarms
        in `judges` are watched for the bake time; one in ALARM puts `live` back and fails.
        """
        with self._stage("updating the function"):
            function.ensure_function(aws, spec, function_key)
        with self._stage("publishing a version"):
            version = function.publish_version(aws, spec.code_sha256, record.to_description())
        model_version = record.model_version
        with self._stage(f"smoke-testing version {version}"):
            smoke_test(lambda event: invoker(version, event), example, model_version)
        previous = live["FunctionVersion"] if live else None
        config = self.config
        with self._stage(f"moving {LIVE_ALIAS} to version {version}"):
            if live is None:
                function.create_alias(aws, version)
            elif previous != version and config.canary_weight is not None:
                function.canary_then_move(
                    aws,
                    lambda event: invoker(version, event),
                    lambda event: invoker(LIVE_ALIAS, event),
                    live,
                    version,
                    example,
                    model_version,
                    lambda: alarms.watch(aws, judges, config.canary_bake_seconds, config.bake_poll_seconds),
                )
            else:
                function.update_alias(aws, version, {}, live.get("RevisionId"))
        self._alias_moved = True
        aws.changed(f"alias {LIVE_ALIAS} -> {version}")
        return version

    # --- versions, rollback, the live alias -------------------------------------------------

    def versions(self) -> list[FunctionVersion]:
        """Every published version, oldest first, with the model version it serves and which is live."""
        aws = AwsClients.connect(self.config, self.session, self._sleep)
        live = function.live_alias(aws)
        found = []
        for configuration in function.published_configurations(aws):
            version = str(configuration["Version"])
            try:
                record = ArtifactRecord.from_description(configuration.get("Description", ""))
            except ValueError:
                record = ArtifactRecord("unknown", "", "")
            live_version = live is not None and live["FunctionVersion"] == version
            found.append(
                FunctionVersion(
                    version=version,
                    model_version=record.model_version,
                    sha256=record.sha256,
                    live=live_version,
                )
            )
        return found

    def rollback(self, version: str) -> DeploymentResult:
        """Move `live` to an earlier version after the same smoke test a deploy runs; the URL stays."""
        aws = AwsClients.connect(self.config, self.session, self._sleep)
        configurations = {str(item["Version"]): item for item in function.published_configurations(aws)}
        published = list(configurations)
        if version not in published:
            listed = ", ".join(published) or "none"
            msg = f"{self.config.function_name} has no version {version}; published versions: {listed}"
            raise UsageError(msg)
        invoker = self.invoker or lambda_invoker(aws.lambda_, self.config.function_name)
        live = function.live_alias(aws)
        previous = live["FunctionVersion"] if live else None
        try:
            answer = smoke_test_version(lambda event: invoker(version, event))
        except Exception as error:
            stays = f"{LIVE_ALIAS} stays on {previous}"
            msg = f"rollback to version {version} failed its smoke test; {stays}: {error}"
            raise DeployError(msg) from error
        if live is None:
            function.create_alias(aws, version)
        else:
            function.update_alias(aws, version, {}, live.get("RevisionId"))
        configuration = configurations[version]
        record = ArtifactRecord.from_description(configuration.get("Description", ""))
        return DeploymentResult(
            target="aws",
            model_name=self.model_name,
            model_version=str(answer.get("model_version")),
            function_version=version,
            previous_version=previous,
            endpoint=api_endpoint(aws),
            code_sha256=str(configuration.get("CodeSha256", "")),
            artifact_uri=record.uri,
            changed=previous != version,
            detail=f"rolled back to version {version}",
            changes=[f"alias {LIVE_ALIAS} -> {version}"],
        )

    @contextmanager
    def live(self) -> Iterator[Invoke]:
        """Call whatever version `live` points to, through Lambda."""
        aws = AwsClients.connect(self.config, self.session, self._sleep)
        invoker = self.invoker or lambda_invoker(aws.lambda_, self.config.function_name)
        yield lambda event: invoker(LIVE_ALIAS, event)
