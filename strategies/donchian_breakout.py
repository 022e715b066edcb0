"""Donchian breakout (turtle style): long on a new N-bar high, exit on an M-bar low."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.indicators import rolling_max, rolling_min
from framework.strategy import Params, Strategy, param
from framework.types import Bars
from strategies._rules import hold_with_time_stop


@dataclass(frozen=True)
class DonchianBreakoutParams(Params):
    entry: int = param(55, space=(20, 55, 100), stage="features", low=1, high=2000,
                       doc="breakout look-back: close above the highest high of these bars")
    exit: int = param(20, space=(10, 20, 50), stage="features", low=1, high=2000,
                      doc="exit look-back: close below the lowest low of these bars")
    max_hold: int = param(252, stage="target", low=1, high=5000,
                          doc="bars a position survives without a fresh breakout")

    def check(self) -> None:
        if self.exit >= self.entry:
            raise ParameterError(
                f"donchian_breakout needs exit < entry; got exit={self.exit}, entry={self.entry}. "
                "Use a shorter exit channel than the entry channel (e.g. entry=55, exit=20)."
            )


class DonchianBreakout(Strategy):
    """Turtle-style channel breakout on closes, long only.

    Thesis: a close above the highest high of the previous ``entry`` bars starts or confirms a
    trend that tends to persist; a close below the lowest low of the previous ``exit`` bars ends
    it. Channels exclude the current bar (a close cannot exceed a high that includes it).
    Each new breakout refreshes the position; with no fresh breakout for ``max_hold`` bars the
    position is closed. That stale-signal stop bounds the rule's memory so the warm-up covers it;
    at 252 bars it rarely binds, because a live uptrend keeps printing new highs.
    Data: daily highs, lows and closes of one symbol; each symbol is traded independently.
    Parameters: ``entry`` 20/55/100 and ``exit`` 10/20/50 bars (exit < entry; 7 combinations),
    ``max_hold`` 252 (not searched).
    """

    name = "donchian_breakout"
    params_type = DonchianBreakoutParams
    universe = False

    def warmup(self, p: DonchianBreakoutParams) -> int:
        return p.entry + 1 + p.max_hold

    def features(self, bars: Bars, p: DonchianBreakoutParams) -> dict[str, np.ndarray]:
        upper = _previous_row(rolling_max(bars.high, p.entry))
        lower = _previous_row(rolling_min(bars.low, p.exit))
        return {"close": bars.close, "upper": upper, "lower": lower}

    def target(self, features: Mapping[str, np.ndarray], p: DonchianBreakoutParams) -> np.ndarray:
        close = features["close"]
        return hold_with_time_stop(close > features["upper"], close < features["lower"], p.max_hold)


def _previous_row(x: np.ndarray) -> np.ndarray:
    """``x`` shifted down one row (row ``i`` holds ``x[i-1]``; row 0 is NaN): still causal."""
    out = np.full_like(x, np.nan, dtype=np.float64)
    out[1:] = x[:-1]
    return out
