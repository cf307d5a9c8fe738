"""Estimates that know their limits: re-weighted towards the window, and marked unreliable off support.

CBPE and DLE learn from the holdout, so they can only be trusted where the window's rows look
like holdout rows. A domain classifier re-weights the holdout towards the window
(`monitoring.quality.domain`; NannyML's M-CBPE calibrates on the re-weighted holdout, as CBPE
does here), and the estimate says it is unreliable, with the reasons, when the window leaves the
holdout's support:

- the weights leave fewer than `MIN_EFFECTIVE_ROWS` (100) effective holdout rows: from 100 rows
  the standard error of an RMSE with heavy-tailed errors (kurtosis about 9) is about 14%, and of
  a ROC AUC about 0.05, as large as the accuracy promised (15%, 0.03), so with fewer the
  estimate rests on too few rows like the window's to be that close;
- more than `MAX_OUTSIDE_SHARE` (10%) of the window's rows lie beyond the holdout's range of one
  input (or hold a category the holdout never had): there the estimators extrapolate flat. Rows
  like the holdout's fall outside its range by chance at a rate of 2 / (holdout rows + 1), under
  1% for a holdout of 200 rows or more;
- the window holds rows outside the spec's `row_bounds`, which training and the holdout left
  out: the model was never checked there, and one such row can outweigh hundreds of others
  (a 5,642 sq ft Ames sale priced $465,000 too high carries the squared error of about 400
  typical sales);
- (regression) the model's errors on the holdout lean one way: their mean carries more than
  `MAX_BIAS_SHARE` (10%) of the squared error and is at least `MIN_BIAS_T` (3) standard errors
  from zero (the second only binds on holdouts under about 80 rows: above, a 10% share is
  already more than 3 standard errors). An unbiased model has no such lean on rows like its
  training rows (a hash split's holdout); on a time-ordered holdout it means the target moves
  over time in a way the inputs do not explain (concept drift), and a window later than the
  holdout can be further off than any estimate learnt from it, whatever its inputs look like.
  This one is about the model, so it marks every window alike. A hash split cannot show
  concept drift this way.

The first two look only at the inputs that move the model, those with at least
`MIN_IMPORTANCE` of its permutation importance (all inputs when the bundle has no importance),
and not at inputs in the schema's `monitor_exclude` (expected to move, such as a sale year);
the classifier also sees the score. The loss depends on the rows through what the model uses,
and a shift in inputs it ignores would only make the weights noisier (and mark estimates
unreliable for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from deployments.lambda_handler.contract import ServingSchema
from monitoring.quality.domain import domain_shift
from monitoring.quality.estimation import (
    MIN_REFERENCE_ROWS,
    Estimator,
    encoded_inputs,
    fit_estimator,
    fitted_encoder,
    usable_reference,
)
from tasks.core.row_bounds import rows_within

MIN_EFFECTIVE_ROWS = 100
MAX_OUTSIDE_SHARE = 0.1
MIN_IMPORTANCE = 0.01
MAX_BIAS_SHARE = 0.1
MIN_BIAS_T = 3.0


@dataclass(frozen=True)
class Assessment:
    """An estimate of a window's metrics, with how far the window sits from the holdout."""

    metrics: dict[str, float]
    estimator: Estimator | None = None  # fitted on the re-weighted holdout: for the labelled rows too
    domain_auc: float | None = None
    effective_rows: float | None = None
    reasons: list[str] = field(default_factory=list)  # why the estimate is unreliable; empty if it is not

    @property
    def reliable(self) -> bool:
        """Whether the window stays within the holdout's support (nothing to say against it)."""
        return not self.reasons


@threadpool_limits.wrap(limits=1)  # type: ignore[untyped-decorator]
def assess_estimate(
    schema: ServingSchema,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    importance: dict[str, float] | None = None,
) -> Assessment:
    """The window's estimated metrics from the holdout re-weighted towards it, and their reliability.

    `importance` is each input's share of the model's permutation importance (the bundle's).
    The small models behind it (domain classifier, loss model, calibration) fit on one thread:
    on a few thousand rows, OpenMP's threads cost more than they give, and far more on a busy machine.
    """
    reference = usable_reference(schema, reference)
    current = current[current[schema.score_column].notna()] if schema.score_column in current else current[:0]
    if len(reference) < MIN_REFERENCE_ROWS or current.empty:
        return Assessment({})
    encoder = fitted_encoder(schema, reference)
    inputs = compared_inputs(schema, importance)
    kept, categorical = _domain_columns(schema, inputs)
    shift = domain_shift(
        encoded_inputs(reference, schema, encoder)[:, kept],
        encoded_inputs(current, schema, encoder)[:, kept],
        categorical[kept],
    )
    # CBPE calibrates on the re-weighted holdout (M-CBPE). DLE's nanny already takes each window
    # row's inputs, and on the benchmark (benchmarks/monitor_quality.py, Ames) fitting it on the
    # re-weighted holdout was further from the realized RMSE: the weights add their own noise.
    weights = shift.weights if schema.task == "classification" else None
    estimator = fit_estimator(schema, reference, weights)
    if estimator is None:
        return Assessment({}, domain_auc=shift.auc, effective_rows=shift.effective_rows)
    metrics = estimator(current)
    reasons = []
    if shift.effective_rows < MIN_EFFECTIVE_ROWS:
        auc = "" if shift.auc is None else f"; domain classifier ROC AUC {shift.auc:.2f}"
        reasons.append(
            f"the holdout re-weighted towards the window keeps {shift.effective_rows:.0f} effective rows "
            f"of {len(reference)} (at least {MIN_EFFECTIVE_ROWS} are needed{auc})"
        )
    reasons += [
        f"{share:.0%} of the window's rows are outside the holdout's {name} (at most "
        f"{MAX_OUTSIDE_SHARE:.0%} allowed)"
        for name, share in outside_support(schema, reference, current, inputs).items()
        if share > MAX_OUTSIDE_SHARE
    ]
    beyond = outside_bounds(schema, current)
    if beyond:
        reasons.append(beyond)
    lean = holdout_lean(schema, reference)
    if lean is not None:
        reasons.append(lean)
    return Assessment(metrics, estimator, shift.auc, shift.effective_rows, reasons)


