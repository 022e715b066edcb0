"""Portfolio strategies: monthly risk parity, regime-aware max Sharpe and minimum variance.

All three hold a long-only portfolio across the loaded universe. At the first bar of each new
month (decided at that bar's close) they estimate weights from the trailing ``lookback`` returns
ending at that bar with :func:`framework.portfolio_opt.optimize`, and hold them until the next
rebalance. Symbols without a full window of history get weight 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError, unknown_name_message
from framework.portfolio_opt import (
    OptimizerSpec,
    RegimeSpec,
    forward_fill,
    month_start,
    rebalance_weights,
    simple_returns,
)
from framework.strategy import Params, Strategy, param
from framework.types import Bars

# Trading days in the longest month: one month after the window guarantees that the first held
# weights come from a rebalance with a full window, however much earlier history was loaded.
_MONTH = 23
_BULL, _BEAR, _VOLATILE = 0.0, 1.0, 3.0
_SHORT_VOL = 21  # bars of the "recent" volatility in the regime proxy


def _lookback_param(default: int = 252):
    return param(default, space=(63, 126, 252), stage="features", low=20, high=2520,
                 doc="estimation window, bars of returns")


def _max_weight_param(default: float):
    return param(default, space=(0.2, 0.3, 0.5, 1.0), stage="features", low=0.01, high=1.0,
                 doc="largest weight of one asset")


class _MonthlyOptimized(Strategy):
    """Shared features/target of the monthly optimized portfolios."""

    universe = True

    def warmup(self, p: Params) -> int:
        return int(p.lookback) + _MONTH

    def _weights(self, bars: Bars, p: Params, method: str, labels=None, regime=None) -> np.ndarray:
        spec = OptimizerSpec(lookback=p.lookback, max_weight=p.max_weight)
        return rebalance_weights(simple_returns(bars.close), month_start(bars.index), spec,
                                 method=method, labels=labels, regime=regime)

    def target(self, features: Mapping[str, np.ndarray], p: Params) -> np.ndarray:
        return forward_fill(features["weights"])


# -- risk parity --------------------------------------------------------------------------------

_RISK_METHODS = ("risk_parity", "hrp", "inverse_volatility")


@dataclass(frozen=True)
class RiskParityParams(Params):
    lookback: int = _lookback_param()
    max_weight: float = _max_weight_param(1.0)
    method: str = param("risk_parity", space=_RISK_METHODS, stage="features",
                        doc="risk_parity (equal risk contribution), hrp or inverse_volatility")

    def check(self) -> None:
        if self.method not in _RISK_METHODS:
            raise ParameterError(unknown_name_message("risk-based method", str(self.method), _RISK_METHODS))


class RiskParityRebalance(_MonthlyOptimized):
    """Equal risk contribution across the universe, rebalanced monthly.

    Thesis: balancing risk rather than capital avoids concentration in the most volatile assets
    and has delivered better risk-adjusted returns than equal weight across asset classes.
    Data: daily closes of a universe (e.g. sector ETFs). Parameters: ``lookback`` 63..252,
    ``max_weight``, ``method`` (risk_parity, hrp or inverse_volatility). Ledoit-Wolf covariance.
    """

    name = "risk_parity"
    params_type = RiskParityParams

    def features(self, bars: Bars, p: RiskParityParams) -> dict[str, np.ndarray]:
        return {"weights": self._weights(bars, p, p.method)}


# -- minimum variance ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MinVarianceParams(Params):
    lookback: int = _lookback_param()
    max_weight: float = _max_weight_param(0.3)


class MinVariancePortfolio(_MonthlyOptimized):
    """Long-only minimum-variance portfolio, capped per asset, rebalanced monthly.

    Thesis: low-volatility portfolios earn equity-like returns with less risk (the low-volatility
    anomaly); the cap keeps the portfolio from piling into one or two defensive names.
    Data: daily closes of a universe. Parameters: ``lookback`` 63..252, ``max_weight``.
    """

    name = "min_variance"
    params_type = MinVarianceParams

    def features(self, bars: Bars, p: MinVarianceParams) -> dict[str, np.ndarray]:
        return {"weights": self._weights(bars, p, "min_variance")}


# -- regime-aware max Sharpe --------------------------------------------------------------------


@dataclass(frozen=True)
class MaxSharpeParams(Params):
    lookback: int = _lookback_param()
    max_weight: float = _max_weight_param(0.3)
    trend_window: int = param(200, space=(100, 200), stage="features", low=30, high=2520,
                              doc="bars of the regime proxy's moving average")
    volatile_cash: float = param(0.15, space=(0.0, 0.15, 0.3), stage="features", low=0.0,
                                 high=0.9, doc="cash kept in the VOLATILE regime")
    use_regime: bool = param(True, space=(True, False), stage="features",
                             doc="False: max Sharpe at every rebalance")


class MaxSharpePortfolio(_MonthlyOptimized):
    """Regime-aware maximum Sharpe portfolio, capped per asset, rebalanced monthly.

    Thesis: the tangency portfolio pays when trends persist; in bear or volatile markets its
    noisy mean estimates hurt, so it switches to minimum variance (with a cash buffer when
    volatile) and to risk parity in choppy markets (the default :class:`RegimeSpec` map).
    Data: daily closes of a universe, e.g. AAPL MSFT GOOGL AMZN NVDA META TSLA.
    Regime: a causal label array ``regime(bars) -> (n,)`` of ints 0..3 (BULL, BEAR, CHOPPY,
    VOLATILE) given to the constructor, or else a proxy computed at each rebalance from the
    trailing ``trend_window`` returns of the equal-weight universe index: VOLATILE when its
    last-21-bar volatility exceeds 1.5x its window volatility, else BULL when the index ends at
    or above its window average, else BEAR.
    """

    name = "max_sharpe"
    params_type = MaxSharpeParams

    def __init__(self, regime: Callable[[Bars], np.ndarray] | None = None, regime_warmup: int = 0):
        self._regime = regime
        self._regime_warmup = int(regime_warmup)

    def warmup(self, p: MaxSharpeParams) -> int:
        if not p.use_regime:
            return p.lookback + _MONTH
        needed = self._regime_warmup if self._regime is not None else p.trend_window
        return max(p.lookback, needed) + _MONTH

    def features(self, bars: Bars, p: MaxSharpeParams) -> dict[str, np.ndarray]:
        if not p.use_regime:
            return {"weights": self._weights(bars, p, "max_sharpe")}
        labels = self._labels(bars, p)
        cash = (0.0, 0.0, 0.0, p.volatile_cash)
        weights = self._weights(bars, p, "max_sharpe", labels=labels, regime=RegimeSpec(cash=cash))
        return {"weights": weights, "regime": labels}

    def _labels(self, bars: Bars, p: MaxSharpeParams) -> np.ndarray:
        if self._regime is None:
            return regime_proxy(bars.close, month_start(bars.index), p.trend_window)
        labels = np.asarray(self._regime(bars), dtype=np.float64)
        if labels.shape != (bars.n_bars,):
            raise ParameterError(
                f"regime series has shape {labels.shape}; expected ({bars.n_bars},), one label "
                "per bar. Pass a function returning a 1-D array aligned with the bars."
            )
        return labels


def regime_proxy(close: np.ndarray, at: np.ndarray, window: int) -> np.ndarray:
    """Causal BULL/BEAR/VOLATILE proxy label at the bars flagged in ``at`` (NaN elsewhere).

    Uses only the ``window`` returns ending at each flagged bar of the equal-weight index of
    the assets that traded (so the label does not depend on earlier history); NaN before a full
    window.
    """
    returns = simple_returns(close)
    traded = np.isfinite(returns)
    counts = traded.sum(axis=1)
    # an empty row (nothing traded) counts as a flat index move
    index_returns = np.where(counts > 0, np.where(traded, returns, 0.0).sum(axis=1) / np.maximum(counts, 1), 0.0)
    labels = np.full(close.shape[0], np.nan)
    for i in np.flatnonzero(at):
        if i < window:
            continue
        part = index_returns[i - window + 1 : i + 1]
        level = np.cumprod(1.0 + part)
        long_vol = part.std()
        if long_vol > 0.0 and part[-_SHORT_VOL:].std() > 1.5 * long_vol:
            labels[i] = _VOLATILE
        else:
            labels[i] = _BULL if level[-1] >= level.mean() else _BEAR
    return labels
