"""Every indicator TA-Lib has must equal TA-Lib: on real daily bars and on generated edge cases.

TA-Lib (PyPI ``ta-lib``, a test-only dependency) runs with its defaults: unstable period 0 and
default compatibility, so EMA-seeded and Wilder-smoothed indicators start at the first bar exactly
as fw does and no extra rows need skipping. The NaN pattern must be identical (same warm-up) and
values equal to ``rtol=1e-9`` plus ``atol=1e-10 x`` the series' scale (for values that are 0 up to
a running sum's rounding residue, e.g. a stochastic window of zeros: 1e-13 vs 1e-14).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

import framework.indicators as fi
from tests.framework.indicators.cases import Bars, bars_strategy

talib = pytest.importorskip("talib")

Pair = tuple[Callable[[Bars], tuple], Callable[[Bars], tuple]]


def _hlc(b: Bars):
    return b["high"], b["low"], b["close"]


def _oracles(p: dict[str, int]) -> dict[str, Pair]:
    """fw call and TA-Lib call per indicator, both returning tuples of arrays."""
    w = p["window"]
    return {
        "sma": (lambda b: (fi.sma(b["close"], w),), lambda b: (talib.SMA(b["close"], w),)),
        "ema": (lambda b: (fi.ema(b["close"], w),), lambda b: (talib.EMA(b["close"], w),)),
        "wma": (lambda b: (fi.wma(b["close"], w),), lambda b: (talib.WMA(b["close"], w),)),
        "rsi": (lambda b: (fi.rsi(b["close"], w),), lambda b: (talib.RSI(b["close"], w),)),
        "macd": (
            lambda b: tuple(fi.macd(b["close"], p["fast"], p["slow"], p["signal"])),
            lambda b: talib.MACD(b["close"], p["fast"], p["slow"], p["signal"]),
        ),
        "bollinger": (
            lambda b: tuple(fi.bollinger_bands(b["close"], w, 2.0, 1.5))[:3],
            lambda b: talib.BBANDS(b["close"], w, 2.0, 1.5, 0),
        ),
        "roc": (lambda b: (fi.roc(b["close"], w),), lambda b: (talib.ROC(b["close"], w),)),
        "momentum": (
            lambda b: (fi.momentum(b["close"], w),),
            lambda b: (talib.MOM(b["close"], w),),
        ),
        "rolling_max": (
            lambda b: (fi.rolling_max(b["close"], w),),
            lambda b: (talib.MAX(b["close"], w),),
        ),
        "rolling_min": (
            lambda b: (fi.rolling_min(b["close"], w),),
            lambda b: (talib.MIN(b["close"], w),),
        ),
        **_bar_oracles(p),
    }


def _bar_oracles(p: dict[str, int]) -> dict[str, Pair]:
    """Indicators of high/low/close (and volume)."""
    w = p["window"]
    return {
        "true_range": (lambda b: (fi.true_range(*_hlc(b)),), lambda b: (talib.TRANGE(*_hlc(b)),)),
        "atr": (lambda b: (fi.atr(*_hlc(b), w),), lambda b: (talib.ATR(*_hlc(b), w),)),
        "adx": (
            lambda b: tuple(fi.adx(*_hlc(b), w)),
            lambda b: (
                talib.ADX(*_hlc(b), w),
                talib.PLUS_DI(*_hlc(b), w),
                talib.MINUS_DI(*_hlc(b), w),
            ),
        ),
        "stochastic": (
            lambda b: tuple(fi.stochastic(*_hlc(b), p["fast"], p["signal"], 3)),
            lambda b: talib.STOCH(*_hlc(b), p["fast"], p["signal"], 0, 3, 0),
        ),
        "stochastic_fast": (
            lambda b: tuple(fi.stochastic(*_hlc(b), w, 1, 3)),
            lambda b: talib.STOCHF(*_hlc(b), w, 3, 0),
        ),
        "cci": (lambda b: (fi.cci(*_hlc(b), w),), lambda b: (talib.CCI(*_hlc(b), w),)),
        "williams_r": (
            lambda b: (fi.williams_r(*_hlc(b), w),),
            lambda b: (talib.WILLR(*_hlc(b), w),),
        ),
        "mfi": (
            lambda b: (fi.mfi(*_hlc(b), b["volume"], w),),
            lambda b: (talib.MFI(*_hlc(b), b["volume"], w),),
        ),
        "obv": (
            lambda b: (fi.obv(b["close"], b["volume"]),),
            lambda b: (talib.OBV(b["close"], b["volume"]),),
        ),
        "sar": (
            lambda b: (fi.parabolic_sar(b["high"], b["low"], 0.02, 0.2),),
            lambda b: (talib.SAR(b["high"], b["low"], 0.02, 0.2),),
        ),
        "donchian": (
            lambda b: tuple(fi.donchian_channels(b["high"], b["low"], w))[::2],
            lambda b: (talib.MAX(b["high"], w), talib.MIN(b["low"], w)),
        ),
        "keltner": (  # no TA-Lib Keltner: its parts are TA-Lib's EMA and ATR
            lambda b: tuple(fi.keltner_channels(*_hlc(b), w, p["fast"], 2.0)),
            lambda b: _talib_keltner(b, w, p["fast"], 2.0),
        ),
    }


def _talib_keltner(b: Bars, window: int, atr_window: int, multiplier: float):
    middle = talib.EMA(b["close"], window)
    width = multiplier * talib.ATR(*_hlc(b), atr_window)
    middle = np.where(np.isnan(width), np.nan, middle)
    return middle + width, middle, middle - width


DEFAULTS = {"window": 14, "fast": 12, "slow": 26, "signal": 9}
OTHER = {"window": 5, "fast": 3, "slow": 10, "signal": 4}
NAMES = sorted(_oracles(DEFAULTS))


def assert_matches_talib(ours: tuple, ref: tuple, context: str) -> None:
    assert len(ours) == len(ref), context
    for k, (a, b) in enumerate(zip(ours, ref, strict=True)):
        b = np.asarray(b, dtype=np.float64)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{context}[{k}] NaNs")
        finite = ~np.isnan(b)
        scale = float(np.max(np.abs(b[finite]), initial=1.0))
        np.testing.assert_allclose(
            a[finite], b[finite], rtol=1e-9, atol=1e-10 * scale, err_msg=f"{context}[{k}]"
        )


@pytest.fixture(scope="module")
def real_bars(shared_data) -> dict[str, Bars]:
    out = {}
    for symbol in ("SPY", "AAPL"):
        frame = pd.read_csv(shared_data / "daily" / f"{symbol}.csv.gz")
        out[symbol] = {
            key: frame[key].to_numpy(dtype=np.float64)
            for key in ("open", "high", "low", "close", "volume")
        }
    return out


@pytest.mark.realdata
@pytest.mark.oracle
@pytest.mark.parametrize("params", [DEFAULTS, OTHER], ids=["defaults", "short"])
@pytest.mark.parametrize("name", NAMES)
def test_equals_talib_on_real_daily_bars(real_bars, name, params):
    ours, theirs = _oracles(params)[name]
    for symbol, bars in real_bars.items():
        assert len(bars["close"]) > 5000
        assert_matches_talib(ours(bars), theirs(bars), f"{name} {symbol}")


@pytest.mark.realdata
@pytest.mark.oracle
def test_leading_nans_are_skipped_like_talib(real_bars):
    """A series that starts late (leading NaNs) warms up from its first value, as in TA-Lib."""
    bars = {key: value[:400].copy() for key, value in real_bars["AAPL"].items()}
    for key in ("open", "high", "low", "close", "volume"):
        bars[key][:37] = np.nan
    for name, (ours, theirs) in _oracles(OTHER).items():
        assert_matches_talib(ours(bars), theirs(bars), name)


@pytest.mark.oracle
@settings(max_examples=60, deadline=None)
@given(bars=bars_strategy(min_size=1, max_size=70))
def test_equals_talib_on_generated_edge_cases(bars):
    """Flat stretches, ties, zero ranges and zero volume: the branchy cases of each indicator."""
    for name, (ours, theirs) in _oracles(OTHER).items():
        assert_matches_talib(ours(bars), theirs(bars), name)
