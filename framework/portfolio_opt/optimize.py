"""``optimize``: weights from a window of returns, and the causal rebalancing loop around it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from framework.errors import ParameterError
from framework.portfolio_opt import methods
from framework.portfolio_opt.covariance import estimate_covariance
from framework.portfolio_opt.spec import OptimizerSpec, RegimeSpec, check_method


def usable_assets(returns_window: np.ndarray) -> np.ndarray:
    """Boolean mask of the columns with a finite return on every row of the window."""
    window = np.asarray(returns_window, dtype=np.float64)
    return np.isfinite(window).all(axis=0)


def check_bounds(n_assets: int, spec: OptimizerSpec) -> None:
    """Raise ``ParameterError`` unless ``n_assets`` weights in the bounds can sum to 1."""
    if n_assets * spec.max_weight < 1.0 - 1e-12 or n_assets * spec.min_weight > 1.0 + 1e-12:
        raise ParameterError(
            f"weight bounds [{spec.min_weight}, {spec.max_weight}] are infeasible for "
            f"{n_assets} asset(s) with history: weights must sum to 1, so n * max_weight >= 1 "
            f"and n * min_weight <= 1. Raise max_weight to at least "
            f"{1.0 / max(n_assets, 1):.4g}, lower min_weight, or add assets."
        )


def optimize(returns_window: np.ndarray, method: str, spec: OptimizerSpec | None = None) -> np.ndarray:
    """Long-only weights (summing to 1) for one window of per-bar returns.

    Parameters
    ----------
    returns_window : ndarray, shape (t, m)
        Simple returns, one row per bar, one column per asset. A column with any NaN (missing
        history in the window) gets weight 0 and is left out of the estimation.
    method : {"max_sharpe", "min_variance", "risk_parity", "hrp", "inverse_volatility", "equal_weight"}
        The optimizer.
    spec : OptimizerSpec, optional
        Covariance shrinkage, weight bounds and risk-free rate (``spec.lookback`` is not used
        here: the caller chooses the window).

    Returns
    -------
    ndarray, shape (m,)
        Weights; all zero when no column has a full window.

    Raises
    ------
    ParameterError
        Unknown method, a window that is not 2-D with at least 2 rows, or bounds that cannot be
        met by the assets with full history.
    """
    check_method(method)
    with _single_threaded_blas():
        return _optimize(returns_window, method, spec or OptimizerSpec())


def _single_threaded_blas() -> threadpool_limits:
    # Matrices here are tiny (assets x assets): BLAS threads only add hand-off cost, which on
    # busy cores dominated (300 max-Sharpe solves, 30 assets: 11.7 s with 2 threads, 1.6 s with 1).
    return threadpool_limits(limits=1, user_api="blas")


def _optimize(returns_window: np.ndarray, method: str, spec: OptimizerSpec) -> np.ndarray:
    window = np.asarray(returns_window, dtype=np.float64)
    if window.ndim != 2 or window.shape[0] < 2:
        raise ParameterError(
            f"returns_window must be a 2-D array (bars, assets) with at least 2 rows; got shape "
            f"{window.shape}. Pass a longer window."
        )
    ok = usable_assets(window)
    weights = np.zeros(window.shape[1])
    n = int(ok.sum())
    if n == 0:
        return weights
    check_bounds(n, spec)
    weights[ok] = _solve(window[:, ok], method, spec)
    return weights


def _solve(clean: np.ndarray, method: str, spec: OptimizerSpec) -> np.ndarray:
    low, high = spec.min_weight, spec.max_weight
    # bounds that pin every weight at 1/m leave nothing to optimize (and starve the solvers)
    if method == "equal_weight" or methods.pinned_by_bounds(clean.shape[1], low, high):
        return methods.equal_weight(clean.shape[1])
    cov = estimate_covariance(clean, spec.shrinkage)
    if method == "min_variance":
        return methods.min_variance(cov, low, high)
    if method == "max_sharpe":
        return methods.max_sharpe(clean.mean(axis=0), cov, low, high, spec.risk_free_rate)
    if method == "risk_parity":
        return methods.risk_parity(cov, low, high)
    if method == "hrp":
        return methods.hrp(cov, low, high)
    return methods.inverse_volatility(cov, low, high)


def simple_returns(close: np.ndarray) -> np.ndarray:
    """Per-bar simple returns of ``close`` (n, m); row 0 and rows after a NaN price are NaN."""
    close = np.asarray(close, dtype=np.float64)
    out = np.full_like(close, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:] = close[1:] / close[:-1] - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def month_start(index: pd.DatetimeIndex) -> np.ndarray:
    """Bool per bar: True on the first bar of a new calendar month (never on bar 0)."""
    month = np.asarray(index.year * 12 + index.month)
    flags = np.zeros(len(index), dtype=bool)
    flags[1:] = np.diff(month) != 0
    return flags


def rebalance_weights(
    returns: np.ndarray,
    rebalance: np.ndarray,
    spec: OptimizerSpec,
    method: str = "risk_parity",
    labels: np.ndarray | None = None,
    regime: RegimeSpec | None = None,
) -> np.ndarray:
    """Weights at each rebalance bar from the trailing ``spec.lookback`` returns (causal).

    Parameters
    ----------
    returns : ndarray, shape (n, m)
        Per-bar returns (e.g. :func:`simple_returns`).
    rebalance : ndarray of bool, shape (n,)
        Bars at whose close the portfolio is re-optimized.
    spec : OptimizerSpec
        Window length, shrinkage and bounds.
    method : str
        Optimizer used when ``labels`` is None.
    labels : ndarray, shape (n,), optional
        Causal regime label per bar (``0..3`` or NaN); the method and cash buffer at a rebalance
        come from ``regime.select(labels[i])``.
    regime : RegimeSpec, optional
        Label -> (method, cash) map (default :class:`RegimeSpec`).

    Returns
    -------
    ndarray, shape (n, m)
        NaN rows except at rebalance bars ``i >= lookback``, whose row holds the weights from
        ``returns[i - lookback + 1 : i + 1]`` (so the row depends on bars ``<= i`` only and not
        on how much earlier history exists). When fewer assets have a full window than the
        ``max_weight`` cap allows to fill, each is held at ``max_weight`` and the rest is cash.
    """
    check_method(method)
    regime = regime or RegimeSpec()
    out = np.full(returns.shape, np.nan)
    bars = [i for i in np.flatnonzero(np.asarray(rebalance, dtype=bool)) if i >= spec.lookback]
    if not bars:
        return out
    with _single_threaded_blas():
        for i in bars:
            chosen, cash = (method, 0.0) if labels is None else regime.select(float(labels[i]))
            window = returns[i - spec.lookback + 1 : i + 1]
            out[i] = (1.0 - cash) * _capped_or_optimized(window, chosen, spec)
    return out


def _capped_or_optimized(window: np.ndarray, method: str, spec: OptimizerSpec) -> np.ndarray:
    ok = usable_assets(window)
    n = int(ok.sum())
    if n > 0 and n * spec.max_weight < 1.0:
        # too few assets with history to be fully invested under the cap: cap them, hold cash
        return np.where(ok, spec.max_weight, 0.0)
    check_method(method)
    return _optimize(window, method, spec)


def forward_fill(weights: np.ndarray) -> np.ndarray:
    """Carry each non-NaN row forward until the next one; rows before the first are 0."""
    out = np.zeros(weights.shape)
    current = np.zeros(weights.shape[1])
    for i in range(weights.shape[0]):
        if not np.isnan(weights[i]).any():
            current = weights[i]
        out[i] = current
    return out
