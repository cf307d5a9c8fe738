"""Does a drift-triggered retrain pay off? Old against retrained champion on the period after.

Run: `.venv/bin/python -m benchmarks.loop_quality [--case ames] [--case gapminder] [--case seattle]`

For each data set: train on an early period with the `train` flow (the champion is deployed
to the local target), start the local HTTP endpoint, POST the next period one request at a
time, upload its labels, and run the `monitor` flow over exactly that window with inline
retrains (the retrain reads the early period as its source data and the labelled traffic as
production rows, under `MLOPS_RETRAIN_DATA`). Then score the period after that with the old
champion and with the champion after the monitor (the retrained one, if promoted), from their
registered ONNX bundles. Prints per data set: the verdict, whether a retrain was promoted, the
old and new error on the later period, the first training's time and the monitor run's (which
includes the retrain).

Periods (data sets in `benchmarks.replay`):
- `ames`: train 2006-2007, serve 2008, score 2009-2010.
- `ames-sizes`: the same, but from 2008 on every area and size input reads 1.3 times larger
  at the same price (the demo's shift, as a world that moved).
- `ames-time`: as `ames`, with `time_column: "Yr Sold"` (the latest 2007 sales are the holdout).
- `gapminder`: train 1952-1977, serve 1982-1987, score 1992-2007.
- `seattle`: train 2012-2013, serve 2014, score 2015.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.replay import DATA_SETS, TimedData, ames, benchmark_main, replay, serving

# last training period, served periods, scored periods, area and size factor after training
PERIODS: dict[str, tuple[int, tuple[int, int], tuple[int, int], float]] = {
    "ames": (2007, (2008, 2008), (2009, 2010), 1.0),
    "ames-sizes": (2007, (2008, 2008), (2009, 2010), 1.3),
    "ames-time": (2007, (2008, 2008), (2009, 2010), 1.0),
    "gapminder": (1977, (1982, 1987), (1992, 2007), 1.0),
    "seattle": (2013, (2014, 2014), (2015, 2015), 1.0),
}
CASES: dict[str, Callable[[], TimedData]] = {
    **DATA_SETS,
    # a world that moved: from 2008 on, every area and size reads 1.3 times larger at the same price
    "ames-sizes": lambda: replace(ames(), name="ames-sizes"),
    # the holdout is the latest sales, as a shop with dated sales would choose
    "ames-time": lambda: _with_time_column(replace(ames(), name="ames-time"), "Yr Sold"),
}


def _with_time_column(data: TimedData, column: str) -> TimedData:
    spec = type(data.spec).model_validate({**data.spec.model_dump(), "time_column": column})  # normalised
    return replace(data, spec=spec)


def prepared_rows(
    data: TimedData, rows: Any, numeric: list[str], factor: float, *, bounded: bool = False
) -> Any:
    """Raw rows prepared as training would, with the area and size inputs scaled by `factor`.

    Every row is scored unless `bounded`: the spec's `row_bounds` choose training rows, not the
    sales a model answers. `bounded` keeps only the rows within them (after the scaling).
    """
    from flows.demo import size_features
    from tasks.core.row_bounds import rows_within
    from tasks.learning.data import prepare_data

    every_row = data.spec.model_copy(update={"row_bounds": {}})
    prepared = prepare_data(rows, every_row, f"{data.name} scored period", min_rows=1)
    sizes = size_features(numeric)
    prepared.frame[sizes] = prepared.frame[sizes] * factor
    if bounded:
        inside = rows_within(prepared.frame, data.spec.row_bounds)
        return replace(prepared, frame=prepared.frame[inside].reset_index(drop=True))
    return prepared


def fixed_family_metrics(
    data: TimedData, train_csv: Path, rows: Any, factor: float, *, bounded: bool = False
) -> dict[str, dict[str, float]]:
    """Each family with its fixed parameters, fitted on the first training's rows, scored on `rows`."""
    from tasks.core.metrics import holdout_metrics
    from tasks.core.settings import load_settings
    from tasks.learning.candidate_selection import fit_candidate
    from tasks.learning.candidates import FAMILIES
    from tasks.learning.data import prepare_data, read_table
    from tasks.learning.onnx_export import pipeline_scores
    from tasks.learning.split import split_data

    settings = load_settings()
    source = prepare_data(read_table(str(train_csv), data.spec.missing_values), data.spec, str(train_csv), 50)
    split = split_data(source, data.spec.time_column, settings.holdout_fraction, settings.random_seed)
    scored = prepared_rows(data, rows, source.numeric, factor, bounded=bounded)
    results = {}
    for family in FAMILIES[source.task]:
        candidate = fit_candidate(family, source, split, settings.random_seed)
        scores = pipeline_scores(candidate.pipeline, scored.frame[source.features], source.task)
        results[family] = holdout_metrics(source.task, scored.frame[scored.target].to_numpy(), scores)
    return results


def later_period_metrics(
    data: TimedData, rows: Any, version: str, work: Path, factor: float, *, bounded: bool = False
) -> dict[str, float]:
    """Metrics of a registered version's ONNX model on raw rows (prepared as training would), and `rows`."""
    from deployments.lambda_handler.contract import MODEL_FILE, ServingSchema
    from tasks.core.metrics import holdout_metrics
    from tasks.core.settings import load_settings
    from tasks.learning.onnx_export import create_session, onnx_scores
    from tasks.registry.model_registry import fetch_bundle

    settings = load_settings()
    bundle, _ = fetch_bundle(settings.tracking_uri, settings.model_name, version, work / "scored")
    schema = ServingSchema.load(bundle)
    prepared = prepared_rows(data, rows, schema.numeric, factor, bounded=bounded)
    session = create_session((bundle / MODEL_FILE).read_bytes())
    scores = onnx_scores(session, prepared.frame, schema.numeric, schema.categorical, schema.task)
    metrics = holdout_metrics(schema.task, prepared.frame[prepared.target].to_numpy(), scores)
    return {**metrics, "rows": float(len(prepared.frame))}


