"""IV rank / IV percentile: numba kernels against slow references, invariants, VIX history."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from framework.data import load_bars
from framework.errors import DataError, ParameterError
from framework.options.ivrank import iv_percentile, iv_rank, vix_iv_history

# -- slow references: a direct reading of the definitions ------------------------------------


def slow_iv_rank(x: list[float], window: int, min_periods: int) -> list[float]:
    """(x - min) / (max - min) over the non-NaN values of rows i-window+1..i."""
    out = []
    for i, v in enumerate(x):
        seen = [u for u in x[max(0, i - window + 1) : i + 1] if not math.isnan(u)]
        if math.isnan(v) or len(seen) < min_periods or max(seen) == min(seen):
            out.append(math.nan)
        else:
            out.append((v - min(seen)) / (max(seen) - min(seen)))
    return out


def slow_iv_percentile(x: list[float], window: int, min_periods: int) -> list[float]:
    """Share of the other non-NaN days of the window with a value strictly below today's."""
    out = []
    for i, v in enumerate(x):
        others = [u for u in x[max(0, i - window + 1) : i] if not math.isnan(u)]
        if math.isnan(v) or len(others) + 1 < min_periods or not others:
            out.append(math.nan)
        else:
            out.append(sum(u < v for u in others) / len(others))
    return out


# Values on a coarse grid so ties (the hard case for "strictly below") are common.
iv_values = st.one_of(
    st.just(math.nan), st.integers(5, 40).map(lambda k: k / 100.0), st.floats(0.05, 1.5)
)
series = st.lists(iv_values, min_size=1, max_size=60)
windows = st.integers(1, 25)


def _min_periods(data, window: int) -> int:
    return data.draw(st.integers(1, window), label="min_periods")


@settings(max_examples=150, deadline=None)
@given(x=series, window=windows, data=st.data())
def test_iv_rank_matches_slow_reference(x, window, data):
    min_periods = _min_periods(data, window)
    got = iv_rank(np.array(x), window, min_periods)
    want = slow_iv_rank(x, window, min_periods)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(x=series, window=windows, data=st.data())
def test_iv_percentile_matches_slow_reference(x, window, data):
    min_periods = _min_periods(data, window)
    got = iv_percentile(np.array(x), window, min_periods)
    want = slow_iv_percentile(x, window, min_periods)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(x=series, window=windows, data=st.data())
def test_iv_rank_matches_pandas_rolling(x, window, data):
    """pandas' rolling min/max skip NaN the same way, so they give a second, independent oracle."""
    min_periods = _min_periods(data, window)
    s = pd.Series(x, dtype=float)
    roll = s.rolling(window, min_periods=min_periods)
    lo, hi = roll.min(), roll.max()
    want = ((s - lo) / (hi - lo)).where(hi > lo)
    np.testing.assert_allclose(iv_rank(s, window, min_periods).to_numpy(), want.to_numpy())


@settings(max_examples=100, deadline=None)
@given(x=series, window=windows, data=st.data())
def test_bounds_and_prefix_invariance(x, window, data):
    """Both measures lie in [0, 1], and bars[:k] gives the first k rows of the full result."""
    min_periods = _min_periods(data, window)
    arr = np.array(x)
    k = data.draw(st.integers(1, len(x)), label="k")
    for func in (iv_rank, iv_percentile):
        full = func(arr, window, min_periods)
        finite = full[~np.isnan(full)]
        assert ((finite >= 0.0) & (finite <= 1.0)).all(), func.__name__
        assert np.isnan(full[np.isnan(arr)]).all(), func.__name__
        np.testing.assert_array_equal(func(arr[:k], window, min_periods), full[:k])


@settings(max_examples=60, deadline=None)
@given(x=series, window=windows, scale=st.floats(0.1, 100.0), shift=st.floats(-0.04, 10.0))
def test_positive_affine_invariance(x, window, scale, shift):
    """Rank and percentile depend on ordering only: IV in points or decimals gives the same."""
    arr = np.array(x)
    moved = arr * scale + shift
    np.testing.assert_allclose(iv_rank(moved, window), iv_rank(arr, window), atol=1e-9)
    np.testing.assert_array_equal(iv_percentile(moved, window), iv_percentile(arr, window))


@settings(max_examples=40, deadline=None)
@given(
    panel=arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 5)), elements=iv_values),
    window=windows,
)
def test_2d_equals_column_by_column(panel, window):
    for func in (iv_rank, iv_percentile):
        whole = func(panel, window, 1)
        assert whole.shape == panel.shape
        for j in range(panel.shape[1]):
            np.testing.assert_array_equal(whole[:, j], func(panel[:, j], window, 1))


def test_constant_series_rank_nan_percentile_zero():
    flat = np.full(30, 0.2)
    assert np.isnan(iv_rank(flat, 10)).all()
    pct = iv_percentile(flat, 10)
    assert np.isnan(pct[:9]).all()
    np.testing.assert_array_equal(pct[9:], 0.0)


