"""Cross-sectional momentum across a universe, rebalanced monthly (weights style)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError
from framework.strategy import Params, Strategy, param
from framework.types import Bars


@dataclass(frozen=True)
class MomentumParams(Params):
    lookback: int = param(126, space=(63, 126, 189, 252), stage="features", low=2, high=2520,
                          doc="momentum look-back, bars")
    skip: int = param(21, space=(0, 21), stage="features", low=0, high=252,
                      doc="most recent bars left out of the momentum (short-term reversal)")
    top_n: int = param(3, space=(1, 2, 3, 5, 10), stage="target", low=1, high=1000,
                       doc="number of symbols held, equal weight")

    def check(self) -> None:
        if self.skip >= self.lookback:
            raise ParameterError(
                f"momentum needs skip < lookback; got skip={self.skip}, lookback={self.lookback}."
            )


class CrossSectionalMomentum(Strategy):
    """Hold the ``top_n`` symbols with the strongest trailing return, equal weight, monthly.

    Thesis: winners over the past months keep outperforming over the next month (Jegadeesh and
    Titman), net of a one-month skip for short-term reversal.
    Data: daily closes of a universe (e.g. the SPDR sector ETFs); symbols without enough history
    are not ranked. Rebalances on the first bar of each new month, decided at that bar's close.
    Parameters: ``lookback`` 63..252, ``skip`` 0 or 21, ``top_n`` 1..10.
    """

    name = "momentum"
    params_type = MomentumParams
    universe = True

    def warmup(self, p: MomentumParams) -> int:
        # one full month after the look-back, so the first held weights come from a rebalance
        # with complete scores, however much earlier history was loaded
        return p.lookback + 23

    def features(self, bars: Bars, p: MomentumParams) -> dict[str, np.ndarray]:
        close = bars.close
        score = np.full_like(close, np.nan)
        if bars.n_bars > p.lookback:
            recent = close[p.lookback - p.skip : bars.n_bars - p.skip]
            past = close[: bars.n_bars - p.lookback]
            score[p.lookback :] = recent / past - 1.0
        month = bars.index.year * 12 + bars.index.month
        rebalance = np.zeros(bars.n_bars)
        rebalance[1:] = np.diff(np.asarray(month)) != 0
        return {"score": score, "rebalance": rebalance}

    def target(self, features: Mapping[str, np.ndarray], p: MomentumParams) -> np.ndarray:
        score, rebalance = features["score"], features["rebalance"]
        weights = np.zeros_like(score)
        current = np.zeros(score.shape[1])
        for i in range(score.shape[0]):
            if rebalance[i]:
                current = _top_n_weights(score[i], p.top_n)
            weights[i] = current
        return weights


def _top_n_weights(scores: np.ndarray, top_n: int) -> np.ndarray:
    valid = np.flatnonzero(~np.isnan(scores))
    out = np.zeros_like(scores)
    if valid.size == 0:
        return out
    # stable sort on -score: ties broken by column order, so results are deterministic
    chosen = valid[np.argsort(-scores[valid], kind="stable")[:top_n]]
    out[chosen] = 1.0 / len(chosen)
    return out
