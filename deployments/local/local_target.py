"""The local target: function versions and a `live` alias under MLOPS_HOME, run by the local runner.

Layout, per model: `deployments/<model>/versions/<n>/function.zip` with `version.json`
beside it, `live.json` naming the version the alias points to, and `servers/` listing the
running local servers (`deployments.local.local_servers`). The alias file is replaced atomically,
so a reader sees the old or the new version, never half of one; a move of `live` is reported
only once every running server answers the new version.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployments.common.deploy_result import DeploymentResult, FunctionVersion
from deployments.lambda_handler.contract import LIVE_ALIAS
from deployments.lambda_package.function_artifact import (
    LAYER_PACKAGES,
    RUNTIME_PACKAGES,
    Artifact,
    build_function_zip,
    build_layer,
    host_python_version,
    pinned_requirements,
)
from deployments.lambda_package.function_process import FunctionError, LocalFunction, unpack_artifact
from deployments.lambda_package.smoke import SmokeTestError, smoke_test, smoke_test_version
from deployments.local.local_servers import ServerRegistry
from tasks.core.errors import UsageError, UserError


class LiveAliasError(UserError, LookupError):
    """`live.json` cannot be read or names a version that was never published."""


def local_layers(cache_dir: Path) -> list[Path]:
    """The function layer and the runtime layer (boto3, as Lambda provides) for this Python."""
    return [
        build_layer(
            cache_dir,
            pinned_requirements(packages),
            platform=None,
            python_version=host_python_version(),
            zipped=False,
            with_deps=with_deps,
        ).directory
        for packages, with_deps in ((LAYER_PACKAGES, False), (RUNTIME_PACKAGES, True))
    ]


def _write_json_atomically(path: Path, payload: dict[str, Any]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".partial")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(payload, stream, indent=2)
    Path(temporary).replace(path)


class LocalDeployer:
    """Versions and the `live` alias of one model's local function."""

    def __init__(
        self, home: Path, model_name: str, storage_url: str, function_settings: dict[str, str] | None = None
    ) -> None:
        self.home = home
        self.model_name = model_name
        self.storage_url = storage_url
        self.function_settings = dict(function_settings or {})
        self.root = home / "deployments" / model_name
        self.versions_dir = self.root / "versions"
        self.live_file = self.root / f"{LIVE_ALIAS}.json"
        self.servers = ServerRegistry(self.root / "servers")

    @property
    def endpoint(self) -> str:
        """How the local function is reached: the `deployments.local.serve` command."""
        return "python -m deployments.local.serve --port 8080  (then http://127.0.0.1:8080)"

    def environment(self) -> dict[str, str]:
        """The function's environment variables on this target."""
        return {**self.function_settings, "STORAGE_URL": self.storage_url}

    def layers(self) -> list[Path]:
        """Layer folders for the local runner (built once, then cached)."""
        return local_layers(self.home / "cache" / "layers")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def version_info(self, version: str) -> dict[str, Any]:
        """The recorded metadata of a published version."""
        path = self.versions_dir / version / "version.json"
        if not path.is_file():
            msg = f"{self.model_name} has no local version {version}"
            raise LookupError(msg)
        return json.loads(path.read_text("utf-8"))

    def _is_published(self, version: str) -> bool:
        return version.isdigit() and (self.versions_dir / version / "version.json").is_file()

    def _published(self) -> list[dict[str, Any]]:
        """Every published version's record, oldest first (folders without a record are not versions)."""
        if not self.versions_dir.is_dir():
            return []
        folders = self.versions_dir.iterdir()
        numbers = sorted(int(path.name) for path in folders if self._is_published(path.name))
        return [self.version_info(str(number)) for number in numbers]

    def live_version(self) -> str | None:
        """The version `live` points to, or None before the first deploy.

        An unreadable `live.json`, or one naming a version that was never published, is a
        `LiveAliasError` saying how to repair it: a server keeps serving what it served.
        """
        if not self.live_file.is_file():
            return None
        repair = "move live with: python -m deployments.targets.rollback VERSION"
        try:
            version = str(json.loads(self.live_file.read_text("utf-8"))["version"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            msg = f"{self.live_file} is unreadable ({type(error).__name__}: {error}); {repair}"
            raise LiveAliasError(msg) from None
        if not self._is_published(version):
            msg = f"{self.live_file} names version {version!r}, which was never published; {repair}"
            raise LiveAliasError(msg)
        return version

    def _live_or_none(self) -> str | None:
        """`live_version`, with an unreadable alias read as none (a deploy or rollback rewrites it)."""
        try:
            return self.live_version()
        except LiveAliasError:
            return None

    def set_live(self, version: str) -> None:
        """Point `live` at a published version (deploys and manual rollbacks)."""
        self.version_info(version)
        _write_json_atomically(
            self.live_file, {"version": version, "updated_at": datetime.now(UTC).isoformat()}
        )

    def _move_live(self, version: str) -> str:
        """Point `live` at a version, then wait for the running servers; says who serves it."""
        self.set_live(version)
        following = self.servers.wait_for(version)
        if not following:
            return "no local server is running (python -m deployments.local.serve starts one)"
        return "answered by " + ", ".join(following)

    def code_dir(self, version: str) -> Path:
        """The unpacked function code of a published version."""
        self.version_info(version)
        folder = self.versions_dir / version
        return unpack_artifact(folder / "function.zip", folder / "code")

    def start_function(self, version: str) -> LocalFunction:
        """A warm local container for a version, logging to the version's folder."""
        return LocalFunction(
            self.code_dir(version),
            self.layers(),
            {**self.environment(), "AWS_LAMBDA_FUNCTION_VERSION": version},
            log_file=self.versions_dir / version / "function.log",
        )

    def _started(self, version: str) -> LocalFunction:
        """A version's container for its smoke test; a version that cannot start fails the test."""
        try:
            return self.start_function(version)
        except FunctionError as error:
            msg = f"version {version} failed to start: {error}"
            raise SmokeTestError(msg) from error

    def _publish(self, artifact: Artifact, model_version: str) -> tuple[str, bool]:
        published = self._published()
        for info in published:
            if info["sha256"] == artifact.sha256:
                return str(info["version"]), False
        number = str(max((int(info["version"]) for info in published), default=0) + 1)
        folder = self.versions_dir / number
        staging = self.versions_dir / f".{number}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copyfile(artifact.path, staging / "function.zip")
        _write_json_atomically(
            staging / "version.json",
            {
                "version": number,
                "model_name": self.model_name,
                "model_version": model_version,
                "sha256": artifact.sha256,
                "code_sha256": artifact.code_sha256,
                "size": artifact.size,
                "created_at": datetime.now(UTC).isoformat(),
            },
        )
        staging.rename(folder)
        return number, True

    def build_artifact(self, bundle: Path) -> Artifact:
        """The deterministic function zip (handler + bundle) this target serves, next to the bundle."""
        return build_function_zip(bundle, bundle.parent / "function.zip")

    def deploy(self, artifact: Artifact, example: dict[str, Any], model_version: str) -> DeploymentResult:
        """Publish the artifact as a version, smoke-test it, then move `live` to it.

        A failed smoke test leaves `live` where it was. Deploying what is already live
        changes nothing.
        """
        with self._locked():
            previous = self._live_or_none()
            version, created = self._publish(artifact, model_version)
            common = {
                "target": "local",
                "model_name": self.model_name,
                "model_version": model_version,
                "function_version": version,
                "previous_version": previous,
                "endpoint": self.endpoint,
                "code_sha256": artifact.code_sha256,
                "artifact_uri": (self.versions_dir / version / "function.zip").as_uri(),
            }
            if previous == version:
                return DeploymentResult(**common, changed=False, detail="already live")
            with self._started(version) as function:
                smoke_test(function.invoke, example, model_version)
            serving = self._move_live(version)
            state = "published" if created else "reused"
            return DeploymentResult(**common, changed=True, detail=f"{state} version {version}; {serving}")

    def versions(self) -> list[FunctionVersion]:
        """Every published version, oldest first, and which one is live."""
        live = self._live_or_none()
        return [
            FunctionVersion(
                version=str(info["version"]),
                model_version=str(info["model_version"]),
                sha256=str(info["sha256"]),
                live=str(info["version"]) == live,
            )
            for info in self._published()
        ]

    def rollback(self, version: str) -> DeploymentResult:
        """Move `live` to an earlier version after the same smoke test a deploy runs."""
        with self._locked():
            published = {str(info["version"]): info for info in self._published()}
            if version not in published:
                listed = ", ".join(published) or "none (deploy one with python -m flows.deploy)"
                msg = f"{self.model_name} has no local function version {version}; versions: {listed}"
                raise UsageError(msg)
            info = published[version]
            previous = self._live_or_none()
            with self._started(version) as function:
                smoke_test_version(function.invoke)
            serving = self._move_live(version)
        return DeploymentResult(
            target="local",
            model_name=self.model_name,
            model_version=str(info["model_version"]),
            function_version=version,
            previous_version=previous,
            endpoint=self.endpoint,
            code_sha256=str(info["code_sha256"]),
            artifact_uri=(self.versions_dir / version / "function.zip").as_uri(),
            changed=previous != version,
            detail=serving,
        )

    @contextmanager
    def live(self) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
        """Call the version `live` points to, in a local container started for the purpose."""
        version = self.live_version()
        if version is None:
            msg = f"{self.model_name} has no live version on the local target; run python -m flows.deploy"
            raise UsageError(msg)
        with self.start_function(version) as function:
            yield function.invoke
