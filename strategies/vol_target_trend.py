"""Volatility-targeted trend: long above the moving average, sized to a target volatility."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.indicators import realized_volatility, sma
from framework.strategy import Params, Strategy, param
from framework.types import Bars


@dataclass(frozen=True)
class VolTargetTrendParams(Params):
    trend_window: int = param(200, space=(100, 150, 200), stage="features", low=2, high=2000,
                              doc="moving-average window of the trend filter, bars")
    vol_window: int = param(20, space=(20, 60), stage="features", low=2, high=1000,
                            doc="realized-volatility window, bars (log returns)")
    target_vol: float = param(0.15, space=(0.10, 0.15, 0.20), stage="target", low=0.001,
                              high=5.0, doc="annualized volatility the position aims for")
    max_weight: float = param(1.0, stage="target", low=0.0, high=1.0,
                              doc="cap on the position (1 = no leverage)")
    step: float = param(0.1, stage="target", low=0.0, high=1.0,
                        doc="weights are rounded down to multiples of this (0 = no rounding)")
    periods_per_year: float = param(252.0, stage="features", low=1.0, high=1e6,
                                    doc="bars per year used to annualize volatility")


class VolTargetTrend(Strategy):
    """Trend filter plus volatility targeting: ``min(max_weight, target_vol / realized_vol)``.

    Thesis: trend following sidesteps long declines; scaling the position inversely to recent
    volatility keeps risk roughly constant and cuts exposure in turbulent markets, where trends
    are less reliable and drawdowns deepest (Moreira and Muir, "Volatility-managed portfolios").
    Long ``min(max_weight, target_vol / rv)`` while the close is above its ``trend_window``
    average, flat otherwise; ``rv`` is the causal annualized realized volatility of the last
    ``vol_window`` log returns. Weights are rounded down to multiples of ``step`` so tiny
    volatility changes do not cause a trade every day.
    Data: daily closes of one symbol; each symbol is traded independently.
    Parameters: ``trend_window`` 100/150/200, ``vol_window`` 20/60, ``target_vol``
    0.10/0.15/0.20 (18 combinations); ``max_weight`` 1 and ``step`` 0.1 (not searched).
    """

    name = "vol_target_trend"
    params_type = VolTargetTrendParams
    universe = False

    def warmup(self, p: VolTargetTrendParams) -> int:
        return max(p.trend_window, p.vol_window + 1)

    def features(self, bars: Bars, p: VolTargetTrendParams) -> dict[str, np.ndarray]:
        close = bars.close
        return {
            "uptrend": (close > sma(close, p.trend_window)) * 1.0,
            "volatility": realized_volatility(close, p.vol_window, p.periods_per_year),
        }

    def target(self, features: Mapping[str, np.ndarray], p: VolTargetTrendParams) -> np.ndarray:
        vol = features["volatility"]
        with np.errstate(divide="ignore", invalid="ignore"):
            # zero volatility gives +inf, capped below; NaN (warm-up) gives NaN, zeroed below
            weight = np.minimum(p.max_weight, p.target_vol / vol)
        weight = np.where(np.isnan(weight), 0.0, weight)
        if p.step > 0:
            # the small epsilon keeps exact multiples (e.g. 1.0 / 0.1) from flooring one step down
            weight = np.minimum(p.max_weight, np.floor(weight / p.step + 1e-9) * p.step)
        return np.where(features["uptrend"] > 0.5, weight, 0.0)