def run_case(data: TimedData, work: Path) -> list[dict[str, Any]]:
    """Train, serve, monitor (with inline retrain) and score the later period, in this process."""
    from deployments.lambda_handler.contract import CHAMPION_ALIAS
    from flows.monitor import monitor_model
    from flows.training import train_model
    from tasks.core.settings import load_settings
    from tasks.registry.model_registry import mlflow_client, version_by_alias

    settings = load_settings()
    last_training, served, scored, factor = PERIODS[data.name]
    train_csv = work / "train.csv"
    data.between(0, last_training).to_csv(train_csv, index=False)
    started = time.perf_counter()
    trained = train_model(data_source=str(train_csv), dataset=data.spec)
    train_seconds = time.perf_counter() - started
    with serving(settings.model_name, work) as endpoint:
        served_rows = data.between(*served)
        sent = replay(endpoint, data, served_rows, settings.storage, settings.model_name, factor)
    spec_file = work / "spec.json"
    spec_file.write_text(data.spec.model_dump_json())
    os.environ["MLOPS_DATASET_SPEC"] = str(spec_file)  # the inline retrain reads the spec from settings
    started = time.perf_counter()
    summary = monitor_model(
        start=sent.start,
        end=sent.end,
        retrain_mode="inline",
        retrain_data_source=str(train_csv),
        ignore_cooldown=True,
    )
    monitor_seconds = time.perf_counter() - started
    champion = version_by_alias(mlflow_client(settings.tracking_uri), settings.model_name, CHAMPION_ALIAS)
    new_version = str(trained.model_version) if champion is None else str(champion.version)
    later = data.between(*scored)
    served_champion = later_period_metrics(data, served_rows, str(trained.model_version), work, factor)
    served_fixed = fixed_family_metrics(data, train_csv, served_rows, factor)
    bounded_champion = later_period_metrics(
        data, served_rows, str(trained.model_version), work, factor, bounded=True
    )
    bounded_fixed = fixed_family_metrics(data, train_csv, served_rows, factor, bounded=True)
    old = later_period_metrics(data, later, str(trained.model_version), work, factor)
    new = later_period_metrics(data, later, new_version, work, factor)
    return [
        {
            "case": data.name,
            "served_rows": sent.answered,
            "later_rows": len(later),
            "verdict": summary.verdict.status,
            "reasons": summary.verdict.reasons,
            "weighted_drift": summary.weighted_drift,
            "retrain": summary.retrain,
            "promoted": new_version != str(trained.model_version),
            "old_version": str(trained.model_version),
            "new_version": new_version,
            "old": old,
            "new": new,
            "holdout": trained.metrics,
            "served_champion": served_champion,
            "served_fixed": served_fixed,
            "bounded_champion": bounded_champion,
            "bounded_fixed": bounded_fixed,
            "family": trained.family,
            "train_seconds": train_seconds,
            "monitor_seconds": monitor_seconds,
            "retrain_data": settings.retrain_data,
        }
    ]


def print_table(results: list[dict[str, Any]]) -> None:
    """One line per data set: verdict, promotion, old vs new error on the later period."""
    print(
        f"\n{'case':10} {'served':>6} {'later':>5} {'verdict':8} {'weighted':>8} {'promoted':9} "
        f"{'metric':8} {'old':>9} {'new':>9} {'change':>8} {'train s':>7} {'monitor s':>9}  data policy"
    )
    for item in results:
        metric = "rmse" if "rmse" in item["old"] else "roc_auc"
        old, new = item["old"][metric], item["new"][metric]
        change = f"{(new - old) / old:+.1%}" if metric == "rmse" else f"{new - old:+.3f}"
        promoted = f"v{item['new_version']}" if item["promoted"] else "no"
        print(
            f"{item['case']:10} {item['served_rows']:6d} {item['later_rows']:5d} {item['verdict']:8} "
            f"{item['weighted_drift']:8.1%} {promoted:9} {metric:8} {old:9.4g} {new:9.4g} {change:>8} "
            f"{item['train_seconds']:7.0f} {item['monitor_seconds']:9.0f}"
            f"  {item['retrain_data']}"
        )
    for item in results:
        print(f"  {item['case']}: {'; '.join(item['reasons'])}; retrain: {item['retrain']}")
    print("\nthe first champion against each family's fixed parameters, on the served period:")
    for item in results:
        metric = "rmse" if "rmse" in item["served_champion"] else "roc_auc"
        fixed = ", ".join(f"{family} {values[metric]:.5g}" for family, values in item["served_fixed"].items())
        print(
            f"  {item['case']}: champion ({item['family']}) {metric} {item['served_champion'][metric]:.5g}; {fixed}"
        )
    print("\nthe same on the served rows within the spec's row_bounds:")
    for item in results:
        metric = "rmse" if "rmse" in item["bounded_champion"] else "roc_auc"
        fixed = ", ".join(
            f"{family} {values[metric]:.5g}" for family, values in item["bounded_fixed"].items()
        )
        print(
            f"  {item['case']} ({item['bounded_champion']['rows']:.0f} of {item['served_champion']['rows']:.0f} rows): champion "
            f"{metric} {item['bounded_champion'][metric]:.5g}; {fixed}"
        )


if __name__ == "__main__":
    benchmark_main("benchmarks.loop_quality", __doc__.split("\n", 1)[0], CASES, run_case, print_table)