def test_known_values_and_warm_up():
    x = np.array([0.10, 0.20, 0.30, 0.15, 0.40, 0.40])
    rank = iv_rank(x, 3)
    np.testing.assert_allclose(rank, [np.nan, np.nan, 1.0, 0.0, 1.0, 1.0], equal_nan=True)
    pct = iv_percentile(x, 3)
    # Last row: window [0.15, 0.40, 0.40]; only 0.15 of the two other days is below 0.40.
    np.testing.assert_allclose(pct, [np.nan, np.nan, 1.0, 0.0, 1.0, 0.5], equal_nan=True)


def test_nan_is_skipped_not_restarting():
    x = np.array([0.1, 0.3, np.nan, 0.2, 0.25])
    rank = iv_rank(x, 4, min_periods=3)
    # Row 3: rows 0..3 hold 0.1, 0.3, 0.2 (3 values, enough); 0.2 in [0.1, 0.3] -> 0.5.
    # Row 4: rows 1..4 hold 0.3, 0.2, 0.25 (0.1 has left); 0.25 in [0.2, 0.3] -> 0.5.
    np.testing.assert_allclose(rank, [np.nan, np.nan, np.nan, 0.5, 0.5], equal_nan=True)
    assert np.isnan(iv_rank(x, 4)).all()  # min_periods = window = 4 is never met


def test_pandas_inputs_keep_labels():
    idx = pd.date_range("2024-01-01", periods=5, tz="UTC")
    s = pd.Series([0.1, 0.2, 0.3, 0.2, 0.1], index=idx, name="SPY")
    out = iv_rank(s, 3)
    assert isinstance(out, pd.Series) and out.index.equals(idx) and out.name == "SPY"
    frame = pd.DataFrame({"A": s, "B": s * 2})
    pct = iv_percentile(frame, 3)
    assert isinstance(pct, pd.DataFrame) and list(pct.columns) == ["A", "B"]
    np.testing.assert_array_equal(pct["A"], pct["B"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"window": 0}, "window must be a positive integer"),
        ({"window": 2.5}, "window must be a positive integer"),
        ({"window": True}, "window must be a positive integer"),
        ({"window": 5, "min_periods": 6}, "min_periods must be an integer from 1 to window=5"),
        ({"window": 5, "min_periods": 0}, "min_periods must be an integer from 1 to window=5"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    for func in (iv_rank, iv_percentile):
        with pytest.raises(ParameterError, match=match):
            func(np.ones(10), **kwargs)


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="infinite"):
        iv_rank(np.array([0.1, np.inf]), 2)
    with pytest.raises(ParameterError, match="3 dimensions"):
        iv_percentile(np.ones((2, 2, 2)), 2)
    with pytest.raises(DataError, match="must be > 0"):
        vix_iv_history(pd.Series([15.0, 0.0]))
    with pytest.raises(DataError, match="no 'close' column"):
        vix_iv_history(pd.DataFrame({"adj": [15.0]}))


# -- real VIX history ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vix_bars(shared_data):
    return load_bars(["VIX"], data_dir=shared_data / "daily")


def _on(series: pd.Series, day: str) -> float:
    hits = series[series.index.normalize() == pd.Timestamp(day, tz="UTC")]
    assert len(hits) == 1, day
    return float(hits.iloc[0])


@pytest.mark.realdata
def test_vix_iv_rank_history(vix_bars):
    iv = vix_iv_history(vix_bars)
    assert iv.name == "iv" and len(iv) == 9230  # README row count for daily/VIX
    assert _on(iv, "2020-03-16") == pytest.approx(0.8269)  # README: record close 82.69
    rank, pct = iv_rank(iv), iv_percentile(iv)
    assert np.isnan(rank.iloc[:251]).all() and not np.isnan(rank.iloc[251:]).any()
    # The record close tops its trailing year: rank and percentile are both exactly 1.
    assert _on(rank, "2020-03-16") == 1.0
    assert _on(pct, "2020-03-16") == 1.0
    # Mid-2017 was the calm low-VIX regime: VIX 11.18, near the bottom of its one-year range.
    assert _on(iv, "2017-06-30") == pytest.approx(0.1118)
    assert _on(rank, "2017-06-30") == pytest.approx(0.1121, abs=5e-4)
    assert _on(pct, "2017-06-30") == pytest.approx(0.2112, abs=5e-4)
    # Independent check of one value with plain pandas over the same 252 bars.
    window = iv[iv.index.normalize() <= pd.Timestamp("2017-06-30", tz="UTC")].iloc[-252:]
    expected = (window.iloc[-1] - window.min()) / (window.max() - window.min())
    assert _on(rank, "2017-06-30") == pytest.approx(expected, rel=1e-12)


@pytest.mark.realdata
def test_vix_iv_history_accepts_frames(vix_bars, shared_data):
    raw = pd.read_csv(shared_data / "daily" / "VIX.csv.gz", index_col="date")
    from_frame = vix_iv_history(raw)
    np.testing.assert_allclose(from_frame.to_numpy(), vix_iv_history(vix_bars).to_numpy())
    with pytest.raises(DataError, match="'SPY' is not in bars"):
        vix_iv_history(vix_bars, symbol="SPY")
