"""CloudWatch alarms on the served function, and watching them while a canary bakes.

The error-rate and latency alarms read the metrics the function writes itself (EMF, see
`deployments.lambda_handler.metrics`): a refused or failed request is still a 200 to Lambda,
so Lambda's own `Errors` only count crashes and timeouts, which the third alarm watches. The
throttles alarm reports lost throughput; it does not roll a canary back, since throttling is
a capacity limit rather than a fault of the new version.

Each alarm's description carries a digest of its definition, so a deploy rewrites an alarm
only when its definition changed and an unchanged rerun creates nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from deployments.aws.config import AwsClients, all_items
from deployments.lambda_handler.contract import (
    LATENCY_METRIC,
    LIVE_ALIAS,
    METRICS_NAMESPACE,
    MODEL_NAME_DIMENSION,
    REQUESTS_METRIC,
    SERVER_ERRORS_METRIC,
)

PERIOD_SECONDS = 60
ALARM = "ALARM"


@dataclass(frozen=True)
class AlarmSpec:
    """One alarm: its name, whether it judges a canary, and its put_metric_alarm arguments."""

    name: str
    judges_canary: bool
    definition: dict[str, Any]

    def digest(self) -> str:
        """A short digest of the definition, kept in the alarm's description."""
        text = json.dumps(self.definition, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def arguments(self) -> dict[str, Any]:
        """Everything put_metric_alarm needs, the description with its digest included."""
        purpose = "rolls a canary back" if self.judges_canary else "reported, never rolls back"
        description = f"{self.name}: {purpose}; definition {self.digest()}"
        return {"AlarmName": self.name, "AlarmDescription": description, **self.definition}


def _common(evaluation_periods: int, datapoints: int, actions: list[str]) -> dict[str, Any]:
    return {
        "EvaluationPeriods": evaluation_periods,
        "DatapointsToAlarm": datapoints,
        "TreatMissingData": "notBreaching",  # no traffic is not a failure
        "AlarmActions": actions,
        "OKActions": actions,
        "ActionsEnabled": bool(actions),
    }


def _model_metric(name: str, model_name: str, stat: str) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": METRICS_NAMESPACE,
            "MetricName": name,
            "Dimensions": [{"Name": MODEL_NAME_DIMENSION, "Value": model_name}],
        },
        "Period": PERIOD_SECONDS,
        "Stat": stat,
    }


def alarm_specs(aws: AwsClients, model_name: str) -> list[AlarmSpec]:
    """The function's alarms: server-error rate, p99 latency, function errors, throttles."""
    config = aws.config
    function = config.function_name
    actions = [config.alarm_topic_arn] if config.alarm_topic_arn else []
    lambda_dimensions = [
        {"Name": "FunctionName", "Value": function},
        {"Name": "Resource", "Value": f"{function}:{LIVE_ALIAS}"},
    ]
    error_rate = {
        "Metrics": [
            {
                "Id": "errors",
                "MetricStat": _model_metric(SERVER_ERRORS_METRIC, model_name, "Sum"),
                "ReturnData": False,
            },
            {
                "Id": "requests",
                "MetricStat": _model_metric(REQUESTS_METRIC, model_name, "Sum"),
                "ReturnData": False,
            },
            {
                "Id": "rate",
                "Expression": "100 * errors / requests",
                "Label": "server error %",
                "ReturnData": True,
            },
        ],
        "Threshold": config.alarm_error_rate_percent,
        "ComparisonOperator": "GreaterThanThreshold",
        **_common(2, 2, actions),
    }
    latency = {
        "Namespace": METRICS_NAMESPACE,
        "MetricName": LATENCY_METRIC,
        "Dimensions": [{"Name": MODEL_NAME_DIMENSION, "Value": model_name}],
        "ExtendedStatistic": "p99",
        "Period": PERIOD_SECONDS,
        "Unit": "Milliseconds",
        "Threshold": config.alarm_p99_latency_ms,
        "ComparisonOperator": "GreaterThanThreshold",
        **_common(3, 2, actions),
    }

    def lambda_metric(name: str) -> dict[str, Any]:
        return {
            "Namespace": "AWS/Lambda",
            "MetricName": name,
            "Dimensions": lambda_dimensions,
            "Statistic": "Sum",
            "Period": PERIOD_SECONDS,
            "Threshold": 1.0,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            **_common(1, 1, actions),
        }

    return [
        AlarmSpec(f"{function}-server-error-rate", judges_canary=True, definition=error_rate),
        AlarmSpec(f"{function}-latency-p99", judges_canary=True, definition=latency),
        AlarmSpec(f"{function}-function-errors", judges_canary=True, definition=lambda_metric("Errors")),
        AlarmSpec(f"{function}-throttles", judges_canary=False, definition=lambda_metric("Throttles")),
    ]


def _existing(aws: AwsClients) -> dict[str, dict[str, Any]]:
    prefix = f"{aws.config.function_name}-"
    alarms = all_items(aws.cloudwatch, "describe_alarms", "MetricAlarms", AlarmNamePrefix=prefix)
    return {str(alarm["AlarmName"]): alarm for alarm in alarms}


def ensure_alarms(aws: AwsClients, model_name: str) -> list[AlarmSpec]:
    """Create or update the alarms whose definition changed; return all of them."""
    specs = alarm_specs(aws, model_name)
    existing = _existing(aws)
    for spec in specs:
        arguments = spec.arguments()
        if existing.get(spec.name, {}).get("AlarmDescription") != arguments["AlarmDescription"]:
            aws.cloudwatch.put_metric_alarm(**arguments)
            aws.changed(f"alarm {spec.name}")
    return specs


def firing(aws: AwsClients, names: list[str]) -> list[str]:
    """Which of the named alarms are in ALARM now."""
    alarms = all_items(aws.cloudwatch, "describe_alarms", "MetricAlarms", AlarmNames=names)
    return sorted(str(alarm["AlarmName"]) for alarm in alarms if alarm.get("StateValue") == ALARM)


def watch(aws: AwsClients, names: list[str], seconds: float, poll_seconds: float) -> list[str]:
    """Check the alarms every `poll_seconds` for `seconds`; the first ones found in ALARM, or []."""
    checks = max(1, math.ceil(seconds / poll_seconds)) if seconds > 0 else 0
    for check in range(checks + 1):
        found = firing(aws, names)
        if found or check == checks:
            return found
        aws.sleep(min(poll_seconds, seconds - check * poll_seconds))
    return []
