"""MACD trend: long while the MACD line is above its signal line (signals style)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.indicators import macd
from framework.strategy import Params, Strategy, param
from framework.types import Bars
from strategies.ema_cross import EMA_SETTLE_WINDOWS


@dataclass(frozen=True)
class MacdTrendParams(Params):
    fast: int = param(12, space=(8, 12), stage="features", low=1, high=500,
                      doc="fast EMA window of the MACD line, bars")
    slow: int = param(26, space=(21, 26, 35), stage="features", low=2, high=1000,
                      doc="slow EMA window of the MACD line, bars")
    signal: int = param(9, space=(5, 9), stage="features", low=1, high=500,
                        doc="EMA window of the signal line, bars")
    threshold: float = param(0.0, space=(0.0, 0.0005, 0.001), stage="target", low=0.0, high=0.1,
                             doc="minimum histogram as a fraction of the close to be long")

    def check(self) -> None:
        if self.fast >= self.slow:
            raise ParameterError(
                f"macd_trend needs fast < slow; got fast={self.fast}, slow={self.slow}. "
                "Choose a fast window below the slow one."
            )


class MacdTrend(Strategy):
    """Long while the MACD histogram (line minus signal) exceeds a threshold, else flat.

    Thesis: the MACD line is a momentum oscillator (fast EMA minus slow EMA); being above its own
    smoothed signal means momentum is rising, which tends to persist over days to weeks. The
    optional ``threshold`` (histogram / close) demands a clearer margin and filters chop.
    Data: daily closes of one symbol; each symbol is traded independently.
    Parameters: ``fast`` 8 or 12, ``slow`` 21/26/35, ``signal`` 5 or 9, ``threshold``
    0/0.0005/0.001 (36 combinations). The rule is memoryless: long iff histogram / close >
    threshold. Warm-up is five (slow + signal) windows so the EMA seeds are forgotten.
    """

    name = "macd_trend"
    params_type = MacdTrendParams
    universe = False

    def warmup(self, p: MacdTrendParams) -> int:
        return EMA_SETTLE_WINDOWS * (p.slow + p.signal)

    def features(self, bars: Bars, p: MacdTrendParams) -> dict[str, np.ndarray]:
        result = macd(bars.close, p.fast, p.slow, p.signal)
        # scale-free histogram so one threshold fits any price level
        return {"histogram": result.histogram / bars.close}

    def target(self, features: Mapping[str, np.ndarray], p: MacdTrendParams) -> np.ndarray:
        # NaN compares false: flat until the histogram exists
        return (features["histogram"] > p.threshold).astype(np.float64)
