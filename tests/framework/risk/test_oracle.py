"""Stops against vectorbt's ``sl_stop`` / ``sl_trail`` (``Portfolio.from_signals``) on real SPY.

Where the semantics coincide: no costs, whole shares all-in, entries at the next open, the stop
measured from the entry fill price (vectorbt ``stop_entry_price="fillprice"``), exits at the
stop price or at the open on a gap (vectorbt ``stop_exit_price="stoplimit"``), and no re-entry
until the strategy signals again. Where they differ:

- fw also checks the stop on the entry bar (the position is held from the open on, so a low
  after the open can hit it); vectorbt starts checking on the next bar. The fixed-stop test
  asserts that no stop fired on an entry bar, so the runs are comparable.
- fw's trailing reference includes the entry bar's high (reached while holding); vectorbt's
  starts at the entry price on the next bar.
- When the strategy's exit fills at a bar's open and the same bar's low later touches the stop,
  fw exits at the open (it happened first); vectorbt lets the stop win and exits at the level.

The tests compare the trades up to the first one where one of these differences can matter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from framework.risk import RiskSpec
from framework.types import Bars

pytestmark = [pytest.mark.oracle, pytest.mark.realdata]

CASH = 100_000.0


@pytest.fixture(scope="module")
def spy(shared_data):
    frame = pd.read_csv(shared_data / "daily" / "SPY.csv.gz", parse_dates=["date"])
    frame = frame.set_index("date")[["open", "high", "low", "close", "volume"]]
    frame.index = frame.index.tz_localize("UTC")
    bars = Bars.from_frames({"SPY": frame})
    close = pd.Series(bars.close[:, 0])
    target = (close.rolling(10).mean() > close.rolling(50).mean()).to_numpy(np.float64)
    return frame, bars, target


def _ours(bars, target, **risk):
    spec = EngineSpec(initial_cash=CASH, whole_shares=True)
    return simulate(bars, target, spec, CostSpec.none(), RiskSpec(**risk))


def _theirs(frame, target, **stops):
    vbt = pytest.importorskip("vectorbt")
    decided = np.concatenate(([0.0], target[:-1]))  # target[i - 1] fills at open[i]
    before = np.concatenate(([0.0], decided[:-1]))
    return vbt.Portfolio.from_signals(
        close=frame["close"],
        open=frame["open"],
        high=frame["high"],
        low=frame["low"],
        entries=(decided == 1.0) & (before != 1.0),
        exits=(decided == 0.0) & (before == 1.0),
        price=frame["open"],
        size_granularity=1,
        init_cash=CASH,
        freq="1D",
        stop_entry_price="fillprice",
        stop_exit_price="stoplimit",
        **stops,
    ).trades.records


def _compare(ours, theirs, same):
    """Same entries for every trade; same exit bar and price where no semantic difference can
    matter (``same``); same share counts up to the first such trade (after it, cash differs)."""
    mine = ours.trades
    assert len(mine) == len(theirs)
    np.testing.assert_array_equal(mine["entry_bar"], theirs["entry_idx"])
    assert same.sum() > 20 and (mine["exit_reason"][same] != "signal").sum() > 5
    np.testing.assert_array_equal(mine["exit_bar"][same], theirs["exit_idx"][same])
    np.testing.assert_allclose(mine["exit_price"][same], theirs["exit_price"][same], rtol=1e-9)
    prefix = int(np.argmin(same)) if not same.all() else len(same)
    np.testing.assert_array_equal(mine["qty"][:prefix], theirs["size"][:prefix])


def _comparable(trades, bars, pct, trailing):
    """Per trade: True where no semantic difference (module doc) can affect its exit."""
    high, low = bars.high[:, 0], bars.low[:, 0]
    same = np.zeros(len(trades), bool)
    for k, (_, trade) in enumerate(trades.iterrows()):
        entry, exit_ = int(trade["entry_bar"]), int(trade["exit_bar"])
        if trade["is_open"] or exit_ == entry:
            continue  # open at the end, or stopped on its entry bar
        reference = trade["entry_price"]
        if trailing:
            reference = max(reference, high[entry + 1 : exit_].max(initial=0.0))
            if high[entry] >= reference:
                continue  # the entry bar's high sets fw's level
        # a signal exit at the open with a stop touch later in the bar
        same[k] = not (trade["exit_reason"] == "signal" and low[exit_] <= reference * (1 - pct))
    return same


def test_fixed_stop_matches_vectorbt_sl_stop(spy):
    frame, bars, target = spy
    ours = _ours(bars, target, stop="fixed", stop_pct=0.04)
    assert (ours.trades["exit_reason"] == "stop_loss").sum() > 5
    theirs = _theirs(frame, target, sl_stop=0.04)
    _compare(ours, theirs, _comparable(ours.trades, bars, 0.04, trailing=False))


def test_trailing_stop_matches_vectorbt_sl_trail(spy):
    frame, bars, target = spy
    ours = _ours(bars, target, stop="trailing", stop_pct=0.05)
    assert (ours.trades["exit_reason"] == "trailing_stop").sum() > 5
    theirs = _theirs(frame, target, sl_stop=0.05, sl_trail=True)
    _compare(ours, theirs, _comparable(ours.trades, bars, 0.05, trailing=True))
