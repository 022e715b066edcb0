"""DESIGN.md section 4 guarantees as hypothesis properties over every registered strategy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.lookahead import perturb_after
from framework.stepper import Stepper
from framework.strategy import compute_target, param_grid
from strategies import REGISTRY
from tests.barsgen import bars_strategy

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Learned strategies (with ``fit``) cannot decide without a fitted model, and these properties
# have none to give them: their guarantees are checked with a fitted model in
# tests/strategies/test_ml_classifier.py.
NAMES = sorted(n for n in REGISTRY if REGISTRY[n].fit is None)


def _params(name, data):
    grid = param_grid(REGISTRY[name].params_type)
    return grid[data.draw(st.integers(0, len(grid) - 1))]


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(bars=bars_strategy(), data=st.data())
def test_prefix_invariance(name, bars, data):
    strat, p = REGISTRY[name](), _params(name, data)
    full = compute_target(strat, bars, p)
    k = data.draw(st.integers(1, bars.n_bars))
    np.testing.assert_array_equal(compute_target(strat, bars.iloc(slice(0, k)), p), full[:k])


@pytest.mark.parametrize("name", NAMES)
@SETTINGS
@given(bars=bars_strategy(), data=st.data())
def test_future_blindness(name, bars, data):
    strat, p = REGISTRY[name](), _params(name, data)
    k = data.draw(st.integers(0, bars.n_bars - 1))
    before = compute_target(strat, bars, p)[: k + 1]
    after = compute_target(strat, perturb_after(bars, k, seed=k), p)[: k + 1]
    np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars=bars_strategy(max_n=220), data=st.data())
def test_live_stepper_equals_vectorized(name, bars, data):
    strat, p = REGISTRY[name](), _params(name, data)
    start = data.draw(st.integers(0, bars.n_bars - 1))
    stepper = Stepper(strat, p, bars.symbols, history=bars.iloc(slice(0, start)))
    live = stepper.update_bars(bars.iloc(slice(start, bars.n_bars)))
    np.testing.assert_array_equal(live, compute_target(strat, bars, p)[start:])


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bars=bars_strategy(max_n=200), data=st.data())
def test_restart_idempotence(name, bars, data):
    """Stop at a random bar, persist (JSON), restore from the stored bars, continue: no change."""
    strat, p = REGISTRY[name](), _params(name, data)
    stop = data.draw(st.integers(1, bars.n_bars - 1))
    uninterrupted = Stepper(strat, p, bars.symbols).update_bars(bars)
    first = Stepper(strat, p, bars.symbols)
    head = first.update_bars(bars.iloc(slice(0, stop)))
    saved = json.loads(json.dumps(first.snapshot()))
    resumed = Stepper.restore(strat, p, saved, bars)
    tail = resumed.update_bars(bars.iloc(slice(stop, bars.n_bars)))
    np.testing.assert_array_equal(np.vstack([head, tail]), uninterrupted)
