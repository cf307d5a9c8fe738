"""Monitor verdicts on real time-ordered data: drift share, weighted drift, estimated and realized metric.

Run: `.venv/bin/python -m benchmarks.monitor_quality [--case ames] [--case gapminder] [--case seattle]`

For each data set: train on an early period with the `train` flow (which deploys the
champion to the local target), start the local HTTP endpoint (`deployments.serve`), then
for each later window POST its rows one request at a time over a kept-alive connection,
upload their true values as labels, and run the `monitor` flow over exactly that window
(retrains off, so every window is judged against the same champion). Prints one line per
window: rows, `drift_share`, `weighted_drift`, the verdict and what drove it, the top
drifted inputs, and the estimated (no labels) against the realized primary metric.

Data sets, all available offline:
- `ames`: the Ames sales (`../shared/data/AmesHousing.csv`); train on 2006-2007, serve
  2008, 2009 and 2010 as sold, then 2008 with the demo's area and size shift (x1.3).
- `gapminder`: life expectancy from GDP per head, population and continent (shipped
  inside `plotly`); train on 1952-1977, serve each later survey year.
- `seattle`: will it rain tomorrow, from today's Seattle weather (`vega_datasets`);
  train on 2012-2013, serve each half-year of 2014-2015.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.dataset import AMES_SPEC, DatasetSpec
from tasks.settings import PROJECT_ROOT

AMES_CSV = PROJECT_ROOT.parent / "shared" / "data" / "AmesHousing.csv"


@dataclass(frozen=True)
class Case:
    """A data set split into a training period and later windows of traffic."""

    name: str
    spec: DatasetSpec
    train: pd.DataFrame
    windows: list[tuple[str, pd.DataFrame, float]]  # label, raw rows, size-shift factor
    target: str  # raw target column name


def ames() -> Case:
    """Ames sales: 2006-2007 to train; 2008, 2009, 2010 as sold; 2008 with the demo's shift."""
    sales = pd.read_csv(AMES_CSV, dtype=str, keep_default_na=False, na_values=[""])
    year = pd.to_numeric(sales["Yr Sold"])
    windows = [(str(y), sales[year == y], 1.0) for y in (2008, 2009, 2010)]
    windows.append(("2008, sizes x1.3", sales[year == 2008], 1.3))
    spec = AMES_SPEC.model_copy(update={"name": "ames-bench"})
    return Case("ames", spec, sales[year <= 2007], windows, "SalePrice")


def gapminder() -> Case:
    """Life expectancy by country: the surveys of 1952-1977 to train, each later survey a window."""
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
    later = sorted(year for year in frame["year"].unique() if year > 1977)
    windows = [(str(year), frame[frame["year"] == year], 1.0) for year in later]
    return Case("gapminder", spec, frame[frame["year"] <= 1977], windows, "lifeExp")


def seattle() -> Case:
    """Rain tomorrow from today's weather in Seattle: 2012-2013 to train, half-years of 2014-2015."""
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
    half = days["date"].dt.year.astype(str) + "H" + ((days["date"].dt.month > 6) + 1).astype(str)
    windows = [(label, days[half == label], 1.0) for label in ("2014H1", "2014H2", "2015H1", "2015H2")]
    return Case("seattle", spec, days[days["date"].dt.year <= 2013], windows, "rain_tomorrow")


CASES: dict[str, Callable[[], Case]] = {"ames": ames, "gapminder": gapminder, "seattle": seattle}


