"""EMA cross: long (or long/short) while the fast EMA is above the slow one (signals style)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.indicators import ema, latch
from framework.strategy import Params, Strategy, param
from framework.types import Bars

# An EMA seeded at a different bar differs by a factor (1 - 2 / (window + 1)) ** k after k bars,
# about exp(-2 k / window). Five windows of warm-up shrink a seed difference by ~exp(-8) relative
# to its start, so the cross does not depend on where the loaded history begins.
EMA_SETTLE_WINDOWS = 5


@dataclass(frozen=True)
class EmaCrossParams(Params):
    fast: int = param(20, space=(5, 10, 20, 50), stage="features", low=1, high=1000,
                      doc="fast EMA window, bars")
    slow: int = param(100, space=(50, 100, 150, 200), stage="features", low=2, high=2000,
                      doc="slow EMA window, bars")
    short: bool = param(False, stage="target", doc="go short (instead of flat) below the cross")

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"ema_cross needs fast < slow; got fast={self.fast}, slow={self.slow}. "
                "Choose a fast window below the slow one."
            )


class EmaCross(Strategy):
    """Trend following with two exponential moving averages of the close.

    Thesis: prices trend; EMAs react faster than SMAs of the same length, so the cross catches a
    new trend earlier (at the cost of more whipsaws). Long while fast > slow; flat (or short with
    ``short=true``) while fast < slow; an exact tie keeps the previous position.
    Data: daily closes of one symbol; each symbol is traded independently.
    Parameters: ``fast`` 5..50 and ``slow`` 50..200 bars (fast < slow; 15 combinations),
    ``short`` on/off (not searched). Warm-up is five slow windows so the EMA seed is forgotten.
    """

    name = "ema_cross"
    params_type = EmaCrossParams
    universe = False

    def warmup(self, p: EmaCrossParams) -> int:
        return EMA_SETTLE_WINDOWS * p.slow

    def features(self, bars: Bars, p: EmaCrossParams) -> dict[str, np.ndarray]:
        return {"fast": ema(bars.close, p.fast), "slow": ema(bars.close, p.slow)}

    def target(self, features: Mapping[str, np.ndarray], p: EmaCrossParams) -> np.ndarray:
        # Latched on the level (not the crossing bar) so the position depends only on where the
        # averages stand; the latch only bridges exact ties.
        above = features["fast"] > features["slow"]
        below = features["fast"] < features["slow"]
        long = latch(above, below)
        if not p.short:
            return long
        return long - latch(below, above)
