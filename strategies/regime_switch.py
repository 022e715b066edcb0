"""Regime switch: SPY when the market is calm and trending up, else bonds/gold (weights style)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.indicators import percentile_rank, realized_volatility, sma
from framework.strategy import Params, Strategy, param
from framework.types import Bars
from strategies._rules import hold_from_rebalance, month_starts

MONTH_BARS = 23  # most trading days in a month: the warm-up covers one full rebalance period
INTENDED_SYMBOLS = ("SPY", "TLT", "GLD")


@dataclass(frozen=True)
class RegimeSwitchParams(Params):
    trend_window: int = param(200, space=(150, 200), stage="features", low=2, high=2000,
                              doc="moving-average window of the risk asset's trend, bars")
    vol_window: int = param(21, stage="features", low=2, high=1000,
                            doc="realized-volatility window of the risk asset, bars")
    rank_window: int = param(252, space=(126, 252), stage="features", low=2, high=5000,
                             doc="window of the volatility percentile rank, bars")
    max_percentile: float = param(0.8, space=(0.7, 0.8, 0.9), stage="target", low=0.0, high=1.0,
                                  doc="risk-on only while the volatility percentile is at most this")
    monthly: bool = param(True, space=(False, True), stage="target",
                          doc="decide on month starts only (else switch on any change)")


class RegimeSwitch(Strategy):
    """Risk-on/risk-off allocation between an equity index and defensive assets.

    Thesis: equities pay best in calm uptrends and worst in turbulent downtrends; long Treasuries
    and gold have tended to hold up when equities are stressed. The rule (simple and causal):
    risk-on when the first symbol's close is above its ``trend_window`` average **and** the
    percentile rank of its ``vol_window`` realized volatility over the last ``rank_window`` bars
    is at most ``max_percentile``; risk-off otherwise.
    Risk-on holds 100 % of the first symbol. Risk-off splits equity equally among the other
    symbols that have a price at that bar (cash when there are none, e.g. a single symbol).
    With ``monthly`` the regime is read on the first bar of each month and held to the next;
    otherwise the weights follow the regime bar by bar.
    Data: daily closes; **symbol order matters**: run with ``SPY TLT GLD`` (risk asset first).
    Parameters: ``trend_window`` 150/200, ``rank_window`` 126/252, ``max_percentile``
    0.7/0.8/0.9, ``monthly`` on/off (24 combinations); ``vol_window`` 21 (not searched).
    (``framework.regime`` labels were not used: their drawdown and hysteresis terms remember
    the whole history, which the warm-up check forbids for a finite warm-up.)
    """

    name = "regime_switch"
    params_type = RegimeSwitchParams
    universe = True

    def warmup(self, p: RegimeSwitchParams) -> int:
        # realized volatility is first valid at row vol_window, its rank rank_window - 1 later
        return max(p.trend_window, p.vol_window + p.rank_window) + MONTH_BARS

    def features(self, bars: Bars, p: RegimeSwitchParams) -> dict[str, np.ndarray]:
        risk = bars.close[:, 0]
        vol = realized_volatility(risk, p.vol_window)
        return {
            "uptrend": (risk > sma(risk, p.trend_window)) * 1.0,
            "vol_rank": percentile_rank(vol, p.rank_window),
            "priced": np.isfinite(bars.close) * 1.0,
            "rebalance": month_starts(bars.index) * 1.0,
        }

    def target(self, features: Mapping[str, np.ndarray], p: RegimeSwitchParams) -> np.ndarray:
        priced = features["priced"] > 0.5
        rank = features["vol_rank"]
        valid = ~np.isnan(rank)
        risk_on = (features["uptrend"] > 0.5) & valid & (rank <= p.max_percentile)
        weights = np.zeros(priced.shape)
        weights[:, 0] = risk_on
        defensive = priced[:, 1:] & ~risk_on[:, None] & valid[:, None]
        count = defensive.sum(axis=1, keepdims=True)
        weights[:, 1:] = np.where(count > 0, defensive / np.maximum(count, 1), 0.0)
        if not p.monthly:
            return weights
        return hold_from_rebalance(weights, features["rebalance"] > 0.5)
