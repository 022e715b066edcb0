"""Portfolio optimization: weights from a window of returns, and causal rebalancing helpers.

Methods: max Sharpe, min variance, risk parity (equal risk contribution), hierarchical risk
parity, inverse volatility and equal weight, long-only within per-asset bounds, on a Ledoit-Wolf
(or sample) covariance. ``optimize(window, method, spec)`` is the one entry point per window;
``rebalance_weights`` runs it at rebalance bars, optionally choosing the method per regime label.
"""

from framework.portfolio_opt.covariance import estimate_covariance, ledoit_wolf, sample_covariance
from framework.portfolio_opt.optimize import (
    check_bounds,
    forward_fill,
    month_start,
    optimize,
    rebalance_weights,
    simple_returns,
    usable_assets,
)
from framework.portfolio_opt.spec import (
    METHODS,
    REGIME_NAMES,
    OptimizerSpec,
    RegimeSpec,
    check_method,
)

__all__ = [
    "METHODS",
    "REGIME_NAMES",
    "OptimizerSpec",
    "RegimeSpec",
    "check_bounds",
    "check_method",
    "estimate_covariance",
    "forward_fill",
    "ledoit_wolf",
    "month_start",
    "optimize",
    "rebalance_weights",
    "sample_covariance",
    "simple_returns",
    "usable_assets",
]
