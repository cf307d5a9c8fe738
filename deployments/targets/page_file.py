"""Write the prediction page as one static HTML file, for any web host.

`python -m deployments.targets.page_file --out page.html --api-url https://…` makes the page of the
champion (or `--version`, or a bundle folder) that calls that API's `POST /predict`. Served
from another origin, the page needs that origin in `MLOPS_API_CORS_ORIGINS` of the API.
Without `--api-url` the page calls the origin it is served from, as the function's own does.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from deployments.lambda_handler.contract import SCHEMA_FILE
from deployments.page.form import TOP_INPUTS
from deployments.page.render import MAX_PAGE_BYTES, build_page
from deployments.targets.selection import browser_auth
from tasks.core.errors import UsageError, run_command
from tasks.core.settings import load_settings
from tasks.registry.model_registry import fetch_bundle


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m deployments.targets.page_file", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    parser.add_argument(
        "--api-url", default="", help="the API the page calls (default: the page's own origin)"
    )
    parser.add_argument(
        "--bundle", type=Path, help="a model bundle folder (default: from the MLflow registry)"
    )
    parser.add_argument("--model", help="registered model name (default: MLOPS_MODEL_NAME)")
    parser.add_argument("--version", help="registered model version (default: the champion)")
    parser.add_argument(
        "--auth",
        choices=("iam", "jwt", "none"),
        help="how the API authorizes requests (default: MLOPS_API_AUTH on aws, none on the local target)",
    )
    parser.add_argument(
        "--top", type=int, default=TOP_INPUTS, help="inputs shown first (default: %(default)s)"
    )
    return parser.parse_args(argv)


def write_page(args: argparse.Namespace) -> Path:
    """Make the page as the arguments say and write it; returns the file written."""
    settings = load_settings()
    if args.top < 1:
        msg = f"--top must be at least 1, got {args.top}"
        raise UsageError(msg)
    if args.bundle is not None:
        bundle = args.bundle
        if not (bundle / SCHEMA_FILE).is_file():
            msg = f"{bundle} is no model bundle (it has no {SCHEMA_FILE})"
            raise UsageError(msg)
    else:
        name = args.model or settings.model_name
        bundle, _ = fetch_bundle(settings.tracking_uri, name, args.version, settings.home / "build")
    page = build_page(bundle, args.api_url, args.auth or browser_auth(settings), args.top)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, then write the page."""
    args = _arguments(argv)

    def run() -> None:
        written = write_page(args)
        size = written.stat().st_size
        note = (
            ""
            if size <= MAX_PAGE_BYTES
            else f" (over {MAX_PAGE_BYTES // 1024} KB: fewer categories would help)"
        )
        print(f"wrote {written} ({size / 1024:.1f} KB){note}")  # noqa: T201

    run_command(run)


if __name__ == "__main__":
    main()
