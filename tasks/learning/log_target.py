"""A regressor fitted on log(target) whose predictions stay within the log range it was fitted on.

Exp of a linear model's output grows without bound: on a house far larger than any it learned
from, a log-target ridge priced a $160,000 sale at $1.87 million. Trees never leave the range
of their leaves, linear models do; clipping the log output to the training range (the ONNX
graph: `Clip`, then `Exp`) keeps every answer within prices the model has seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.utils.validation import check_is_fitted


class LogTargetRegressor(TransformedTargetRegressor):  # type: ignore[misc]
    """`regressor` fitted on log(target); predicts exp of its output, clipped to the fitted log range."""

    def __init__(self, regressor: Any = None) -> None:
        super().__init__(regressor=regressor, func=np.log, inverse_func=np.exp, check_inverse=False)

    def fit(self, X: Any, y: Any, **fit_params: Any) -> LogTargetRegressor:  # noqa: N803 - scikit-learn's names
        """Fit the regressor on log(y) and remember the log range of y."""
        super().fit(X, y, **fit_params)
        logged = np.log(np.asarray(y, dtype="float64"))
        self.log_range_ = (float(logged.min()), float(logged.max()))
        return self

    def predict(self, X: Any, **predict_params: Any) -> np.ndarray:  # noqa: N803
        """Exp of the regressor's output, clipped first to the log range seen in training."""
        check_is_fitted(self)
        low, high = self.log_range_
        logged = np.asarray(self.regressor_.predict(X, **predict_params), dtype="float64").ravel()
        return np.asarray(np.exp(np.clip(logged, low, high)), dtype="float64")
