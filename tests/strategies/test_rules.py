"""The shared rule helpers against slow loop references, plus exact scenarios."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ParameterError
from strategies._rules import hold_from_rebalance, hold_with_time_stop, month_starts


def _reference_hold(entries, exits, max_hold):
    """Bar-by-bar state machine: the obvious way to write the rule."""
    out = np.zeros(len(entries))
    held = 0
    for i in range(len(entries)):
        if entries[i]:
            held = max_hold
        if exits[i]:
            held = 0
        out[i] = 1.0 if held > 0 else 0.0
        held = max(held - 1, 0)
    return out


@settings(max_examples=200, deadline=None)
@given(
    signals=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60),
    max_hold=st.integers(1, 12),
)
def test_hold_with_time_stop_matches_reference(signals, max_hold):
    entries = np.array([s[0] for s in signals])
    exits = np.array([s[1] for s in signals])
    np.testing.assert_array_equal(hold_with_time_stop(entries, exits, max_hold),
                                  _reference_hold(entries, exits, max_hold))


@settings(max_examples=100, deadline=None)
@given(
    signals=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=60),
    max_hold=st.integers(1, 8),
    drop=st.integers(1, 30),
)
def test_hold_with_time_stop_memory_is_bounded(signals, max_hold, drop):
    """Dropping early bars changes nothing from ``max_hold - 1`` bars after the cut on."""
    entries = np.array([s[0] for s in signals])
    exits = np.array([s[1] for s in signals])
    drop = min(drop, len(signals) - 1)
    full = hold_with_time_stop(entries, exits, max_hold)
    late = hold_with_time_stop(entries[drop:], exits[drop:], max_hold)
    np.testing.assert_array_equal(full[drop + max_hold - 1 :], late[max_hold - 1 :])


# entry bars, exit bars, max_hold, expected positions
SCENARIOS = [
    ([1], [], 3, [0, 1, 1, 1, 0, 0]),            # time stop after 3 bars
    ([1], [2], 10, [0, 1, 0, 0, 0, 0]),          # exit first
    ([1, 3], [], 3, [0, 1, 1, 1, 1, 1]),         # a new entry restarts the clock
    ([2], [2], 5, [0, 0, 0, 0, 0, 0]),           # same-bar exit wins
    ([], [0, 3], 5, [0, 0, 0, 0, 0, 0]),         # exits alone do nothing
]


@pytest.mark.parametrize(("entry_bars", "exit_bars", "max_hold", "expected"), SCENARIOS)
def test_hold_with_time_stop_scenarios(entry_bars, exit_bars, max_hold, expected):
    entries, exits = np.zeros(6, bool), np.zeros(6, bool)
    entries[entry_bars] = True
    exits[exit_bars] = True
    np.testing.assert_array_equal(hold_with_time_stop(entries, exits, max_hold), expected)


def test_hold_with_time_stop_columns_are_independent():
    entries = np.array([[1, 0], [0, 1], [0, 0]], bool)
    exits = np.array([[0, 0], [0, 0], [1, 0]], bool)
    out = hold_with_time_stop(entries, exits, 5)
    np.testing.assert_array_equal(out, [[1, 0], [1, 1], [0, 1]])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_hold_with_time_stop_rejects_bad_max_hold(bad):
    with pytest.raises(ParameterError, match="max_hold"):
        hold_with_time_stop(np.zeros(3, bool), np.zeros(3, bool), bad)


def test_month_starts_and_hold_from_rebalance():
    index = pd.DatetimeIndex(["2020-01-30", "2020-01-31", "2020-02-03", "2020-02-04",
                              "2020-03-02", "2020-03-03"], tz="UTC")
    flags = month_starts(index)
    np.testing.assert_array_equal(flags, [False, False, True, False, True, False])
    weights = np.arange(12, dtype=float).reshape(6, 2)
    held = hold_from_rebalance(weights, flags)
    np.testing.assert_array_equal(held, [[0, 0], [0, 0], [4, 5], [4, 5], [8, 9], [8, 9]])