def compared_inputs(schema: ServingSchema, importance: dict[str, float] | None) -> set[str]:
    """The inputs the window is compared with the holdout on: those the model leans on, not excluded."""
    return {
        name
        for name in schema.names
        if name not in schema.monitor_exclude
        and (importance is None or importance.get(name, 0.0) >= MIN_IMPORTANCE)
    }


def _domain_columns(schema: ServingSchema, inputs: set[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which columns of `encoded_inputs` the domain classifier sees, and which of them are categories."""
    names = [*schema.numeric, *schema.categorical]
    kept = np.array([name in inputs for name in names] + [True])
    categorical = np.array([name in schema.categorical for name in names] + [False])
    return kept, categorical


def outside_support(
    schema: ServingSchema, reference: pd.DataFrame, current: pd.DataFrame, inputs: set[str]
) -> dict[str, float]:
    """Share of window rows beyond the holdout's range of each input, or with a category it never had."""
    shares: dict[str, float] = {}
    for name in schema.numeric:
        if name not in inputs or name not in current:
            continue
        seen = pd.to_numeric(reference[name], errors="coerce")
        live = pd.to_numeric(current[name], errors="coerce")
        if seen.notna().any():
            shares[f"range of {name}"] = float(((live < seen.min()) | (live > seen.max())).mean())
    for name in schema.categorical:
        if name not in inputs or name not in current:
            continue
        seen_levels = set(reference[name].dropna().astype(str))
        live = current[name].dropna().astype(str)
        shares[f"categories of {name}"] = float((~live.isin(seen_levels)).sum() / len(current))
    return shares


def holdout_lean(schema: ServingSchema, reference: pd.DataFrame) -> str | None:
    """Why the holdout's errors lean one way (a regression model's systematic miss), or None."""
    if schema.task != "regression" or len(reference) < MIN_REFERENCE_ROWS:
        return None
    errors = reference[schema.target].astype("float64") - reference[schema.score_column].astype("float64")
    mean, squared = float(errors.mean()), float(np.square(errors).mean())
    spread = float(errors.std(ddof=1))
    if squared == 0.0:
        return None
    share = mean**2 / squared
    t_statistic = np.inf if spread == 0.0 else mean / (spread / np.sqrt(len(errors)))
    if share <= MAX_BIAS_SHARE or abs(t_statistic) < MIN_BIAS_T:
        return None
    direction = "above" if mean > 0 else "below"
    return (
        f"on the holdout the true values lie {direction} the predictions by {abs(mean):.4g} on average "
        f"({share:.0%} of the squared error, at most {MAX_BIAS_SHARE:.0%} allowed): the target moves in "
        "a way the inputs do not explain, so a later window can be further off than estimated"
    )


def within_row_bounds(rows: pd.DataFrame, schema: ServingSchema) -> np.ndarray:
    """Which rows lie within the spec's `row_bounds` (a missing value, or input, counts as within)."""
    return rows_within(rows, {name: (low, high) for name, low, high in schema.row_bounds})


def outside_bounds(schema: ServingSchema, current: pd.DataFrame) -> str | None:
    """Why the window's rows outside the spec's `row_bounds` (what the model learnt from) count, or None."""
    counts = []
    for name, low, high in schema.row_bounds:
        if name not in current:
            continue
        values = pd.to_numeric(current[name], errors="coerce")
        if low is not None and (below := int((values < low).sum())):
            counts.append(f"{below} with {name} below {low:g}")
        if high is not None and (above := int((values > high).sum())):
            counts.append(f"{above} with {name} above {high:g}")
    if not counts:
        return None
    return (
        "the window holds rows outside the spec's row_bounds, which the model was neither trained "
        f"nor checked on ({'; '.join(counts)})"
    )
