"""Bollinger reversion: buy below the lower band, exit at the middle band (signals style)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.indicators import bollinger_bands
from framework.strategy import Params, Strategy, param
from framework.types import Bars
from strategies._rules import hold_with_time_stop


@dataclass(frozen=True)
class BollingerReversionParams(Params):
    window: int = param(20, space=(10, 20, 40), stage="features", low=2, high=1000,
                        doc="moving-average and standard-deviation window, bars")
    num_std: float = param(2.0, space=(1.5, 2.0, 2.5), stage="features", low=0.1, high=10.0,
                           doc="band width in standard deviations")
    max_hold: int = param(20, space=(10, 20, 40), stage="target", low=1, high=1000,
                          doc="time stop: bars held after the latest entry signal")


class BollingerReversion(Strategy):
    """Buy a close below the lower Bollinger band; sell when the close regains the middle band.

    Thesis: a close more than ``num_std`` standard deviations below its ``window``-bar average is
    an overreaction that tends to revert toward the average within days to weeks.
    Enter while close < lower band; exit when close >= middle band, or ``max_hold`` bars after
    the latest close below the lower band (time stop; it also bounds the rule's memory so the
    warm-up covers it).
    Data: daily closes of one symbol; each symbol is traded independently.
    Parameters: ``window`` 10/20/40, ``num_std`` 1.5/2/2.5, ``max_hold`` 10/20/40
    (27 combinations).
    """

    name = "bollinger_reversion"
    params_type = BollingerReversionParams
    universe = False

    def warmup(self, p: BollingerReversionParams) -> int:
        return p.window + p.max_hold

    def features(self, bars: Bars, p: BollingerReversionParams) -> dict[str, np.ndarray]:
        bands = bollinger_bands(bars.close, p.window, p.num_std)
        return {"close": bars.close, "lower": bands.lower, "middle": bands.middle}

    def target(self, features: Mapping[str, np.ndarray], p: BollingerReversionParams) -> np.ndarray:
        close = features["close"]
        return hold_with_time_stop(close < features["lower"], close >= features["middle"], p.max_hold)
