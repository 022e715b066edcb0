"""DESIGN.md guarantee 4, walk-forward parity: the live Stepper driven by the walk-forward
parameter schedule reproduces the stitched out-of-sample targets exactly (every registered
strategy, generated bars, random windows and searches)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.backtest import BacktestSpec
from framework.stepper import Stepper
from framework.walkforward import (
    SearchSpec,
    WalkForwardSpec,
    WindowSpec,
    load_schedule,
    walk_forward,
)
from framework.walkforward.schedule import schedule_payload
from strategies import REGISTRY
from tests.barsgen import bars_strategy

# learned strategies need longer windows than these bars: tests/strategies/test_ml_classifier.py
NAMES = sorted(n for n in REGISTRY if REGISTRY[n].fit is None)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# at least one fold must fit: train <= 90, purge <= 3, test <= 50 bars
@given(bars=bars_strategy(min_n=150, max_n=300), data=st.data())
def test_stepper_on_the_schedule_reproduces_stitched_targets(name, bars, data):
    strategy = REGISTRY[name]()
    train = data.draw(st.integers(40, 90), label="train")
    test = data.draw(st.integers(10, 50), label="test")
    purge = data.draw(st.integers(0, 3), label="purge")
    anchored = data.draw(st.booleans(), label="anchored")
    seed = data.draw(st.integers(0, 1000), label="seed")
    spec = WalkForwardSpec(
        windows=WindowSpec(train=train, test=test, purge=purge, anchored=anchored),
        search=SearchSpec(method="random", trials=4, seed=seed),
        executor="serial",
    )
    wf = walk_forward(strategy, bars, None, spec, BacktestSpec())
    first = wf.splits[0].test_start
    stepper = Stepper(strategy, wf.schedule, bars.symbols, history=bars.iloc(slice(0, first)))
    live = stepper.update_bars(bars.iloc(slice(first, wf.splits[-1].test_end)))
    np.testing.assert_array_equal(live, wf.backtest.target)
    # the same holds for the schedule as written to and read back from schedule.json
    payload = json.loads(json.dumps(schedule_payload(strategy.name, wf.schedule)))
    reloaded = load_schedule(payload, strategy.params_type)
    again = Stepper(strategy, reloaded, bars.symbols, history=bars.iloc(slice(0, first)))
    np.testing.assert_array_equal(
        again.update_bars(bars.iloc(slice(first, bars.n_bars))), wf.backtest.target
    )
