"""Small serving schemas for tests of the monitor's estimates: two numbers and a category, or two numbers."""

from __future__ import annotations

from deployments.lambda_handler.contract import Feature, ServingSchema

REGRESSION = ServingSchema(
    "regression",
    "price",
    (
        Feature("size", "number", nullable=True),
        Feature("age", "number", nullable=True),
        Feature("area", "category", nullable=True),
    ),
)
CLASSIFICATION = ServingSchema(
    "classification",
    "churned",
    (Feature("usage", "number", nullable=False), Feature("tenure", "number", nullable=False)),
    classes=("no", "yes"),
)
