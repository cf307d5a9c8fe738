"""The command lines of `python -m flows.<command>`, checked before the flows' own imports.

A flow module imports Prefect, scikit-learn, MLflow and Evidently, which takes seconds (half a
minute on a busy machine). `python -m flows.training` imports the `flows` package first, and
its `__init__` calls `check_command_line()`: so `--help`, a wrong option and a wrong setting
answer at once, before those imports and before any Prefect server starts. Each flow module's
`main` reads the same command line again (quickly) and runs the flow with its parameters.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from monitoring.logs.window import parse_time
from tasks.core.data_source import RETRAIN_REASONS, check_local_source
from tasks.core.dataset_spec import load_dataset_spec
from tasks.core.errors import UsageError, run_command
from tasks.core.settings import Settings, load_settings, split_list

UNSET = "unset options come from the settings (the README's configuration table)"


@dataclass(frozen=True)
class Command:
    """One `python -m flows.<name>` command: its options and how they become flow parameters."""

    parser: Callable[[], argparse.ArgumentParser]
    parameters: Callable[[argparse.Namespace], dict[str, Any]]
    # flow parameters that stand in for a setting, validated like it: parameter -> settings field
    settings_fields: dict[str, str]
    # what else the flow reads first and can be checked now (a file named by a setting)
    check: Callable[[Settings, dict[str, Any]], object] | None = None


def _parser(module: str, description: str) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"python -m flows.{module}", description=description, epilog=UNSET)


def _time(text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        msg = f"not an ISO 8601 time: {text!r} (e.g. 2026-11-23T00:00:00Z)"
        raise argparse.ArgumentTypeError(msg) from None


def _names(text: str) -> list[str]:
    return list(split_list(text))


def training_parser() -> argparse.ArgumentParser:
    """`python -m flows.training`: the train flow's parameters as options."""
    parser = _parser(
        "training",
        "Train candidate models, register the best in MLflow and make it champion if it beats the "
        "current one on the same holdout; a promoted champion is deployed (MLOPS_DEPLOY_ON_PROMOTION).",
    )
    parser.add_argument(
        "--data-source", help="training data: path, http(s):// or s3:// URL (MLOPS_DATA_SOURCE)"
    )
    parser.add_argument(
        "--dataset-spec",
        type=Path,
        metavar="FILE",
        help="JSON dataset spec (MLOPS_DATASET_SPEC; Ames if unset)",
    )
    parser.add_argument("--model", help="registered model name (MLOPS_MODEL_NAME)")
    parser.add_argument(
        "--families",
        type=_names,
        metavar="NAME,...",
        help="candidate families, e.g. ridge,lightgbm (MLOPS_CANDIDATE_FAMILIES; all of the task's if unset)",
    )
    parser.add_argument("--reason", default="manual", help="recorded as the run's trigger (default: manual)")
    parser.add_argument(
        "--production-hours",
        type=float,
        metavar="HOURS",
        help="add the labelled production rows of that many past hours",
    )
    parser.add_argument(
        "--retrain-data",
        choices=["all", "recent", "weighted"],
        help="rows a run with production rows learns from (MLOPS_RETRAIN_DATA; a retrain: its champion's)",
    )
    parser.add_argument(
        "--promotion-margin",
        type=float,
        help="relative improvement a candidate must exceed to become champion (MLOPS_PROMOTION_MARGIN)",
    )
    parser.add_argument(
        "--deploy",
        dest="deploy_on_promotion",
        action=argparse.BooleanOptionalAction,
        help="deploy a newly promoted champion (MLOPS_DEPLOY_ON_PROMOTION)",
    )
    return parser


def training_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The train flow's parameters from its command line."""
    return {
        "data_source": args.data_source,
        "dataset": None
        if args.dataset_spec is None
        else load_dataset_spec(args.dataset_spec, "--dataset-spec"),
        "model_name": args.model,
        "families": args.families,
        "reason": args.reason,
        "production_hours": args.production_hours,
        "retrain_data": args.retrain_data,
        "promotion_margin": args.promotion_margin,
        "deploy_on_promotion": args.deploy_on_promotion,
    }


def _check_training(settings: Settings, parameters: dict[str, Any]) -> None:
    """Read the spec now, and refuse a local data file that does not exist, before any server starts.

    MLOPS_DATASET_SPEC is read unless `--dataset-spec` replaces it (its errors name the file). A
    retrain (`--reason drift` or `schedule`) reads its champion's recorded data, checked when read.
    """
    spec = parameters.get("dataset") or load_dataset_spec(settings.dataset_spec)
    if parameters.get("reason") not in RETRAIN_REASONS:
        check_local_source(str(parameters.get("data_source") or settings.data_source), spec.name)


