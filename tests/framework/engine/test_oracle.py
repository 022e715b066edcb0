"""fw against peer engines (vectorbt, backtrader) on real daily bars, configured identically.

Setup follows ``../shared/notes/peers.md``: decide at close ``i``, fill at open ``i + 1``; a 0.1%
fee per side; no slippage or impact; whole shares where noted. vectorbt gets the shifted targets
with ``price=open``; backtrader runs with cheat-on-open so it can size an all-in order at the
open it fills at. Peers are imported inside module-scoped fixtures (vectorbt's first call
compiles for seconds) so collecting the suite stays fast.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from framework.types import Bars

pytestmark = [pytest.mark.oracle, pytest.mark.realdata]

FEE = 0.001
CASH = 100_000.0
RTOL = 1e-9
FEE_ONLY = CostSpec(
    commission_bps=10.0,
    commission_per_share=0.0,
    commission_min=0.0,
    commission_max_pct=None,
    slippage_bps=0.0,
    impact_coef=0.0,
    max_participation=None,
)


def _load(shared_data, symbol: str) -> pd.DataFrame:
    frame = pd.read_csv(shared_data / "daily" / f"{symbol}.csv.gz", parse_dates=["date"])
    frame = frame.set_index("date")[["open", "high", "low", "close", "volume"]]
    frame.index = frame.index.tz_localize("UTC")
    return frame


# -- single asset: SMA 10/50 cross, long only, whole shares all-in -----------------------------
@pytest.fixture(scope="module")
def spy(shared_data):
    frame = _load(shared_data, "SPY")
    bars = Bars.from_frames({"SPY": frame})
    close = pd.Series(bars.close[:, 0])
    fast, slow = close.rolling(10).mean(), close.rolling(50).mean()
    target = (fast > slow).to_numpy(dtype=np.float64)  # warm-up NaN compares False -> 0
    result = simulate(bars, target, EngineSpec(initial_cash=CASH, whole_shares=True), FEE_ONLY)
    return frame, target, result


@pytest.fixture(scope="module")
def spy_vectorbt(spy):
    vbt = pytest.importorskip("vectorbt")
    frame, target, _ = spy
    decided = np.concatenate(([np.nan], target[:-1]))  # target[i - 1] fills at open[i]
    before = np.concatenate(([np.nan, np.nan], target[:-2]))
    size = np.where(decided != before, decided, np.nan)  # orders only when the target changes
    return vbt.Portfolio.from_orders(
        close=frame["close"],
        size=size,
        size_type="targetpercent",
        price=frame["open"],
        fees=FEE,
        size_granularity=1,
        init_cash=CASH,
        freq="1D",
        engine="numba",
    )


def test_sma_cross_fills_and_equity_match_vectorbt(spy, spy_vectorbt):
    _, _, ours = spy
    theirs = spy_vectorbt.orders.records
    assert len(ours.fills) == len(theirs) > 100
    assert ours.fills["bar"].tolist() == theirs["idx"].tolist()
    signed = np.where(theirs["side"] == 0, theirs["size"], -theirs["size"])
    np.testing.assert_array_equal(ours.fills["qty"].to_numpy(), signed)
    np.testing.assert_allclose(ours.fills["price"], theirs["price"], rtol=RTOL)
    np.testing.assert_allclose(ours.fills["commission"], theirs["fees"], rtol=RTOL)
    np.testing.assert_allclose(ours.equity, spy_vectorbt.value().to_numpy(), rtol=RTOL)
    assert ours.equity[-1] == pytest.approx(spy_vectorbt.final_value(), rel=RTOL)


def test_sma_cross_trades_match_vectorbt(spy, spy_vectorbt):
    _, _, ours = spy
    theirs = spy_vectorbt.trades.records
    trades = ours.trades
    assert len(trades) == len(theirs)
    assert trades["entry_bar"].tolist() == theirs["entry_idx"].tolist()
    assert trades["is_open"].tolist() == (theirs["status"] == 0).tolist()
    closed = ~trades["is_open"].to_numpy()
    assert trades["exit_bar"][closed].tolist() == theirs["exit_idx"][closed].tolist()
    np.testing.assert_array_equal(trades["qty"], theirs["size"])
    np.testing.assert_allclose(trades["entry_price"], theirs["entry_price"], rtol=RTOL)
    np.testing.assert_allclose(trades["exit_price"], theirs["exit_price"], rtol=RTOL)
    np.testing.assert_allclose(trades["pnl"], theirs["pnl"], rtol=RTOL, atol=1e-6)


@pytest.fixture(scope="module")
def spy_backtrader(spy):
    bt = pytest.importorskip("backtrader")
    frame, target, _ = spy

    class FollowTarget(bt.Strategy):
        """Acts at the open of bar i on target[i - 1], sized all-in at that open."""

        def __init__(self):
            self.fills, self.closed = [], []

        def next_open(self):
            i = len(self)  # during next_open the new bar is not counted yet
            decided = target[i - 1]
            if i >= 2 and decided == target[i - 2]:
                return
            if decided == 1.0 and self.position.size == 0:
                shares = math.floor(self.broker.getcash() / (self.data.open[0] * (1 + FEE)))
                self.buy(size=shares)
            elif decided == 0.0 and self.position.size > 0:
                self.close()

        def notify_order(self, order):
            if order.status == order.Completed:
                done = order.executed
                self.fills.append((len(self) - 1, done.size, done.price, done.comm))
            elif order.status in (order.Margin, order.Rejected):
                raise AssertionError(f"backtrader rejected an order: {order}")

        def notify_trade(self, trade):
            if trade.isclosed:
                self.closed.append(trade.pnlcomm)

    cerebro = bt.Cerebro(stdstats=False, cheat_on_open=True)
    feed = frame.copy()
    feed.index = feed.index.tz_localize(None)
    cerebro.adddata(bt.feeds.PandasData(dataname=feed, openinterest=None))
    cerebro.broker.setcash(CASH)
    cerebro.broker.set_coo(True)
    cerebro.broker.setcommission(commission=FEE)
    cerebro.addstrategy(FollowTarget)
    strategy = cerebro.run()[0]
    return strategy.fills, strategy.closed, cerebro.broker.getvalue()


def test_sma_cross_matches_backtrader(spy, spy_backtrader):
    _, _, ours = spy
    fills, closed_pnl, final_value = spy_backtrader
    assert len(fills) == len(ours.fills) > 100
    bars, sizes, prices, fees = (np.array(col) for col in zip(*fills, strict=True))
    assert ours.fills["bar"].tolist() == bars.tolist()
    np.testing.assert_array_equal(ours.fills["qty"].to_numpy(), sizes)
    np.testing.assert_allclose(ours.fills["price"], prices, rtol=RTOL)
    np.testing.assert_allclose(ours.fills["commission"], fees, rtol=RTOL)
    closed = ours.trades[~ours.trades["is_open"]]
    np.testing.assert_allclose(closed["pnl"], closed_pnl, rtol=RTOL, atol=1e-6)
    assert ours.equity[-1] == pytest.approx(final_value, rel=RTOL)


# -- universe: shared cash across SPY, TLT, GLD -------------------------------------------------
@pytest.fixture(scope="module")
def universe(shared_data):
    frames = {symbol: _load(shared_data, symbol) for symbol in ("SPY", "TLT", "GLD")}
    common = frames["SPY"].index
    for frame in frames.values():
        common = common.intersection(frame.index)
    return Bars.from_frames({symbol: frame.loc[common] for symbol, frame in frames.items()})


def _month_ends(index: pd.DatetimeIndex) -> np.ndarray:
    return np.r_[index.month[1:] != index.month[:-1], True]


def _vectorbt_universe(bars: Bars, size, size_type, **extra):
    vbt = pytest.importorskip("vectorbt")
    return vbt.Portfolio.from_orders(
        close=bars.frame("close"),
        size=size,
        size_type=size_type,
        price=bars.frame("open"),
        fees=FEE,
        init_cash=CASH,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        freq="1D",
        engine="numba",
        **extra,
    )


def _assert_same_fills(ours: pd.DataFrame, theirs: np.ndarray, symbols) -> None:
    # within a bar the peers may list fills in a different order: compare sorted by (bar, symbol)
    assert len(ours) == len(theirs) > 50
    mine = ours.assign(col=ours["symbol"].map({s: j for j, s in enumerate(symbols)}))
    mine = mine.sort_values(["bar", "col"], kind="stable")
    order = np.lexsort((theirs["col"], theirs["idx"]))
    other = theirs[order]
    assert mine["bar"].tolist() == other["idx"].tolist()
    assert mine["col"].tolist() == other["col"].tolist()
    signed = np.where(other["side"] == 0, other["size"], -other["size"])
    np.testing.assert_allclose(mine["qty"], signed, rtol=RTOL)
    np.testing.assert_allclose(mine["price"], other["price"], rtol=RTOL)
    np.testing.assert_allclose(mine["commission"], other["fees"], rtol=RTOL, atol=1e-9)


def test_top1_momentum_rotation_matches_vectorbt(universe):
    bars = universe
    n, m = bars.n_bars, bars.n_assets
    momentum = bars.frame("close").pct_change(63).to_numpy()
    target, held = np.zeros((n, m)), None
    for i in np.flatnonzero(_month_ends(bars.index)):
        if not np.isnan(momentum[i]).any():
            held = int(np.argmax(momentum[i]))
        if held is not None:
            target[i:, :] = 0.0
            target[i:, held] = 1.0  # all in: every rotation's buy is limited by cash after fees
    ours = simulate(bars, target, EngineSpec(initial_cash=CASH), FEE_ONLY)

    from vectorbt.portfolio.enums import SizeType

    decided = np.vstack([np.full((1, m), np.nan), target[:-1]])
    before = np.vstack([np.full((2, m), np.nan), target[:-2]])
    changed = decided != before
    # unchanged assets get an explicit zero-share order: NaN sizes would upset the auto sort
    size = np.where(changed, decided, 0.0)
    size_type = np.where(changed, SizeType.TargetPercent, SizeType.Amount)
    theirs = _vectorbt_universe(bars, size, size_type)
    _assert_same_fills(ours.fills, theirs.orders.records_arr, bars.symbols)
    np.testing.assert_allclose(ours.equity, theirs.value().to_numpy(), rtol=RTOL)


def test_monthly_equal_weight_whole_shares_matches_vectorbt(universe):
    bars = universe
    # 0.33 each (not 1/3) keeps the buys within cash, where fw scales competing buys together
    # and vectorbt cuts the last one; see framework.engine.core
    target = np.where(_month_ends(bars.index)[:, None], 0.33, np.nan) * np.ones(bars.n_assets)
    spec = EngineSpec(initial_cash=CASH, rebalance="every_bar", whole_shares=True)
    ours = simulate(bars, target, spec, FEE_ONLY)
    decided = np.vstack([np.full((1, bars.n_assets), np.nan), target[:-1]])
    theirs = _vectorbt_universe(bars, decided, "targetpercent", size_granularity=1)
    _assert_same_fills(ours.fills, theirs.orders.records_arr, bars.symbols)
    np.testing.assert_allclose(ours.equity, theirs.value().to_numpy(), rtol=RTOL)
