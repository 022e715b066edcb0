"""RSI mean reversion: buy when RSI is oversold, exit when it is overbought (signals style)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.indicators import rsi, sma
from framework.strategy import Params, Strategy, param
from framework.types import Bars
from strategies._rules import hold_with_time_stop

# Wilder smoothing forgets its seed by a factor (1 - 1/window) per bar; twenty windows shrink a
# seed difference below 1e-8 of its size, so threshold decisions do not depend on the start.
RSI_SETTLE_WINDOWS = 20


@dataclass(frozen=True)
class RsiReversionParams(Params):
    window: int = param(14, space=(2, 5, 14), stage="features", low=2, high=200,
                        doc="RSI window, bars")
    trend_window: int = param(200, stage="features", low=2, high=1000,
                              doc="moving-average window of the trend filter, bars")
    low: float = param(30.0, space=(10.0, 20.0, 30.0), stage="target", low=0.0, high=100.0,
                       doc="enter long while RSI is below this level")
    high: float = param(70.0, space=(50.0, 70.0, 90.0), stage="target", low=0.0, high=100.0,
                        doc="exit while RSI is above this level")
    trend_filter: bool = param(True, space=(False, True), stage="target",
                               doc="only enter while the close is above its trend average")
    max_hold: int = param(20, space=(10, 20), stage="target", low=1, high=1000,
                          doc="time stop: bars held after the latest entry signal")

    def check(self) -> None:
        if self.low >= self.high:
            raise ParameterError(
                f"rsi_reversion needs low < high; got low={self.low}, high={self.high}. "
                "The entry level must lie below the exit level."
            )


class RsiReversion(Strategy):
    """Buy short-term weakness in an uptrend; sell the bounce.

    Thesis: over days, liquid index ETFs mean-revert: an oversold RSI (below ``low``) is followed
    by above-average returns, especially while the long-term trend is up (close above its
    ``trend_window`` average). Enter while RSI < ``low`` (and, with ``trend_filter``, the close is
    above the trend average); exit when RSI > ``high`` or ``max_hold`` bars after the latest entry
    signal (time stop; it also bounds the rule's memory so the warm-up covers it).
    Data: daily closes of one symbol; each symbol is traded independently.
    Parameters: ``window`` 2/5/14, ``low`` 10/20/30, ``high`` 50/70/90, ``trend_filter`` on/off,
    ``max_hold`` 10/20 (108 combinations); ``trend_window`` 200 (not searched).
    """

    name = "rsi_reversion"
    params_type = RsiReversionParams
    universe = False

    def warmup(self, p: RsiReversionParams) -> int:
        return max(RSI_SETTLE_WINDOWS * p.window, p.trend_window) + p.max_hold

    def features(self, bars: Bars, p: RsiReversionParams) -> dict[str, np.ndarray]:
        close = bars.close
        return {"rsi": rsi(close, p.window), "uptrend": (close > sma(close, p.trend_window)) * 1.0}

    def target(self, features: Mapping[str, np.ndarray], p: RsiReversionParams) -> np.ndarray:
        value = features["rsi"]
        entries = value < p.low
        if p.trend_filter:
            entries &= features["uptrend"] > 0.5
        return hold_with_time_stop(entries, value > p.high, p.max_hold)
