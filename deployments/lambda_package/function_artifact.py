"""Build the Lambda function zip (handler + bundle) and the dependency layer."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from deployments.lambda_handler.contract import SERVING_FILES

HANDLER_PACKAGE = Path(__file__).resolve().parents[1] / "lambda_handler"
HANDLER = "lambda_handler.app.handler"
LAMBDA_RUNTIME = "python3.12"
LAMBDA_PYTHON_VERSION = "3.12"
# onnxruntime ships manylinux_2_28 wheels only, so the runtime must be on Amazon Linux 2023.
LAMBDA_PLATFORM = "x86_64-manylinux_2_28"
LAMBDA_ARCHITECTURE = "x86_64"
LAYER_PACKAGES = ("numpy", "onnxruntime")
RUNTIME_PACKAGES = ("boto3",)  # what the Lambda Python runtime itself provides
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_TRIM_DIRS = frozenset({"__pycache__", "tests", "bin", "include"})
_LAYER_FORMAT = 1  # bump when the trimming or layout changes, to rebuild cached layers


@dataclass(frozen=True)
class Artifact:
    """A built zip with the digests Lambda reports for it."""

    path: Path
    sha256: str
    size: int

    @property
    def code_sha256(self) -> str:
        """The base64 sha256 that Lambda's `CodeSha256` shows for this zip."""
        import base64

        return base64.b64encode(bytes.fromhex(self.sha256)).decode()


@dataclass(frozen=True)
class Layer:
    """A dependency layer: `python/` unpacked for the local runner, zipped for AWS."""

    key: str
    directory: Path
    zip: Artifact | None
    unpacked_bytes: int


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_deterministic_zip(entries: dict[str, Path], output: Path, compresslevel: int = 9) -> Artifact:
    """Zip files under fixed names, times and permissions: the same inputs give the same bytes."""
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".partial")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            mode = 0o755 if entries[name].stat().st_mode & 0o111 else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, entries[name].read_bytes(), compresslevel=compresslevel)
    temporary.replace(output)
    return Artifact(output, _file_digest(output), output.stat().st_size)


def build_function_zip(bundle_dir: Path, output: Path) -> Artifact:
    """The function code: the handler package and the serving part of the model bundle."""
    entries = {f"lambda_handler/{path.name}": path for path in sorted(HANDLER_PACKAGE.glob("*.py"))}
    for name in SERVING_FILES:
        path = bundle_dir / name
        if not path.is_file():
            msg = f"bundle {bundle_dir} has no {name}"
            raise FileNotFoundError(msg)
        entries[f"model/{name}"] = path
    return write_deterministic_zip(entries, output)


def pinned_requirements(packages: tuple[str, ...]) -> list[str]:
    """Packages pinned to the versions installed here, the ones the tests ran with."""
    return [f"{name}=={metadata.version(name)}" for name in packages]


def _trim(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _TRIM_DIRS:
            shutil.rmtree(path, ignore_errors=True)


def _install(
    requirements: list[str], target: Path, platform: str | None, python_version: str, *, with_deps: bool
) -> None:
    command = [
        sys.executable,
        "-m",
        "uv",
        "pip",
        "install",
        "--quiet",
        "--only-binary",
        ":all:",
        "--target",
        str(target),
        "--python-version",
        python_version,
    ]
    if not with_deps:
        command.append("--no-deps")
    if platform:
        command += ["--python-platform", platform]
    completed = subprocess.run([*command, *requirements], capture_output=True, text=True, check=False)  # noqa: S603
    if completed.returncode != 0:
        msg = f"installing {' '.join(requirements)} failed: {completed.stderr.strip()[-2000:]}"
        raise RuntimeError(msg)


def build_layer(
    cache_dir: Path,
    requirements: list[str],
    *,
    platform: str | None,
    python_version: str,
    zipped: bool,
    with_deps: bool = False,
) -> Layer:
    """Install requirements into `python/` for a platform, cached while they are unchanged.

    With `platform=None` the layer is for this machine's Python (the local runner); with
    Lambda's platform and Python version it is the layer published to AWS. The function layer
    installs without dependencies: onnxruntime's declared ones (sympy, protobuf, ...) are for
    its tooling, not for inference, and the local runner proves the layer loads without them.
    """
    description = {
        "requirements": sorted(requirements),
        "platform": platform or "host",
        "python": python_version,
        "format": _LAYER_FORMAT,
        "with_deps": with_deps,
    }
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:16]
    root = cache_dir / key
    site = root / "python"
    marker = root / "layer.json"
    if not marker.is_file():
        shutil.rmtree(root, ignore_errors=True)
        _install(requirements, site, platform, python_version, with_deps=with_deps)
        _trim(site)
        marker.write_text(json.dumps(description, indent=2), encoding="utf-8")
    files = sorted(path for path in site.rglob("*") if path.is_file())
    unpacked = sum(path.stat().st_size for path in files)
    artifact = None
    if zipped:
        zip_path = root / "layer.zip"
        if zip_path.is_file():
            artifact = Artifact(zip_path, _file_digest(zip_path), zip_path.stat().st_size)
        else:
            entries = {f"python/{path.relative_to(site).as_posix()}": path for path in files}
            artifact = write_deterministic_zip(entries, zip_path, compresslevel=6)
    return Layer(key, site, artifact, unpacked)


def host_python_version() -> str:
    """The running interpreter's `major.minor`, for the local layer."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"
