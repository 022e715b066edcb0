"""Indicators TA-Lib lacks, against slow window-by-window numpy references.

The references recompute every window from scratch (two-pass mean/std, explicit max/min/counts),
so they share no running-sum or sliding-update logic with the kernels.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import framework.indicators as fi
from tests.framework.indicators.cases import bars_strategy


def windows(x: np.ndarray, window: int):
    """Yield ``(i, x[i - window + 1 : i + 1])`` for every full window."""
    for i in range(window - 1, len(x)):
        yield i, x[i - window + 1 : i + 1]


def zscore_reference(x, window, ddof):
    out = np.full(len(x), np.nan)
    for i, w in windows(x, window):
        if not np.all(w == w[0]):
            out[i] = (x[i] - w.mean()) / w.std(ddof=ddof)
    return out


def realized_vol_reference(x, window, periods_per_year, ddof):
    out = np.full(len(x), np.nan)
    returns = np.log(x[1:] / x[:-1])
    for i, w in windows(returns, window):
        out[i + 1] = w.std(ddof=ddof) * math.sqrt(periods_per_year)
    return out


def percentile_rank_reference(x, window):
    out = np.full(len(x), np.nan)
    for i, w in windows(x, window):
        out[i] = np.count_nonzero(w <= x[i]) / window
    return out


def range_rank_reference(x, window):
    out = np.full(len(x), np.nan)
    for i, w in windows(x, window):
        if w.max() > w.min():
            out[i] = (x[i] - w.min()) / (w.max() - w.min())
    return out


def drawdown_reference(x):
    peak = np.maximum.accumulate(x)
    return x / peak - 1.0


def vwap_reference(bars, window):
    typical = (bars["high"] + bars["low"] + bars["close"]) / 3.0
    out = np.full(len(typical), np.nan)
    for i, w in windows(np.arange(len(typical)), window):
        volume = bars["volume"][w].sum()
        if volume > 0:
            out[i] = (typical[w] * bars["volume"][w]).sum() / volume
    return out


def percent_b_reference(x, window, num_std):
    out = np.full(len(x), np.nan)
    for i, w in windows(x, window):
        width = 2.0 * num_std * w.std()
        if width > 0 and not np.all(w == w[0]):  # identical values: std exactly 0, %B undefined
            out[i] = (x[i] - (w.mean() - num_std * w.std())) / width
    return out


def assert_close(ours, reference, rtol=1e-9, atol=1e-12):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(reference))
    np.testing.assert_allclose(ours, reference, rtol=rtol, atol=atol, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(
    bars=bars_strategy(min_size=1, max_size=60),
    window=st.integers(2, 12),
    ddof=st.sampled_from([0, 1]),
)
def test_rolling_zscore_matches_reference(bars, window, ddof):
    x = bars["close"]
    assert_close(fi.rolling_zscore(x, window, ddof), zscore_reference(x, window, ddof), atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    bars=bars_strategy(min_size=1, max_size=60),
    window=st.integers(2, 12),
    ddof=st.sampled_from([0, 1]),
)
def test_realized_volatility_matches_reference(bars, window, ddof):
    x = bars["close"]
    ours = fi.realized_volatility(x, window, 252.0, ddof)
    assert_close(ours, realized_vol_reference(x, window, 252.0, ddof), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(bars=bars_strategy(min_size=1, max_size=60), window=st.integers(1, 12))
def test_ranks_and_drawdown_match_references(bars, window):
    x = bars["close"]
    np.testing.assert_array_equal(
        fi.percentile_rank(x, window), percentile_rank_reference(x, window)
    )
    assert_close(fi.range_rank(x, window), range_rank_reference(x, window))
    assert_close(fi.drawdown(x), drawdown_reference(x), atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(bars=bars_strategy(min_size=1, max_size=60), window=st.integers(1, 12))
def test_vwap_matches_reference(bars, window):
    assert_close(
        fi.vwap(bars["high"], bars["low"], bars["close"], bars["volume"], window),
        vwap_reference(bars, window),
    )


@settings(max_examples=60, deadline=None)
@given(bars=bars_strategy(min_size=1, max_size=60), window=st.integers(2, 12))
def test_bollinger_percent_b_matches_reference(bars, window):
    x = bars["close"]
    ours = fi.bollinger_bands(x, window, 2.0).percent_b
    assert_close(ours, percent_b_reference(x, window, 2.0), atol=1e-9)


@pytest.mark.realdata
def test_references_on_real_daily_bars(shared_data):
    spy = pd.read_csv(shared_data / "daily" / "SPY.csv.gz")
    vix = pd.read_csv(shared_data / "daily" / "VIX.csv.gz")["close"].to_numpy(dtype=np.float64)
    bars = {key: spy[key].to_numpy(dtype=np.float64) for key in ("high", "low", "close", "volume")}
    close = bars["close"]
    assert_close(fi.rolling_zscore(close, 20, 1), zscore_reference(close, 20, 1))
    assert_close(fi.realized_volatility(close, 21), realized_vol_reference(close, 21, 252.0, 1))
    # %B is a difference over the band width: the SMA's running-sum rounding (as in TA-Lib, ~1e-11
    # here) shows near %B = 0, so it is compared on its own 0..1 scale
    percent_b = fi.bollinger_bands(close, 20).percent_b
    assert_close(percent_b, percent_b_reference(close, 20, 2.0), atol=1e-9)
    assert_close(
        fi.vwap(bars["high"], bars["low"], close, bars["volume"], 20), vwap_reference(bars, 20)
    )
    assert_close(fi.drawdown(close), drawdown_reference(close))
    # IV-rank style use: where is today's VIX within its last year?
    np.testing.assert_array_equal(fi.percentile_rank(vix, 252), percentile_rank_reference(vix, 252))
    assert_close(fi.range_rank(vix, 252), range_rank_reference(vix, 252))
    # known facts of the data: SPY's 2020 crash bottomed about 34% below the February peak
    dates = spy["date"].to_numpy()
    crash = fi.drawdown(close)[(dates >= "2020-02-19") & (dates <= "2020-03-23")]
    assert -0.35 < crash.min() < -0.33
