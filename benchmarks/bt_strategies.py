"""backtrader strategies that reproduce fw's rules (imports backtrader at module import).

Matching fw (peers.md): market orders fill at the next open (backtrader's default), 0.1%
commission per side, standard observers off (``stdstats=False``), whole shares. backtrader
rejects an order it cannot fully afford, so buys are sized from the fill price themselves:
``floor(cash / (open * (1 + fee)))``; ``checksubmit`` is off so the cash check happens at the
fill, after the same bar's sells, as in fw.
"""

from __future__ import annotations

import math

import backtrader as bt
import numpy as np
import pandas as pd

from benchmarks.common import FEE_RATE, INITIAL_CASH
from framework.types import Bars


class SmaCrossBt(bt.Strategy):
    """Long while SMA(fast) > SMA(slow), flat while below; holds on ties, like fw's latch.

    fw forces targets to 0 on the first ``slow`` bars (warm-up), so no decision is taken
    before bar ``slow``. Buys are sized at the next bar's open, read from the preloaded feed
    (``open[1]``): the price fw sizes at.
    """

    params = (("fast", 10), ("slow", 50), ("fee", FEE_RATE))

    def __init__(self) -> None:
        self.fast_ma = bt.indicators.SMA(self.data.close, period=self.p.fast)
        self.slow_ma = bt.indicators.SMA(self.data.close, period=self.p.slow)

    def next(self) -> None:
        """Decide at this bar's close; the order fills at the next open."""
        # len(self) - 1 is the bar index; the last bar's decision is never filled
        if len(self) <= self.p.slow or len(self.data) >= self.data.buflen():
            return
        fast, slow = self.fast_ma[0], self.slow_ma[0]
        if not self.position:
            if fast > slow:
                size = math.floor(self.broker.getcash() / (self.data.open[1] * (1 + self.p.fee)))
                if size > 0:
                    self.buy(size=size)
        elif fast < slow:
            self.close()


class TargetWeightsBt(bt.Strategy):
    """Trade to precomputed target weights at the open after each decision row (cheat-on-open).

    ``weights`` is ``(n_bars, n_datas)``; a row of NaN means "no decision". Like fw with
    ``rebalance="every_bar"``: at the open after a decision row, every asset with a weight is
    re-sized to ``weight * equity / open`` (truncated to whole shares), equity valued at the
    opens; sells go first, then buys, each group in ascending signed value. Buys never need
    cutting here because the weights sum to less than 1 minus the costs.
    """

    params = (("weights", None), ("fee", FEE_RATE))

    def next_open(self) -> None:
        """Trade the previous row's weights at this bar's open."""
        # In next_open the new bar is loaded while len(self) still counts the previous ones,
        # so the bar being opened is len(self) and its decision row is the one before.
        row = self.p.weights[len(self) - 1]
        if np.isnan(row).all():
            return
        opens = np.array([d.open[0] for d in self.datas])
        held = np.array([self.getposition(d).size for d in self.datas], dtype=np.float64)
        equity = self.broker.getcash() + float(np.sum(held * opens))
        orders = []
        for j, weight in enumerate(row):
            if np.isnan(weight):
                continue
            size = math.trunc(weight * equity / opens[j] - held[j])
            if size != 0:
                orders.append((size * opens[j], j, size))
        orders.sort(key=lambda order: order[0])  # sells (negative value) first
        for _, j, size in orders:
            if size > 0:
                self.buy(data=self.datas[j], size=size)
            else:
                self.sell(data=self.datas[j], size=-size)


def bt_frame(bars: Bars, column: int) -> pd.DataFrame:
    """One symbol's OHLCV for ``bt.feeds.PandasData`` (naive timestamps, as it expects)."""
    fields = ("open", "high", "low", "close", "volume")
    frame = pd.DataFrame({f: getattr(bars, f)[:, column] for f in fields}, index=bars.index)
    frame.index = frame.index.tz_localize(None)
    return frame


def _cerebro(cheat_on_open: bool = False) -> bt.Cerebro:
    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=cheat_on_open)
    cerebro.broker.setcash(INITIAL_CASH)
    cerebro.broker.setcommission(commission=FEE_RATE)
    cerebro.broker.set_checksubmit(False)
    if cheat_on_open:
        cerebro.broker.set_coo(True)
    return cerebro


def run_sma_cross(frame: pd.DataFrame, fast: int, slow: int) -> float:
    """Final portfolio value of :class:`SmaCrossBt` on one symbol."""
    cerebro = _cerebro()
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(SmaCrossBt, fast=fast, slow=slow)
    cerebro.run()
    return float(cerebro.broker.getvalue())


def run_target_weights(frames: list[pd.DataFrame], weights: np.ndarray) -> float:
    """Final portfolio value of :class:`TargetWeightsBt` over several symbols."""
    cerebro = _cerebro(cheat_on_open=True)
    for frame in frames:
        cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(TargetWeightsBt, weights=weights)
    cerebro.run()
    return float(cerebro.broker.getvalue())
