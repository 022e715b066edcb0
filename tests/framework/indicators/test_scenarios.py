"""Hand-checked scenario tables and known-bad calls that must raise clear errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import framework.indicators as fi
from framework.errors import ParameterError
from tests.framework.indicators.cases import random_bars

NAN = np.nan


@pytest.mark.parametrize(
    ("name", "result", "expected"),
    [
        ("drawdown", fi.drawdown([1.0, 2.0, 1.0, 3.0, 1.5]), [0.0, 0.0, -0.5, 0.0, -0.5]),
        ("drawdown peak <= 0", fi.drawdown([-1.0, 0.0, 2.0, 1.0]), [NAN, NAN, 0.0, -0.5]),
        (
            "percentile_rank",
            fi.percentile_rank([1.0, 3.0, 2.0, 2.0, 5.0], 3),
            [NAN, NAN, 2 / 3, 2 / 3, 1.0],
        ),
        ("range_rank", fi.range_rank([1.0, 3.0, 2.0, 2.0, 5.0], 3), [NAN, NAN, 0.5, 0.0, 1.0]),
        ("range_rank flat", fi.range_rank([2.0, 2.0, 2.0, 4.0], 3), [NAN, NAN, NAN, 1.0]),
        ("rolling_max", fi.rolling_max([1.0, 3.0, 2.0, 0.0, -1.0], 2), [NAN, 3.0, 3.0, 2.0, 0.0]),
        ("rolling_min", fi.rolling_min([1.0, 3.0, 2.0, 0.0, -1.0], 2), [NAN, 1.0, 2.0, 0.0, -1.0]),
        ("rsi rising", fi.rsi(np.arange(1.0, 8.0), 3), [NAN, NAN, NAN, 100.0, 100.0, 100.0, 100.0]),
        ("rsi falling", fi.rsi(np.arange(8.0, 1.0, -1.0), 3), [NAN] * 3 + [0.0] * 4),
        ("rsi flat", fi.rsi(np.full(5, 4.0), 2), [NAN, NAN, 0.0, 0.0, 0.0]),
        ("rsi wilder", fi.rsi([1.0, 2.0, 1.0, 2.0], 2), [NAN, NAN, 50.0, 75.0]),
        ("obv", fi.obv([1.0, 2.0, 2.0, 1.0], [10.0, 20.0, 30.0, 40.0]), [10.0, 30.0, 30.0, -10.0]),
        ("roc", fi.roc([100.0, 110.0, 99.0], 1), [NAN, 10.0, -10.0]),
        ("momentum", fi.momentum([100.0, 110.0, 99.0, 120.0], 2), [NAN, NAN, -1.0, 10.0]),
        ("wma", fi.wma([1.0, 2.0, 3.0, 4.0], 3), [NAN, NAN, 14 / 6, 20 / 6]),
        (
            "true_range gap",
            fi.true_range([10.0, 12.0, 9.0], [9.0, 11.5, 8.0], [9.5, 12.0, 8.5]),
            [NAN, 2.5, 4.0],
        ),
        (
            "williams_r at high and low",
            fi.williams_r([2.0, 3.0, 3.0], [1.0, 1.0, 1.0], [1.5, 3.0, 1.0], 2),
            [NAN, 0.0, -100.0],
        ),
        (
            "vwap",
            fi.vwap([3.0, 6.0, 9.0], [3.0, 6.0, 9.0], [3.0, 6.0, 9.0], [1.0, 3.0, 0.0], 2),
            [NAN, 5.25, 6.0],
        ),
        ("vwap no volume", fi.vwap([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [0.0, 0.0], 2), [NAN, NAN]),
        (
            "zscore",
            fi.rolling_zscore([1.0, 2.0, 3.0, 3.0, 3.0, 3.0], 3),
            [NAN, NAN, math.sqrt(1.5), 1 / math.sqrt(2), NAN, NAN],
        ),
        (
            "realized_volatility",
            fi.realized_volatility(np.exp([0.0, 0.01, 0.03, 0.06]), 3, 252.0),
            [NAN, NAN, NAN, 0.01 * math.sqrt(252.0)],
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_scenario_table(name, result, expected):
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-12, equal_nan=True)


def test_bollinger_percent_b_positions():
    x = np.array([1.0, 2.0, 3.0, 3.0, 3.0])
    bands = fi.bollinger_bands(x, 3, 1.0)
    std = np.std([1.0, 2.0, 3.0])
    np.testing.assert_allclose(bands.upper[2], 2.0 + std)
    np.testing.assert_allclose(bands.percent_b[2], (3.0 - (2.0 - std)) / (2 * std))
    assert bands.middle[4] == bands.upper[4] == bands.lower[4] == 3.0
    assert np.isnan(bands.percent_b[4])  # flat window: %B is 0/0


def test_macd_warm_up_matches_talib_convention():
    out = fi.macd(np.linspace(1.0, 2.0, 40), 3, 6, 4)
    for series in out:
        assert np.isnan(series[:8]).all() and np.isfinite(series[8:]).all()  # slow + signal - 2
    np.testing.assert_allclose(out.histogram, out.line - out.signal)


def test_parabolic_sar_flips_on_penetration():
    high = np.array([10.0, 11.0, 12.0, 13.0, 9.0, 8.0])
    low = np.array([9.0, 10.0, 11.0, 12.0, 7.0, 6.0])
    sar = fi.parabolic_sar(high, low)
    assert np.isnan(sar[0])
    assert (sar[1:4] < low[1:4]).all()  # long: the stop trails below the lows
    assert sar[4] == 13.0  # bar 4 pierces it: reverse to short at the extreme high
    assert sar[5] > high[5]


def test_pandas_inputs_are_accepted_and_shapes_kept():
    bars = random_bars(30)
    frame = pd.DataFrame({"a": bars["close"], "b": bars["close"] * 2})
    np.testing.assert_allclose(fi.sma(frame, 5)[:, 1], 2 * fi.sma(frame["a"], 5))
    assert fi.sma(bars["close"].reshape(-1, 1), 5).shape == (30, 1)
    assert fi.sma(np.array([]), 3).shape == (0,)


@pytest.mark.parametrize("window", [0, -1, 2.5, True, "5", None])
@pytest.mark.parametrize(
    "call",
    [
        lambda w: fi.wma(np.ones(9), w),
        lambda w: fi.rsi(np.ones(9), w),
        lambda w: fi.atr(np.ones(9), np.ones(9), np.ones(9), w),
        lambda w: fi.percentile_rank(np.ones(9), w),
        lambda w: fi.vwap(np.ones(9), np.ones(9), np.ones(9), np.ones(9), w),
        lambda w: fi.stochastic(np.ones(9), np.ones(9), np.ones(9), 5, w, 3),
    ],
    ids=["wma", "rsi", "atr", "percentile_rank", "vwap", "stochastic"],
)
def test_bad_windows_name_the_value(call, window):
    with pytest.raises(ParameterError, match=repr(window).replace("(", r"\(")):
        call(window)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fi.rsi(np.ones(9), 1), "rsi window must be an integer >= 2; got 1"),
        (lambda: fi.macd(np.ones(9), 26, 12, 9), "fast < slow; got fast=26, slow=12"),
        (lambda: fi.macd(np.ones(9), 1, 12, 9), "macd fast must be an integer >= 2; got 1"),
        (lambda: fi.parabolic_sar(np.ones(3), np.ones(3), 0.3, 0.2), r"acceleration \(0.3\)"),
        (lambda: fi.parabolic_sar(np.ones(3), np.ones(3), -0.02), "got -0.02"),
        (lambda: fi.bollinger_bands(np.ones(9), 5, -2.0), "num_std must be a finite"),
        (lambda: fi.keltner_channels(*[np.ones(9)] * 3, multiplier=math.nan), "got nan"),
        (lambda: fi.realized_volatility(np.ones(9), 5, 0.0), "periods_per_year must be"),
        (lambda: fi.realized_volatility(np.ones(9), 1, 252.0, 1), "window must be an integer"),
        (lambda: fi.rolling_zscore(np.ones(9), 5, 2), "ddof must be 0 or 1; got 2"),
        (lambda: fi.atr(np.ones(9), np.ones(9), np.ones(8)), r"close=\(8,\)"),
        (lambda: fi.sma(np.ones((2, 2, 2)), 2), "has 3 dimensions"),
        (lambda: fi.sma(["a", "b"], 2), "must be numeric"),
    ],
)
def test_known_bad_calls_raise_clear_errors(call, message):
    with pytest.raises(ParameterError, match=message):
        call()


def test_a_leaky_indicator_is_caught_by_the_prefix_check():
    """The prefix check used in test_properties catches a centred (look-ahead) window."""
    x = random_bars(40)["close"]

    def centred_mean(values):
        return pd.Series(values).rolling(5, center=True).mean().to_numpy()

    full, prefix = centred_mean(x), centred_mean(x[:20])
    assert not np.array_equal(prefix, full[:20], equal_nan=True)
    assert np.array_equal(fi.sma(x[:20], 5), fi.sma(x, 5)[:20], equal_nan=True)
