"""SMA/EMA kernels against slow pandas references; signal helpers on hand tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ParameterError
from framework.indicators import cross_above, cross_below, ema, latch, sma

finite = st.floats(min_value=1.0, max_value=1e4, allow_nan=False)


def ema_reference(x: np.ndarray, window: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if len(x) < window:
        return out
    prev = float(np.mean(x[:window]))
    out[window - 1] = prev
    alpha = 2.0 / (window + 1)
    for i in range(window, len(x)):
        prev = prev + alpha * (x[i] - prev)
        out[i] = prev
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=120), st.integers(1, 30))
def test_sma_matches_pandas_rolling_mean(values, window):
    x = np.array(values)
    expected = pd.Series(x).rolling(window).mean().to_numpy()
    np.testing.assert_allclose(sma(x, window), expected, rtol=1e-9, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=120), st.integers(1, 30))
def test_ema_matches_reference(values, window):
    x = np.array(values)
    np.testing.assert_allclose(ema(x, window), ema_reference(x, window), rtol=1e-9, equal_nan=True)


@settings(max_examples=40, deadline=None)
@given(st.lists(finite, min_size=2, max_size=100), st.integers(1, 20), st.integers(1, 99))
def test_indicators_are_prefix_invariant(values, window, cut):
    x = np.array(values)
    cut = min(cut, len(x))
    for fn in (sma, ema):
        np.testing.assert_array_equal(fn(x[:cut], window), fn(x, window)[:cut])


def test_nan_restarts_the_window():
    x = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0])
    np.testing.assert_allclose(sma(x, 2), [np.nan, 1.5, np.nan, np.nan, 4.5, 5.5], equal_nan=True)


def test_two_dimensional_input_is_column_wise():
    x = np.column_stack([np.arange(1.0, 7.0), np.arange(10.0, 70.0, 10.0)])
    out = sma(x, 3)
    np.testing.assert_allclose(out[:, 1], 10 * out[:, 0], equal_nan=True)


@pytest.mark.parametrize("window", [0, -3, 2.5, True])
def test_bad_window_is_a_clear_error(window):
    with pytest.raises(ParameterError, match="window must be a positive integer"):
        sma(np.ones(5), window)


def test_crossings_and_latch_scenario():
    a = np.array([1.0, 2.0, 3.0, 2.0, 1.0, 2.5])
    b = np.array([2.0, 2.0, 2.0, 2.0, 2.0, 2.0])
    assert cross_above(a, b).tolist() == [False, False, True, False, False, True]
    assert cross_below(a, b).tolist() == [False, False, False, False, True, False]
    entries = np.array([0, 1, 0, 0, 1, 1], dtype=bool)
    exits = np.array([0, 0, 0, 1, 0, 1], dtype=bool)
    assert latch(entries, exits).tolist() == [0, 1, 1, 0, 1, 0]


def test_nan_never_crosses():
    a = np.array([np.nan, 3.0, 1.0])
    b = np.array([2.0, 2.0, 2.0])
    assert not cross_above(a, b).any()
