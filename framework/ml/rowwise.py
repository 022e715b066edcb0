"""A binary logistic regression whose score of a row never depends on the other rows.

scikit-learn scores rows with one BLAS matrix product, and BLAS rounds a row's dot product
differently depending on how many rows are multiplied at once (1-ulp differences between a batch
and its prefix). A learned strategy predicts every bar at once in a backtest but a growing prefix
live, so that would break the bit-for-bit live = vectorized guarantee. Summing the features one
column at a time, in a fixed order, gives each row the same score in any batch. The fit is
scikit-learn's, unchanged.

This module imports scikit-learn; :func:`framework.ml.models.make_estimator` imports it lazily.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from framework.errors import DataError


class RowwiseLogisticRegression(LogisticRegression):
    """``LogisticRegression`` with a row-independent ``decision_function`` (binary case)."""

    def decision_function(self, X):
        check_is_fitted(self)
        coef = np.asarray(self.coef_, dtype=np.float64)
        if coef.shape[0] != 1:  # several classes: no row-wise path, keep scikit-learn's
            return super().decision_function(X)
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != coef.shape[1]:
            raise DataError(
                f"logistic model expects rows of {coef.shape[1]} features; got an array of "
                f"shape {X.shape}. Predict with the features the model was trained on."
            )
        scores = np.full(X.shape[0], float(self.intercept_[0]))
        for j in range(coef.shape[1]):
            scores += X[:, j] * coef[0, j]
        return scores
