"""SMA cross: long while the fast moving average is above the slow one (signals style)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.indicators import latch, sma
from framework.strategy import Params, Strategy, param
from framework.types import Bars


@dataclass(frozen=True)
class SmaCrossParams(Params):
    fast: int = param(10, space=range(5, 100, 5), stage="features", low=1, high=1000,
                      doc="fast moving-average window, bars")
    slow: int = param(50, space=range(20, 310, 10), stage="features", low=2, high=2000,
                      doc="slow moving-average window, bars")
    short: bool = param(False, stage="target", doc="go short (instead of flat) below the cross")

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"sma_cross needs fast < slow; got fast={self.fast}, slow={self.slow}."
            )


class SmaCross(Strategy):
    """Trend following with two simple moving averages of the close.

    Thesis: prices trend; being long after the fast average crosses above the slow one (and flat,
    or short, after it crosses below) captures the trend and sidesteps long declines.
    Data: daily (or intraday) closes of one symbol; each symbol is traded independently.
    Parameters: ``fast`` 5..95 and ``slow`` 20..300 bars (fast < slow), ``short`` on/off.
    """

    name = "sma_cross"
    params_type = SmaCrossParams
    universe = False

    def warmup(self, p: SmaCrossParams) -> int:
        return p.slow

    def features(self, bars: Bars, p: SmaCrossParams) -> dict[str, np.ndarray]:
        return {"fast": sma(bars.close, p.fast), "slow": sma(bars.close, p.slow)}

    def feature_grid(
        self, bars: Bars, params_list: Sequence[SmaCrossParams]
    ) -> dict[str, np.ndarray]:
        """Features of many combinations as ``(n, k)`` columns, each window's average once."""
        windows = sorted({w for p in params_list for w in (p.fast, p.slow)})
        averages = np.hstack([sma(bars.close, w) for w in windows])  # (n, distinct windows)
        column = {w: i for i, w in enumerate(windows)}
        return {
            "fast": averages[:, [column[p.fast] for p in params_list]],
            "slow": averages[:, [column[p.slow] for p in params_list]],
        }

    def target(self, features: Mapping[str, np.ndarray], p: SmaCrossParams) -> np.ndarray:
        # Latch on the level, not on the crossing bar: the position then depends only on where
        # the averages stand, not on whether a crossing happened inside the loaded history.
        fast, slow = features["fast"], features["slow"]
        above, below = fast > slow, fast < slow
        long = latch(above, below)
        if not p.short:
            return long
        return long - latch(below, above)
