"""The rule classifier: hand-made scenarios, decision order, causality, VIX handling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import DataError
from framework.lookahead import perturb_after
from framework.regime import (
    BEAR,
    BULL,
    CHOPPY,
    VOLATILE,
    RegimeSpec,
    align_vix,
    classify,
    regime_labels,
)
from framework.regime.rules import raw_labels, regime_inputs
from tests.barsgen import bars_strategy, make_bars
from tests.framework.regime.helpers import (
    after,
    bars_from_close,
    mean_reverting,
    uptrend,
    with_range,
)

# Short windows so generated series of a few hundred bars leave warm-up early.
SMALL = RegimeSpec(
    trend_window=20,
    adx_window=5,
    atr_window=5,
    percentile_window=30,
    realized_volatility_window=5,
    min_duration=3,
)


def share(labels: np.ndarray, *codes: int) -> float:
    valid = labels[labels >= 0]
    return float(np.isin(valid, codes).mean())


def test_steady_uptrend_is_bull():
    found = classify(*with_range(uptrend()))
    assert (found.labels[300:] == BULL).all()
    assert (found.labels[:199] == -1).all()  # the 200-bar average is not ready yet


def test_crash_with_wide_ranges_is_volatile_or_bear():
    close = after(uptrend()[:450], drift=-0.01, noise=0.01, n=80)
    range_pct = np.r_[np.full(450, 0.01), np.full(80, 0.04)]  # ranges widen in the crash
    found = classify(*with_range(close, range_pct))
    assert share(found.labels[-40:], BEAR, VOLATILE) == 1.0
    assert (found.labels[300:440] == BULL).all()


def test_slow_grind_down_is_bear():
    close = after(uptrend()[:450], drift=-0.002, noise=0.003, n=150)
    found = classify(*with_range(close))
    assert (found.labels[-60:] == BEAR).all()


def test_flat_noisy_series_is_mostly_choppy():
    found = classify(*with_range(mean_reverting(), 0.015))
    assert share(found.labels[300:], CHOPPY) >= 0.6


@pytest.mark.parametrize(
    ("vix_after", "expected"),
    [
        (45.0, VOLATILE),  # above vix_level
        (22.0, VOLATILE),  # top of its year and above vix_floor
        (18.0, BULL),  # top of its year but below vix_floor: a calm-year spike
        (14.0, BULL),  # unchanged
    ],
)
def test_vix_terms(vix_after, expected):
    close = uptrend(900)
    vix = np.r_[np.full(850, 14.0), np.full(50, vix_after)]
    found = classify(*with_range(close), vix=vix)
    assert found.labels[-1] == expected
    assert found.vix_used[-1]
    # hysteresis: the switch needs min_duration bars of the new label
    assert found.labels[850 + RegimeSpec().min_duration - 2] == BULL


def _inputs(**values) -> dict[str, np.ndarray]:
    base = {
        "trend_ratio": 0.05,
        "adx": 25.0,
        "plus_di": 30.0,
        "minus_di": 10.0,
        "atr_percent": 0.01,
        "drawdown": -0.01,
        "vix": 15.0,
        "vix_percentile": 0.5,
        "realized_volatility": 0.1,
        "realized_volatility_percentile": 0.5,
    }
    base.update(values)
    return {k: np.array([v], dtype=np.float64) for k, v in base.items()}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, BULL),
        ({"adx": 10.0, "drawdown": -0.02}, BULL),  # quiet, near the peak
        ({"adx": 10.0, "drawdown": -0.08}, CHOPPY),  # no trend, off the peak
        ({"plus_di": 5.0, "drawdown": -0.08}, CHOPPY),  # strong trend, but downwards
        ({"trend_ratio": -0.05, "drawdown": -0.15}, BEAR),
        ({"trend_ratio": -0.05, "drawdown": -0.05}, CHOPPY),  # shallow dip below the average
        ({"trend_ratio": -0.05, "drawdown": -0.15, "atr_percent": 0.04}, VOLATILE),  # first rule
        ({"vix": 31.0}, VOLATILE),
        ({"vix": 21.0, "vix_percentile": 0.95}, VOLATILE),
        ({"vix": 19.0, "vix_percentile": 0.95}, BULL),
        (
            {
                "vix": np.nan,
                "vix_percentile": np.nan,
                "realized_volatility": 0.3,
                "realized_volatility_percentile": 0.95,
            },
            VOLATILE,
        ),  # stand-in
        ({"adx": np.nan}, -1),  # warm-up
    ],
)
def test_decision_order(values, expected):
    labels, _ = raw_labels(_inputs(**values), RegimeSpec(), has_vix=True)
    assert labels[0] == expected


def test_without_stand_in_the_vix_terms_are_skipped_or_warm_up():
    spec = RegimeSpec(use_realized_volatility=False)
    stressed = {
        "vix": np.nan,
        "vix_percentile": np.nan,
        "realized_volatility": 0.5,
        "realized_volatility_percentile": 1.0,
    }
    assert raw_labels(_inputs(**stressed), spec, has_vix=False)[0][0] == BULL
    assert raw_labels(_inputs(**stressed), spec, has_vix=True)[0][0] == -1
    assert raw_labels(_inputs(**stressed), RegimeSpec(), has_vix=False)[0][0] == VOLATILE
    # warm-up without VIX and without stand-in is shorter (no percentile window)
    close = uptrend()
    short = classify(*with_range(close), spec).labels
    long_ = classify(*with_range(close)).labels
    assert np.argmax(short >= 0) < np.argmax(long_ >= 0)


@settings(max_examples=25, deadline=None)
@given(bars=bars_strategy(min_n=60, max_n=250, max_m=2), data=st.data())
def test_prefix_invariance_and_future_blindness(bars, data):
    vix = 15 * bars.close[:, 0] / bars.close[0, 0]
    full = regime_labels(bars, SMALL, vix)
    k = data.draw(st.integers(1, bars.n_bars - 1))
    head = regime_labels(bars.iloc(slice(0, k)), SMALL, vix[:k])
    np.testing.assert_array_equal(head, full[:k])
    changed = perturb_after(bars, k - 1, seed=k)
    vix_changed = np.r_[vix[:k], vix[k:] * 3]
    np.testing.assert_array_equal(regime_labels(changed, SMALL, vix_changed)[:k], full[:k])
    assert set(np.unique(full)) <= {-1, 0, 1, 2, 3}


def test_regime_labels_shape_and_columns_match_classify():
    bars = make_bars(n=400, m=2, seed=3)
    out = regime_labels(bars, SMALL)
    assert out.shape == (400, 2) and out.dtype == np.int64
    for j in range(2):
        alone = classify(bars.high[:, j], bars.low[:, j], bars.close[:, j], SMALL).labels
        np.testing.assert_array_equal(out[:, j], alone)


def test_vix_bars_are_aligned_by_time_and_carried_forward():
    bars = bars_from_close(uptrend(400))
    vix_index = bars.index[5::2]  # every other bar, starting late
    series = pd.Series(np.arange(len(vix_index), dtype=float) + 10, index=vix_index)
    aligned = align_vix(series, bars.index)
    assert np.isnan(aligned[:5]).all()
    assert aligned[5] == 10 and aligned[6] == 10 and aligned[7] == 11
    vix_bars = bars_from_close(series.to_numpy(), symbol="VIX")
    vix_bars = type(vix_bars)(
        index=vix_index,
        symbols=("VIX",),
        open=vix_bars.open,
        high=vix_bars.high,
        low=vix_bars.low,
        close=vix_bars.close,
        volume=vix_bars.volume,
    )
    np.testing.assert_array_equal(align_vix(vix_bars, bars.index), aligned)
    np.testing.assert_array_equal(
        regime_labels(bars, SMALL, vix_bars), regime_labels(bars, SMALL, aligned)
    )


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: regime_labels(np.ones(10)), "takes Bars"),
        (lambda: classify(np.ones(5), np.ones(4), np.ones(5)), "'low' must be a 1-D"),
        (lambda: classify(np.ones(5), np.ones(5), np.ones(5), vix=np.ones(3)), "'vix'"),
        (lambda: align_vix(make_bars(n=5, m=2), make_bars(n=5).index), "one symbol"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(DataError, match=match):
        call()


def test_inputs_are_the_documented_columns():
    close = uptrend(300)
    inputs = regime_inputs(*with_range(close), RegimeSpec())
    assert inputs["trend_ratio"][250] == pytest.approx(close[250] / close[51:251].mean() - 1)
    assert inputs["drawdown"].max() <= 0
