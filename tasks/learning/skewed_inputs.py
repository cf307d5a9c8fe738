"""Log of the right-skewed, non-negative inputs before a linear model scales them.

A linear model weighs an input in proportion to its value, so one lot of 164,660 sq ft (the
typical Ames lot is under 10,000) moves a ridge price by hundreds of thousands of dollars:
on the 2008 sales, a $228,950 house with such a lot was priced at $563,812. `log1p` of the
inputs whose training values are non-negative and skewed (sample skewness above 0.75, the
threshold the log target uses) turns those multiples into steps. Trees see the inputs as
they are: a monotone transform changes nothing for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

SKEW_THRESHOLD = 0.75  # sample skewness above which a non-negative input (or target) counts as skewed


class SkewedLog(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """`log1p` of the columns that are non-negative and right-skewed in training; others pass through."""

    def fit(self, X: Any, y: Any = None) -> SkewedLog:  # noqa: N803, ARG002 - scikit-learn's signature
        """Choose the columns: every training value at least 0 and skewness above `SKEW_THRESHOLD`."""
        values = np.asarray(X, dtype="float64")
        skewness = pd.DataFrame(values).skew().fillna(0.0).to_numpy()
        self.logged_ = (values.min(axis=0, initial=0.0) >= 0.0) & (skewness > SKEW_THRESHOLD)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803
        """`log1p` of the chosen columns (a negative live value counts as 0), the others as they are."""
        check_is_fitted(self)
        values = np.asarray(X, dtype="float64")
        if values.ndim != 2 or values.shape[1] != self.n_features_in_:  # noqa: PLR2004 - a table
            msg = (
                f"SkewedLog was fitted on {self.n_features_in_} columns, got an array of shape {values.shape}"
            )
            raise ValueError(msg)
        logged = np.log1p(np.maximum(values, 0.0))
        return np.where(self.logged_, logged, values)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input names: the transform keeps every column in place."""
        if input_features is None:
            return np.array([f"x{index}" for index in range(self.n_features_in_)], dtype=object)
        return np.asarray(input_features, dtype=object)
