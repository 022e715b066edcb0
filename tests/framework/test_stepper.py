"""Stepper: step_nb state machines, parameter schedules, snapshots and bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from numba import njit

from framework.errors import DataError, StrategyError
from framework.indicators import sma
from framework.stepper import Stepper, normalize_schedule, params_at
from framework.strategy import Params, Strategy, compute_target, param
from strategies.sma_cross import SmaCross, SmaCrossParams
from tests.barsgen import make_bars


@njit(cache=True)
def _hold_at_least_nb(state, raw, out):
    # state[j] = bars left in the current holding period; a change of mind waits for it to end
    hold = 5
    for j in range(raw.shape[0]):
        current = state[raw.shape[0] + j]
        if raw[j] != current and state[j] <= 0:
            current = raw[j]
            state[j] = hold
        state[j] -= 1
        state[raw.shape[0] + j] = current
        out[j] = current


@dataclass(frozen=True)
class HoldParams(Params):
    window: int = param(5, space=(3, 5, 8), stage="features", low=1)


class HoldingPeriod(Strategy):
    """Long above its average, but every position is held at least five bars."""

    name = "holding_period"
    params_type = HoldParams
    step_nb = staticmethod(_hold_at_least_nb)

    def step_state_size(self, p, n_assets):
        return 2 * n_assets

    def warmup(self, p):
        return p.window

    def features(self, bars, p):
        return {"avg": sma(bars.close, p.window), "close": bars.close}

    def target(self, features, p):
        return (features["close"] > features["avg"]).astype(float)


def test_step_nb_runs_in_backtest_and_live_identically():
    bars = make_bars(n=150, m=2, seed=5)
    strat, p = HoldingPeriod(), HoldParams()
    vectorized = compute_target(strat, bars, p)
    live = Stepper(strat, p, bars.symbols).update_bars(bars)
    np.testing.assert_array_equal(live, vectorized)
    # the state machine really acts: raw level signal flips more often than the held target
    raw = (bars.close > sma(bars.close, 5)).astype(float) / 2
    assert np.abs(np.diff(vectorized, axis=0)).sum() < np.abs(np.diff(raw[5:], axis=0)).sum()


def test_step_state_survives_snapshot_and_restore():
    bars = make_bars(n=90, m=1, seed=8)
    strat, p = HoldingPeriod(), HoldParams()
    whole = Stepper(strat, p, bars.symbols).update_bars(bars)
    first = Stepper(strat, p, bars.symbols)
    first.update_bars(bars.iloc(slice(0, 47)))
    snap = json.loads(json.dumps(first.snapshot()))
    assert snap["n_bars"] == 47 and len(snap["step_state"]) == 2
    second = Stepper.restore(strat, p, snap, bars)
    np.testing.assert_array_equal(second.update_bars(bars.iloc(slice(47, 90))), whole[47:])


def test_schedule_switches_params_at_effective_time():
    bars = make_bars(n=200, seed=2)
    a, b = SmaCrossParams(fast=5, slow=20), SmaCrossParams(fast=10, slow=40)
    switch = bars.index[120]
    live = Stepper(SmaCross(), [(bars.index[0], a), (switch, b)], bars.symbols).update_bars(bars)
    np.testing.assert_array_equal(live[:120], compute_target(SmaCross(), bars, a)[:120])
    np.testing.assert_array_equal(live[120:], compute_target(SmaCross(), bars, b)[120:])


def test_params_at_uses_first_entry_before_its_date():
    sched = normalize_schedule([("2020-01-01", SmaCrossParams(fast=5, slow=20)),
                                ("2021-01-01", SmaCrossParams())])
    assert params_at(sched, pd.Timestamp("2019-06-01", tz="UTC")).fast == 5
    assert params_at(sched, pd.Timestamp("2021-01-01", tz="UTC")).fast == 10


def test_out_of_order_bar_is_rejected():
    stepper = Stepper(SmaCross(), SmaCrossParams(), ["SPY"])
    stepper.update("2020-01-02 21:00", [1], [1], [1], [1], [1])
    with pytest.raises(DataError, match="not after the last bar"):
        stepper.update("2020-01-02 21:00", [1], [1], [1], [1], [1])


def test_wrong_width_bar_is_rejected():
    stepper = Stepper(SmaCross(), SmaCrossParams(), ["SPY", "QQQ"])
    with pytest.raises(DataError, match="expected 2"):
        stepper.update("2020-01-02 21:00", [1], [1], [1], [1], [1])


def test_restore_detects_bars_that_do_not_match_the_snapshot():
    bars = make_bars(n=60, seed=1)
    stepper = Stepper(SmaCross(), SmaCrossParams(), bars.symbols)
    stepper.update_bars(bars.iloc(slice(0, 30)))
    snap = stepper.snapshot()
    other = make_bars(n=60, seed=1, start="2016-01-04")
    with pytest.raises(DataError, match="do not match"):
        Stepper.restore(SmaCross(), SmaCrossParams(), snap, other)


def test_empty_schedule_is_an_error():
    with pytest.raises(StrategyError, match="schedule is empty"):
        normalize_schedule([])
