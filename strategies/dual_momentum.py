"""Dual momentum sector rotation: relative top-N plus an absolute filter vs cash, monthly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.strategy import Params, Strategy, param
from framework.types import Bars
from strategies._rules import hold_from_rebalance, month_starts

# A month has at most 23 trading days: one more month of warm-up guarantees the first held
# weights come from a rebalance with complete scores.
MONTH_BARS = 23
SECTOR_ETFS = ("XLB", "XLE", "XLF", "XLI", "XLK", "XLP", "XLU", "XLV", "XLY")


@dataclass(frozen=True)
class DualMomentumParams(Params):
    lookback: int = param(126, space=(63, 126, 189, 252), stage="features", low=2, high=2520,
                          doc="momentum look-back, bars")
    skip: int = param(0, space=(0, 21), stage="features", low=0, high=252,
                      doc="most recent bars left out of the momentum (short-term reversal)")
    top_n: int = param(3, space=(1, 2, 3, 4), stage="target", low=1, high=1000,
                       doc="number of sector slots, each 1 / top_n of equity")
    min_return: float = param(0.0, stage="target", low=-1.0, high=10.0,
                              doc="absolute filter: a slot holds a sector only if its momentum "
                                  "exceeds this (cash proxy), else the slot stays in cash")

    def check(self) -> None:
        if self.skip >= self.lookback:
            raise ParameterError(
                f"dual_momentum needs skip < lookback; got skip={self.skip}, "
                f"lookback={self.lookback}."
            )


class DualMomentum(Strategy):
    """Antonacci-style dual momentum over a universe (e.g. the SPDR sector ETFs), monthly.

    Thesis: relative momentum (sectors that led over the past months keep leading) picks what to
    hold; absolute momentum (hold a sector only if its own trailing return beats cash) steps
    aside in broad bear markets, when all sectors fall together.
    On the first bar of each month, rank symbols by ``close[t - skip] / close[t - lookback] - 1``;
    each of the ``top_n`` best gets ``1 / top_n`` of equity if its score exceeds ``min_return``
    (0 = cash earning nothing; there is no T-bill series in the data), otherwise that slot stays
    in cash. Weights are held until the next month start.
    Data: daily closes of a universe; the intended one is ``SECTOR_ETFS`` (XLB XLE XLF XLI XLK
    XLP XLU XLV XLY). Symbols without enough history are not ranked.
    Parameters: ``lookback`` 63..252, ``skip`` 0 or 21, ``top_n`` 1..4 (32 combinations);
    ``min_return`` 0 (not searched).
    """

    name = "dual_momentum"
    params_type = DualMomentumParams
    universe = True

    def warmup(self, p: DualMomentumParams) -> int:
        return p.lookback + MONTH_BARS

    def features(self, bars: Bars, p: DualMomentumParams) -> dict[str, np.ndarray]:
        close = bars.close
        score = np.full_like(close, np.nan)
        if bars.n_bars > p.lookback:
            recent = close[p.lookback - p.skip : bars.n_bars - p.skip]
            past = close[: bars.n_bars - p.lookback]
            score[p.lookback :] = recent / past - 1.0
        return {"score": score, "rebalance": month_starts(bars.index) * 1.0}

    def target(self, features: Mapping[str, np.ndarray], p: DualMomentumParams) -> np.ndarray:
        score, rebalance = features["score"], features["rebalance"] > 0.5
        chosen = np.zeros_like(score)
        for i in np.flatnonzero(rebalance):
            chosen[i] = _dual_momentum_weights(score[i], p.top_n, p.min_return)
        return hold_from_rebalance(chosen, rebalance)


def _dual_momentum_weights(scores: np.ndarray, top_n: int, min_return: float) -> np.ndarray:
    """``1 / top_n`` on each of the ``top_n`` best scores that beat ``min_return``."""
    out = np.zeros_like(scores)
    valid = np.flatnonzero(~np.isnan(scores))
    if valid.size == 0:
        return out
    # stable sort on -score: ties broken by column order, so results are deterministic
    ranked = valid[np.argsort(-scores[valid], kind="stable")[:top_n]]
    winners = ranked[scores[ranked] > min_return]
    out[winners] = 1.0 / top_n
    return out
