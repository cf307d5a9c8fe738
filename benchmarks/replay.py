"""Replay real time-ordered data through the loop: the data sets, the local endpoint, labelled traffic.

Shared by `benchmarks.monitor_quality` and `benchmarks.loop_quality`. Data sets, all available
offline:
- `ames`: the Ames sales (`../shared/data/AmesHousing.csv`), by year sold.
- `gapminder`: life expectancy from GDP per head, population and continent (shipped inside
  `plotly`), by survey year.
- `seattle`: will it rain tomorrow, from today's Seattle weather (`vega_datasets`), by year.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.core.dataset_spec import AMES_SPEC, DatasetSpec
from tasks.core.settings import PROJECT_ROOT

AMES_CSV = PROJECT_ROOT.parent / "shared" / "data" / "AmesHousing.csv"


@dataclass(frozen=True)
class TimedData:
    """A data set with the period of each row (a year), its spec and raw target column."""

    name: str
    spec: DatasetSpec
    rows: pd.DataFrame
    period: pd.Series
    target: str

    def between(self, first: int, last: int) -> pd.DataFrame:
        """The rows of the periods `first`..`last`, inclusive."""
        return self.rows[(self.period >= first) & (self.period <= last)]


def ames() -> TimedData:
    """Ames sales by year sold (2006-2010)."""
    sales = pd.read_csv(AMES_CSV, dtype=str, keep_default_na=False, na_values=[""])
    spec = AMES_SPEC.model_copy(update={"name": "ames-bench"})
    return TimedData("ames", spec, sales, pd.to_numeric(sales["Yr Sold"]), "SalePrice")


def gapminder() -> TimedData:
    """Life expectancy by country and survey year (1952-2007, every 5 years)."""
    import plotly.data

    frame = plotly.data.gapminder()[["country", "continent", "year", "lifeExp", "pop", "gdpPercap"]]
    spec = DatasetSpec(
        name="gapminder",
        target="lifeExp",
        task="regression",
        drop=["country"],
        categorical=[],
        time_column="year",
    )
    return TimedData("gapminder", spec, frame, frame["year"], "lifeExp")


def seattle() -> TimedData:
    """Rain tomorrow from today's weather in Seattle, 2012-2015, by year."""
    from vega_datasets import local_data

    days = local_data.seattle_weather().sort_values("date").reset_index(drop=True)
    days["rain_tomorrow"] = (days["precipitation"].shift(-1) > 0).map({True: "yes", False: "no"})
    days["month"] = days["date"].dt.month.astype(str)
    days = days.iloc[:-1].drop(columns=["weather"])
    spec = DatasetSpec(
        name="seattle-weather",
        target="rain_tomorrow",
        task="classification",
        drop=[],
        categorical=["month"],
        time_column="date",
    )
    return TimedData("seattle", spec, days, days["date"].dt.year, "rain_tomorrow")


DATA_SETS: dict[str, Callable[[], TimedData]] = {"ames": ames, "gapminder": gapminder, "seattle": seattle}


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Return once `url` answers; fail if the server process exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"{url}: the server exited with {process.returncode}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    msg = f"{url} did not answer within {timeout:.0f} s"
    raise RuntimeError(msg)


@dataclass(frozen=True)
class Replayed:
    """One window of traffic sent through the endpoint, its labels uploaded."""

    start: datetime
    end: datetime
    answered: int
    refused: int


class Endpoint:
    """The local HTTP endpoint of a model (`deployments.local.serve`), and a kept-alive client on it."""

    def __init__(self, model_name: str, work: Path) -> None:
        from tests.support.processes import free_port

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deployments.local.serve", "--port", str(port), "--model", model_name],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=(work / "serve.log").open("w"),
        )

    def wait(self, timeout: float = 60) -> None:
        """Return once /health answers; fail if the process exits or the time runs out."""
        wait_for(f"{self.url}/health", self.process, timeout)

    def stop(self) -> None:
        """Stop the process this endpoint started."""
        self.process.terminate()
        self.process.wait(timeout=10)


@contextmanager
def serving(model_name: str, work: Path) -> Iterator[Endpoint]:
    """The endpoint, up and answering, stopped on exit."""
    endpoint = Endpoint(model_name, work)
    try:
        endpoint.wait()
        yield endpoint
    finally:
        endpoint.stop()


def replay(
    endpoint: Endpoint,
    data: TimedData,
    rows: pd.DataFrame,
    storage: str,
    model_name: str,
    factor: float = 1.0,
) -> Replayed:
    """POST each row (area and size inputs times `factor`) one request at a time; upload the labels."""
    from deployments.lambda_handler.contract import ServingSchema
    from flows.demo import shifted, size_features
    from monitoring.labels.commands import upload_labels
    from tasks.learning.data import normalise_columns
    from tasks.steps.batch_steps import to_instances
    from tests.support.traffic import HttpTraffic

    traffic = HttpTraffic(endpoint.url)
    traffic.connection.request("GET", "/schema")
    schema = ServingSchema.from_dict(json.loads(traffic.connection.getresponse().read()))
    sizes = set(size_features(schema.numeric))
    raw = normalise_columns(rows.astype(str).where(rows.notna(), ""))
    instances = [shifted(item, sizes, factor) for item in to_instances(raw, schema)]
    start = datetime.now(UTC) - timedelta(seconds=1)
    ids, actuals, refused = [], [], 0
    for instance, actual in zip(instances, rows[data.target], strict=True):
        status, answer = traffic.post(instance)
        if status == 200:
            ids.append(answer["request_id"])
            actuals.append(actual if data.spec.task == "classification" else float(actual))
        else:
            refused += 1
    traffic.connection.close()
    labels = pd.DataFrame({"request_id": ids, "row": 0, "actual": actuals})
    upload_labels(labels, storage, model_name, schema)
    return Replayed(start, datetime.now(UTC) + timedelta(seconds=1), len(ids), refused)


def in_child(module: str, name: str, work: Path) -> list[dict[str, Any]]:
    """Run `python -m <module> --child <name>` in its own process and state folder; its results."""
    env = {
        **os.environ,
        "MLOPS_HOME": str(work / name),
        "MLOPS_MODEL_NAME": f"{name}-bench",
        "MLOPS_DEPLOY_ON_PROMOTION": "true",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    }
    for inherited in ("MLOPS_STORAGE_URL", "MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
        env.pop(inherited, None)
    out = work / f"{name}.json"
    command = [sys.executable, "-m", module, "--child", name, "--out", str(out)]
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True)
    return list(json.loads(out.read_text()))


def benchmark_main(
    module: str,
    description: str,
    cases: dict[str, Callable[[], TimedData]],
    run_case: Callable[[TimedData, Path], list[dict[str, Any]]],
    print_table: Callable[[list[dict[str, Any]]], None],
) -> None:
    """The command line of a replay benchmark: each chosen data set in a child process, then the table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--case", action="append", choices=sorted(cases), help="default: all")
    parser.add_argument("--child", choices=sorted(cases), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = Path(os.environ["MLOPS_HOME"])
        work.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(run_case(cases[args.child](), work)))
        return
    work = Path(tempfile.mkdtemp(prefix=f"{module.rsplit('.', 1)[-1]}-"))
    results = []
    for name in args.case or list(cases):
        results += in_child(module, name, work)
    print_table(results)
    print(f"\nstate of each run: {work}")
