"""Point `live` at an earlier function version: `python -m deployments.targets.rollback VERSION`.

Without VERSION it lists the versions and where `live` points. The version is smoke-tested
first, as a deploy does, and `live` moves only if it answers. On the local target the server
follows at once; on AWS the API Gateway integration targets the alias, so the endpoint URL
stays the same. A rollback is not a pin: the next deploy of a champion (a promotion with
MLOPS_DEPLOY_ON_PROMOTION, or `python -m flows.deploy`) moves `live` again.
"""

from __future__ import annotations

import argparse

from deployments.targets.selection import target_for
from tasks.core.errors import run_command
from tasks.core.settings import load_settings

NOT_A_PIN = (
    "note: this is not a pin; the next deploy of a champion moves live again "
    "(set MLOPS_DEPLOY_ON_PROMOTION=false to stop promotions from deploying)"
)


def main(argv: list[str] | None = None) -> None:
    """List versions or move `live`."""
    parser = argparse.ArgumentParser(description="List function versions or move the live alias.")
    parser.add_argument("version", nargs="?", help="function version to make live")
    parser.add_argument("--model", help="model name (default: MLOPS_MODEL_NAME)")
    args = parser.parse_args(argv)

    def run() -> None:
        settings = load_settings()
        target = target_for(settings, args.model or settings.model_name)
        if args.version:
            result = target.rollback(args.version)
            moved = f"version {result.function_version} (model v{result.model_version})"
            was = f"version {result.previous_version}" if result.previous_version else "no readable version"
            print(f"live -> {moved}, was {was}; {result.detail}")
        for item in target.versions():
            marker = "  <- live" if item.live else ""
            served = f"model v{item.model_version}, sha256 {item.sha256[:12]}"
            print(f"version {item.version}: {served}{marker}")
        if args.version:
            print(NOT_A_PIN)

    run_command(run)


if __name__ == "__main__":
    main()
