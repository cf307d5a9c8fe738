"""The verdict's drift figures over every row of a window, from its merged profile.

The same distances, thresholds and importance weights as the Evidently report
(`monitoring.drift.window_reports`), computed from the window's profile instead of its rows,
so a day of a million rows is judged on all of them.
"""

from __future__ import annotations

from deployments.lambda_handler.contract import ServingSchema
from monitoring.drift.window_reports import (
    CATEGORICAL_METHOD,
    NUMERIC_METHOD,
    ColumnDrift,
    DriftFigures,
    DriftThresholds,
    verdict_weights,
)
from monitoring.profiles.bins import ReferenceBins
from monitoring.profiles.distances import column_distances
from monitoring.profiles.profile import Profile


def _column(name: str, score: float, schema: ServingSchema, thresholds: DriftThresholds) -> ColumnDrift:
    if name in schema.categorical:
        return ColumnDrift(name, CATEGORICAL_METHOD, score, thresholds.categorical)
    return ColumnDrift(name, NUMERIC_METHOD, score, thresholds.numeric)


def window_drift(
    profile: Profile,
    bins: ReferenceBins,
    schema: ServingSchema,
    thresholds: DriftThresholds,
    importance: dict[str, float] | None,
    reference_rows: int,
) -> DriftFigures:
    """Per-input and prediction drift, drifted share and weighted drift of the profiled rows."""
    weights = verdict_weights(schema, importance)
    scores = column_distances(bins, profile.numeric, profile.categorical)
    features = [
        ColumnDrift(
            **{**_column(name, scores[name], schema, thresholds).__dict__, "importance": weights[name]}
        )
        for name in weights
        if name in scores
    ]
    counted = sum(weights[c.column] for c in features)
    drifted = sum(weights[c.column] for c in features if c.drifted)
    prediction = schema.score_column
    return DriftFigures(
        rows=profile.rows,
        reference_rows=reference_rows,
        features=features,
        prediction=_column(prediction, scores[prediction], schema, thresholds)
        if prediction in scores
        else None,
        drift_share=sum(c.drifted for c in features) / len(features) if features else 0.0,
        weighted_drift=drifted / counted if counted > 0 else 0.0,
        missing_share={name: profile.missing_share(name) for name in schema.names},
        excluded=[
            _column(name, scores[name], schema, thresholds)
            for name in schema.names
            if name not in weights and name in scores
        ],
    )