def monitoring_parser() -> argparse.ArgumentParser:
    """`python -m flows.monitor`: the monitor flow's parameters as options."""
    parser = _parser(
        "monitor",
        "Compare a window of logged predictions with the champion's training data (Evidently drift "
        "and quality reports), decide whether it drifted and, if so, start at most one retrain.",
    )
    parser.add_argument("--model", help="model to monitor (MLOPS_MODEL_NAME)")
    parser.add_argument(
        "--window-hours",
        type=float,
        metavar="HOURS",
        help="the last this many hours (MLOPS_MONITOR_WINDOW_HOURS)",
    )
    parser.add_argument(
        "--start", type=_time, help="with --end: an explicit window (ISO 8601, UTC if no zone)"
    )
    parser.add_argument("--end", type=_time, help="see --start")
    parser.add_argument(
        "--ignore-cooldown",
        action="store_true",
        help="a drift verdict may start a retrain within the cooldown (never while one is in flight)",
    )
    parser.add_argument(
        "--drift-threshold",
        type=float,
        help="drift measure above which the window drifts (MLOPS_DRIFT_THRESHOLD)",
    )
    parser.add_argument(
        "--drift-measure",
        choices=["weighted", "share"],
        help="what the threshold compares (MLOPS_DRIFT_MEASURE)",
    )
    parser.add_argument(
        "--max-quality-drop",
        type=float,
        help="drift when the primary metric is this much worse than on the holdout (MLOPS_MAX_QUALITY_DROP)",
    )
    parser.add_argument(
        "--retrain-mode",
        choices=["auto", "event", "inline", "off"],
        help="how a drift verdict retrains (MLOPS_RETRAIN_MODE)",
    )
    parser.add_argument(
        "--retrain-data-source", metavar="SOURCE", help="training data of a retrain this run starts inline"
    )
    return parser


def monitoring_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The monitor flow's parameters from its command line."""
    if (args.start is None) != (args.end is None):
        msg = "--start and --end go together"
        raise UsageError(msg)
    if args.start is not None and args.end <= args.start:
        msg = f"--end {args.end.isoformat()} is not after --start {args.start.isoformat()}"
        raise UsageError(msg)
    return {
        "model_name": args.model,
        "window_hours": args.window_hours,
        "start": args.start,
        "end": args.end,
        "ignore_cooldown": args.ignore_cooldown,
        "drift_threshold": args.drift_threshold,
        "drift_measure": args.drift_measure,
        "max_quality_drop": args.max_quality_drop,
        "retrain_mode": args.retrain_mode,
        "retrain_data_source": args.retrain_data_source,
    }


def batch_parser() -> argparse.ArgumentParser:
    """`python -m flows.batch_predict SOURCE`: the batch-predict flow's parameters."""
    parser = _parser(
        "batch_predict",
        "Score a CSV/TSV/Parquet file, or every such file under a folder or S3 prefix, with the live "
        "model; rows are logged like API traffic and the scores written under <storage>/batch/.",
    )
    parser.add_argument("source", help="file, folder or s3:// prefix to score")
    parser.add_argument("--model", help="model whose live version scores (MLOPS_MODEL_NAME)")
    return parser


def batch_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The batch-predict flow's parameters from its command line."""
    return {"source": args.source, "model_name": args.model}


def deploy_parser() -> argparse.ArgumentParser:
    """`python -m flows.deploy`: the deploy flow's parameters as options."""
    parser = _parser("deploy", "Deploy the champion (or a registered version) to MLOPS_TARGET.")
    parser.add_argument("--model", help="registered model name (MLOPS_MODEL_NAME)")
    parser.add_argument("--version", help="registered model version (default: the champion)")
    return parser


def deploy_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The deploy flow's parameters from its command line."""
    return {"model_name": args.model, "model_version": args.version or None}


COMMANDS = {
    "training": Command(
        training_parser,
        training_parameters,
        {
            "data_source": "data_source",
            "model_name": "model_name",
            "promotion_margin": "promotion_margin",
            "deploy_on_promotion": "deploy_on_promotion",
        },
        _check_training,
    ),
    "monitor": Command(
        monitoring_parser,
        monitoring_parameters,
        {
            "model_name": "model_name",
            "window_hours": "monitor_window_hours",
            "drift_threshold": "drift_threshold",
            "drift_measure": "drift_measure",
            "max_quality_drop": "max_quality_drop",
            "retrain_mode": "retrain_mode",
        },
    ),
    "batch_predict": Command(batch_parser, batch_parameters, {"model_name": "model_name"}),
    "deploy": Command(deploy_parser, deploy_parameters, {"model_name": "model_name"}),
}


def command_parameters(name: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse a command's options and check them and the settings; the flow parameters that are set.

    `--help` prints the usage and exits, a wrong option exits with argparse's message; a wrong
    setting or option value raises the `UserError` naming it, before the flow is imported.
    """
    command = COMMANDS[name]
    arguments = command.parser().parse_args(argv)
    settings = load_settings()
    given = {key: value for key, value in command.parameters(arguments).items() if value is not None}
    settings.with_values(
        **{command.settings_fields[key]: given[key] for key in command.settings_fields if key in given}
    )
    if command.check is not None:
        command.check(settings, given)
    return given


def running_command() -> str | None:
    """The command name when this process is `python -m flows.<command>` locating its module.

    While `python -m` locates the module (and imports its package), Python sets `sys.argv[0]`
    to "-m"; `sys.orig_argv` still holds the module's name.
    """
    if sys.argv[:1] != ["-m"]:
        return None
    arguments = sys.orig_argv[1:]
    module = next(
        (
            arguments[index + 1] if argument == "-m" else argument.removeprefix("-m")
            for index, argument in enumerate(arguments)
            if argument.startswith("-m") and (argument != "-m" or index + 1 < len(arguments))
        ),
        "",
    )
    name = module.removeprefix("flows.")
    return name if module.startswith("flows.") and name in COMMANDS else None


def check_command_line() -> None:
    """For `python -m flows.<command>`: answer `--help` or a wrong option or setting now."""
    name = running_command()
    if name is not None:
        run_command(lambda: command_parameters(name, sys.argv[1:]))