def _wait_for(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            msg = f"the endpoint exited with {server.returncode}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    msg = f"{url} did not answer within {timeout:.0f} s"
    raise RuntimeError(msg)


def run_case(case: Case, work: Path) -> list[dict[str, Any]]:
    """Train, serve and monitor one data set in this process (its settings come from the environment)."""
    from deployments.lambda_handler.contract import ServingSchema
    from flows.demo import shifted, size_features
    from flows.monitoring import monitor_model
    from flows.training import train_model
    from monitoring.labels import upload_labels
    from tasks.batch import to_instances
    from tasks.data import normalise_columns
    from tasks.settings import load_settings
    from tests.support.processes import free_port
    from tests.support.traffic import HttpTraffic

    settings = load_settings()
    train_csv = work / "train.csv"
    case.train.to_csv(train_csv, index=False)
    started = time.perf_counter()
    trained = train_model(data_source=str(train_csv), dataset=case.spec)
    train_seconds = time.perf_counter() - started
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "deployments.serve", "--port", str(port), "--model", settings.model_name],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(work / "serve.log").open("w"),
    )
    results = []
    try:
        _wait_for(url, server)
        traffic = HttpTraffic(url)
        traffic.connection.request("GET", "/schema")
        schema = ServingSchema.from_dict(json.loads(traffic.connection.getresponse().read()))
        sizes = set(size_features(schema.numeric))
        for label, rows, factor in case.windows:
            raw = normalise_columns(rows.astype(str).where(rows.notna(), ""))
            instances = [shifted(item, sizes, factor) for item in to_instances(raw, schema)]
            start = datetime.now(UTC) - timedelta(seconds=1)
            ids, actuals, refused = [], [], 0
            for instance, actual in zip(instances, rows[case.target], strict=True):
                status, answer = traffic.post(instance)
                if status == 200:
                    ids.append(answer["request_id"])
                    actuals.append(actual if case.spec.task == "classification" else float(actual))
                else:
                    refused += 1
            labels = pd.DataFrame({"request_id": ids, "row": 0, "actual": actuals})
            upload_labels(labels, settings.storage, settings.model_name, case.spec.task)
            end = datetime.now(UTC) + timedelta(seconds=1)
            summary = monitor_model(start=start, end=end, retrain_mode="off")
            results.append(
                {
                    "case": case.name,
                    "window": label,
                    "rows": summary.rows,
                    "refused": refused,
                    "drift_share": summary.drift_share,
                    "weighted_drift": summary.weighted_drift,
                    "verdict": summary.verdict.status,
                    "reasons": summary.verdict.reasons,
                    "drifted": [
                        f"{f['column']} ({f['importance']:.0%})" for f in summary.drifted_features[:4]
                    ],
                    "estimated": summary.estimated_metrics,
                    "realized": summary.live_metrics,
                    "holdout": trained.metrics,
                    "train_seconds": train_seconds,
                }
            )
        traffic.stop()
    finally:
        server.terminate()
        server.wait(timeout=10)
    return results


def _in_child(name: str, work: Path) -> list[dict[str, Any]]:
    """Run one case in its own process and state folder (settings are read from the environment)."""
    env = {
        **os.environ,
        "MLOPS_HOME": str(work / name),
        "MLOPS_MODEL_NAME": f"{name}-bench",
        "MLOPS_DEPLOY_ON_PROMOTION": "true",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    env.pop("MLOPS_STORAGE_URL", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    out = work / f"{name}.json"
    command = [sys.executable, "-m", "benchmarks.monitor_quality", "--child", name, "--out", str(out)]
    subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=True)
    return json.loads(out.read_text())


def _metric(values: dict[str, float], name: str) -> str:
    value = values.get(name)
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"


def print_table(results: list[dict[str, Any]]) -> None:
    """One line per window; the error columns compare the estimate with the realized metric."""
    print(
        f"\n{'case':10} {'window':17} {'rows':>5} {'share':>6} {'weighted':>8}  {'verdict':8} "
        f"{'metric':8} {'holdout':>8} {'estimated':>9} {'realized':>9} {'est.err':>8}  top drifted inputs"
    )
    for item in results:
        metric = "rmse" if "rmse" in item["holdout"] else "roc_auc"
        estimated, realized = item["estimated"].get(metric), item["realized"].get(metric)
        if estimated is None or realized is None:
            error = "n/a"
        elif metric == "rmse":
            error = f"{(estimated - realized) / realized:+.1%}"
        else:
            error = f"{estimated - realized:+.3f}"
        print(
            f"{item['case']:10} {item['window']:17} {item['rows']:5d} {item['drift_share']:6.1%} "
            f"{item['weighted_drift']:8.1%}  {item['verdict']:8} {metric:8} "
            f"{_metric(item['holdout'], metric):>8} {_metric(item['estimated'], metric):>9} "
            f"{_metric(item['realized'], metric):>9} {error:>8}  {', '.join(item['drifted']) or '-'}"
        )
    for item in results:
        print(f"  {item['case']} {item['window']}: {'; '.join(item['reasons'])}")
    seconds = {item["case"]: item["train_seconds"] for item in results}
    print("  training seconds: " + ", ".join(f"{case} {value:.0f}" for case, value in seconds.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        work = Path(os.environ["MLOPS_HOME"])
        work.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(run_case(CASES[args.child](), work)))
        return
    work = Path(tempfile.mkdtemp(prefix="bench-monitor-"))
    results = []
    for name in args.case or list(CASES):
        results += _in_child(name, work)
    print_table(results)
    print(f"\nstate of each run: {work}")


if __name__ == "__main__":
    main()
