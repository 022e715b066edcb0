"""Invariants every indicator must satisfy: causality, NaN restarts, warm-up, 1-D/2-D agreement."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.indicators import drawdown
from tests.framework.indicators.cases import (
    CASE_IDS,
    CASES,
    Case,
    bars_strategy,
    random_bars,
    sliced,
)

RESTARTING = [case for case in CASES if case.name != "drawdown"]


def assert_outputs_equal(left, right, name: str) -> None:
    assert len(left) == len(right), name
    for a, b in zip(left, right, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(bars=bars_strategy(min_size=2), data=st.data())
def test_prefix_invariance(bars, data):
    """For every indicator, the result on bars[:k] is the first k rows of the full result."""
    n = len(bars["close"])
    k = data.draw(st.integers(1, n), label="k")
    for case in CASES:
        full = case.run(bars)
        prefix = case.run(sliced(bars, slice(0, k)))
        assert_outputs_equal(prefix, tuple(out[:k] for out in full), case.name)


@settings(max_examples=60, deadline=None)
@given(bars=bars_strategy(min_size=3), data=st.data())
def test_nan_restarts_the_warm_up(bars, data):
    """A NaN in any input gives NaN there; afterwards each indicator starts afresh."""
    n = len(bars["close"])
    k = data.draw(st.integers(0, n - 1), label="row")
    for case in RESTARTING:
        field = data.draw(st.sampled_from(case.inputs), label=f"{case.name} field")
        holed = {key: value.copy() for key, value in bars.items()}
        holed[field][k] = np.nan
        tails = case.run(sliced(bars, slice(k + 1, n)))
        for clean, holed_out, tail in zip(case.run(bars), case.run(holed), tails, strict=True):
            np.testing.assert_array_equal(holed_out[:k], clean[:k], err_msg=case.name)
            assert np.isnan(holed_out[k]), case.name
            np.testing.assert_array_equal(holed_out[k + 1 :], tail, err_msg=case.name)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_warm_up_length_and_short_inputs(case: Case):
    """Rows before the lookback are NaN, the lookback row is not; short inputs are all NaN."""
    bars = random_bars(40, seed=3)
    outputs = case.run(bars)
    lookbacks = case.lookbacks(len(outputs))
    for out, lookback in zip(outputs, lookbacks, strict=True):
        assert np.isnan(out[:lookback]).all()
        assert np.isfinite(out[lookback])
    for n in range(min(lookbacks) + 1):
        for out in case.run(sliced(bars, slice(0, n))):
            assert out.shape == (n,)
            assert np.isnan(out).all()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_two_dimensional_input_is_column_wise(case: Case):
    """A (bars, columns) input gives, column by column, the 1-D results (NaNs included)."""
    columns = [random_bars(50, seed=seed) for seed in range(3)]
    columns[1]["close"][10] = np.nan
    columns[2]["high"][:7] = np.nan
    stacked = {key: np.column_stack([col[key] for col in columns]) for key in columns[0]}
    wide = case.run(stacked)
    for j, col in enumerate(columns):
        narrow = case.run(col)
        for w_out, n_out in zip(wide, narrow, strict=True):
            assert w_out.shape == (50, 3)
            np.testing.assert_array_equal(w_out[:, j], n_out)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_future_values_never_change_the_past(case: Case):
    """Replacing every bar after row i (here by wild values) leaves rows <= i untouched."""
    bars = random_bars(60, seed=5)
    other = {key: value.copy() for key, value in bars.items()}
    for key in ("open", "high", "low", "close"):
        other[key][31:] = other[key][31:] * 3.0
    other["volume"][31:] = 7.0
    for before, after in zip(case.run(bars), case.run(other), strict=True):
        np.testing.assert_array_equal(before[:31], after[:31])
        assert not np.array_equal(before[31:], after[31:], equal_nan=True)


def test_drawdown_peak_carries_over_a_gap():
    x = np.array([1.0, 2.0, np.nan, 1.0, 3.0, 1.5])
    np.testing.assert_allclose(drawdown(x), [0.0, 0.0, np.nan, -0.5, 0.0, -0.5], equal_nan=True)
