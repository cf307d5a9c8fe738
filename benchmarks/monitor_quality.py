"""Monitor verdicts on real time-ordered data: drift share, weighted drift, estimated and realized metric.

Run: `.venv/bin/python -m benchmarks.monitor_quality [--case ames] [--case gapminder] [--case seattle]`

For each data set: train on an early period with the `train` flow (which deploys the
champion to the local target), start the local HTTP endpoint (`deployments.local.serve`), then
for each later window POST its rows one request at a time over a kept-alive connection,
upload their true values as labels, and run the `monitor` flow over exactly that window
(retrains off, so every window is judged against the same champion). Prints one line per
window: rows, `drift_share`, `weighted_drift`, the verdict and what drove it, the top
drifted inputs, the estimated (no labels) against the realized primary metric, the domain
classifier's ROC AUC (window rows told from holdout rows) and whether the estimate marked itself
unreliable, and why. At the end it checks the acceptance: on every window not marked
unreliable, DLE is within 15% of the realized RMSE and CBPE within 0.03 of the realized ROC AUC.

Data sets, all available offline:
- `ames`: the Ames sales (`../shared/data/AmesHousing.csv`); train on 2006-2007, serve
  2008, 2009 and 2010 as sold, then 2008 with the demo's area and size shift (x1.3).
- `gapminder`: life expectancy from GDP per head, population and continent (shipped
  inside `plotly`); train on 1952-1977, serve each later survey year.
- `seattle`: will it rain tomorrow, from today's Seattle weather (`vega_datasets`);
  train on 2012-2013, serve 2014 and 2015 (whole years, as the reference holds every season).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.replay import DATA_SETS, TimedData, benchmark_main, replay, serving

# (label, first period, last period, area and size factor) of each window after training
AMES_WINDOWS = [(str(year), year, year, 1.0) for year in (2008, 2009, 2010)]
WINDOWS: dict[str, tuple[int, list[tuple[str, int, int, float]]]] = {
    "ames": (2007, [*AMES_WINDOWS, ("2008, sizes x1.3", 2008, 2008, 1.3)]),
    "gapminder": (1977, [(str(year), year, year, 1.0) for year in range(1982, 2008, 5)]),
    # whole years: the reference holds every season, so a half-year would drift by the season alone
    "seattle": (2013, [("2014", 2014, 2014, 1.0), ("2015", 2015, 2015, 1.0)]),
}


def run_case(data: TimedData, work: Path) -> list[dict[str, Any]]:
    """Train, serve and monitor one data set in this process (its settings come from the environment)."""
    from flows.monitor import monitor_model
    from flows.training import train_model
    from tasks.core.settings import load_settings

    settings = load_settings()
    last_training_period, windows = WINDOWS[data.name]
    train_csv = work / "train.csv"
    data.between(0, last_training_period).to_csv(train_csv, index=False)
    started = time.perf_counter()
    trained = train_model(data_source=str(train_csv), dataset=data.spec)
    train_seconds = time.perf_counter() - started
    results = []
    with serving(settings.model_name, work) as endpoint:
        for label, first, last, factor in windows:
            rows = data.between(first, last)
            sent = replay(endpoint, data, rows, settings.storage, settings.model_name, factor)
            summary = monitor_model(start=sent.start, end=sent.end, retrain_mode="off")
            results.append(
                {
                    "case": data.name,
                    "window": label,
                    "rows": summary.rows,
                    "refused": sent.refused,
                    "drift_share": summary.drift_share,
                    "weighted_drift": summary.weighted_drift,
                    "verdict": summary.verdict.status,
                    "reasons": summary.verdict.reasons,
                    "drifted": [
                        f"{f['column']} ({f['importance']:.0%})" for f in summary.drifted_features[:4]
                    ],
                    "estimated": summary.estimated_metrics,
                    "domain_auc": summary.domain_classifier_auc,
                    "reliable": summary.estimate_reliable,
                    "unreliable_reasons": summary.estimate_unreliable_reasons,
                    "realized": summary.live_metrics,
                    "holdout": trained.metrics,
                    "train_seconds": train_seconds,
                }
            )
    return results


def _metric(values: dict[str, float], name: str) -> str:
    value = values.get(name)
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}"


# the promise of the estimate wherever it does not mark itself unreliable (DESIGN.md)
MAX_RMSE_ERROR = 0.15  # relative
MAX_ROC_AUC_ERROR = 0.03  # absolute


def _estimate_error(item: dict[str, Any]) -> tuple[str, float | None, bool]:
    """The primary metric, the estimate's error (relative for RMSE) and whether it is in bounds."""
    metric = "rmse" if "rmse" in item["holdout"] else "roc_auc"
    estimated, realized = item["estimated"].get(metric), item["realized"].get(metric)
    if estimated is None or realized is None:
        return metric, None, True
    if metric == "rmse":
        error = (estimated - realized) / realized
        return metric, error, abs(error) <= MAX_RMSE_ERROR
    return metric, estimated - realized, abs(estimated - realized) <= MAX_ROC_AUC_ERROR


def print_table(results: list[dict[str, Any]]) -> None:
    """One line per window; the error columns compare the estimate with the realized metric."""
    print(
        f"\n{'case':10} {'window':17} {'rows':>5} {'share':>6} {'weighted':>8}  {'verdict':8} "
        f"{'metric':8} {'holdout':>8} {'estimated':>9} {'realized':>9} {'est.err':>8} {'dom.AUC':>7} "
        f"{'reliable':8}  top drifted inputs"
    )
    for item in results:
        metric, error, _ = _estimate_error(item)
        shown = "n/a" if error is None else f"{error:+.1%}" if metric == "rmse" else f"{error:+.3f}"
        auc = "n/a" if item["domain_auc"] is None else f"{item['domain_auc']:.3f}"
        print(
            f"{item['case']:10} {item['window']:17} {item['rows']:5d} {item['drift_share']:6.1%} "
            f"{item['weighted_drift']:8.1%}  {item['verdict']:8} {metric:8} "
            f"{_metric(item['holdout'], metric):>8} {_metric(item['estimated'], metric):>9} "
            f"{_metric(item['realized'], metric):>9} {shown:>8} {auc:>7} "
            f"{'yes' if item['reliable'] else 'NO':8}  {', '.join(item['drifted']) or '-'}"
        )
    for item in results:
        print(f"  {item['case']} {item['window']}: {'; '.join(item['reasons'])}")
        if not item["reliable"]:
            print(f"    estimate unreliable: {'; '.join(item['unreliable_reasons'])}")
    misses = [item for item in results if item["reliable"] and not _estimate_error(item)[2]]
    print(
        f"  acceptance (reliable estimates within {MAX_RMSE_ERROR:.0%} RMSE / {MAX_ROC_AUC_ERROR} ROC AUC; "
        "every miss marked unreliable): "
        + ("met" if not misses else "NOT met on " + ", ".join(f"{i['case']} {i['window']}" for i in misses))
    )
    seconds = {item["case"]: item["train_seconds"] for item in results}
    print("  training seconds: " + ", ".join(f"{case} {value:.0f}" for case, value in seconds.items()))


if __name__ == "__main__":
    benchmark_main("benchmarks.monitor_quality", __doc__.split("\n", 1)[0], DATA_SETS, run_case, print_table)
