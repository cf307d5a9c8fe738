"""An invoker that runs deployed Lambda versions locally: moto stores functions but cannot run them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from deployments.aws.invoke import run_deployed_version
from deployments.lambda_package.function_artifact import (
    LAYER_PACKAGES,
    Artifact,
    pinned_requirements,
    write_deterministic_zip,
)
from deployments.lambda_package.function_process import LocalFunction


def small_layer_zip(root: Path) -> Artifact:
    """A small real layer zip: the publish-only-when-changed logic is what tests exercise.

    The real python3.12 manylinux layer is ~50 MB; the local runner executes with `local_layers`.
    """
    package = root / "layer-src"
    package.mkdir()
    (package / "__init__.py").write_text('"""Marker package of the test layer."""\n', encoding="utf-8")
    (package / "requirements.txt").write_text(
        "\n".join(pinned_requirements(LAYER_PACKAGES)) + "\n", encoding="utf-8"
    )
    entries = {f"python/loopml_test_layer/{path.name}": path for path in sorted(package.iterdir())}
    return write_deterministic_zip(entries, root / "layer.zip")


class LocalVersionRunner:
    """An `Invoker` that runs deployed versions locally, one warm process per version.

    A qualifier is resolved on every call, so `live` follows the alias as it moves.
    """

    def __init__(
        self,
        lambda_client: Any,
        s3_client: Any,
        function_name: str,
        work_dir: Path,
        layer_dirs: list[Path],
        environment: Mapping[str, str],
        *,
        log_file: Path | None = None,
    ) -> None:
        self.lambda_client = lambda_client
        self.s3_client = s3_client
        self.function_name = function_name
        self.work_dir = work_dir
        self.layer_dirs = layer_dirs
        self.environment = dict(environment)
        self.log_file = log_file
        self._functions: dict[tuple[str, str], LocalFunction] = {}

    def _function(self, qualifier: str) -> LocalFunction:
        configuration = self.lambda_client.get_function_configuration(
            FunctionName=self.function_name, Qualifier=qualifier
        )
        key = (str(configuration["Version"]), str(configuration["CodeSha256"]))
        if key not in self._functions:
            self._functions[key] = run_deployed_version(
                self.lambda_client,
                self.s3_client,
                self.function_name,
                key[0],
                self.work_dir,
                self.layer_dirs,
                self.environment,
                log_file=self.log_file,
            )
        return self._functions[key]

    def __call__(self, version: str, event: dict[str, Any]) -> dict[str, Any]:
        """Answer one event with the given version or alias."""
        return self._function(version).invoke(event)

    def close(self) -> None:
        """Stop every started process."""
        for function in self._functions.values():
            function.close()
        self._functions.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
