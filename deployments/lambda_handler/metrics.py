"""CloudWatch Embedded Metric Format: each request's metrics in its one log line, no API call.

CloudWatch Logs turns a JSON line with an `_aws.CloudWatchMetrics` directive into metrics
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
Every line is published under the model name alone (what the alarms watch) and under the model
name and version (to tell a canary from the version it replaces).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from .contract import (
    CLIENT_ERRORS_METRIC,
    LATENCY_METRIC,
    METRICS_NAMESPACE,
    MISSING_FIELDS_METRIC,
    MODEL_NAME_DIMENSION,
    MODEL_VERSION_DIMENSION,
    OUTSIDE_TRAINING_METRIC,
    PREDICTIONS_METRIC,
    REQUESTS_METRIC,
    SERVER_ERRORS_METRIC,
    UNKNOWN_CATEGORIES_METRIC,
)

CLIENT_ERROR = 400
SERVER_ERROR = 500
UNITS = {
    LATENCY_METRIC: "Milliseconds",
    REQUESTS_METRIC: "Count",
    PREDICTIONS_METRIC: "Count",
    CLIENT_ERRORS_METRIC: "Count",
    SERVER_ERRORS_METRIC: "Count",
    UNKNOWN_CATEGORIES_METRIC: "Count",
    MISSING_FIELDS_METRIC: "Count",
    OUTSIDE_TRAINING_METRIC: "Count",
}
DIMENSIONS = [[MODEL_NAME_DIMENSION], [MODEL_NAME_DIMENSION, MODEL_VERSION_DIMENSION]]


@dataclass
class RequestCounts:
    """What one request predicted and found in its rows."""

    predictions: int = 0
    unknown_categories: int = 0
    missing_fields: int = 0
    outside_training: int = 0


def metric_fields(
    model_name: str, model_version: str, status: int, latency_ms: float, counts: RequestCounts
) -> dict[str, Any]:
    """The EMF members of one request's log line: the directive, the dimensions and the values."""
    values = {
        LATENCY_METRIC: latency_ms,
        REQUESTS_METRIC: 1,
        PREDICTIONS_METRIC: counts.predictions,
        CLIENT_ERRORS_METRIC: int(CLIENT_ERROR <= status < SERVER_ERROR),
        SERVER_ERRORS_METRIC: int(status >= SERVER_ERROR),
        UNKNOWN_CATEGORIES_METRIC: counts.unknown_categories,
        MISSING_FIELDS_METRIC: counts.missing_fields,
        OUTSIDE_TRAINING_METRIC: counts.outside_training,
    }
    directive = {
        "Timestamp": int(time.time() * 1000),
        "CloudWatchMetrics": [
            {
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": DIMENSIONS,
                "Metrics": [{"Name": name, "Unit": UNITS[name]} for name in values],
            }
        ],
    }
    return {
        "_aws": directive,
        MODEL_NAME_DIMENSION: model_name,
        MODEL_VERSION_DIMENSION: model_version,
        **values,
    }
