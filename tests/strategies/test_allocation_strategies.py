"""Scenario tables for the universe (weights-style) strategies: dual momentum and regime switch."""

from __future__ import annotations

import numpy as np
import pytest

from framework.strategy import compute_target
from strategies import REGISTRY
from strategies._rules import month_starts
from tests.strategies._bars import bars_from_close


def _grow(rates: np.ndarray) -> np.ndarray:
    """Closes from per-bar log returns ``rates`` of shape ``(bars, assets)``, starting at 100."""
    return 100.0 * np.exp(np.vstack([np.zeros((1, rates.shape[1])), np.cumsum(rates, axis=0)]))


def _weights(name, close, symbols=None, **params):
    strategy = REGISTRY[name]()
    bars = bars_from_close(close, symbols=symbols)
    return bars, compute_target(strategy, bars, strategy.params_type(**params))


DUAL = dict(lookback=5, skip=0)  # warm-up 5 + 23 = 28 bars


def test_dual_momentum_holds_the_top_sectors():
    rates = np.tile([0.003, 0.002, 0.001, -0.001], (80, 1))
    bars, weights = _weights("dual_momentum", _grow(rates), top_n=2, **DUAL)
    np.testing.assert_array_equal(weights[:28], 0.0)  # warm-up
    np.testing.assert_array_equal(weights[28:], np.tile([0.5, 0.5, 0.0, 0.0], (53, 1)))


def test_dual_momentum_absolute_filter_leaves_the_slot_in_cash():
    rates = np.tile([0.003, 0.002, 0.001, -0.001], (80, 1))
    _, weights = _weights("dual_momentum", _grow(rates), top_n=4, **DUAL)
    # the falling sector would take the fourth slot; its quarter stays in cash instead
    np.testing.assert_array_equal(weights[28:], np.tile([0.25, 0.25, 0.25, 0.0], (53, 1)))
    _, all_falling = _weights("dual_momentum", _grow(-np.abs(rates)), top_n=2, **DUAL)
    assert all_falling.sum() == 0.0


def test_dual_momentum_changes_only_at_month_starts():
    rates = np.tile([0.003, 0.002, 0.001, -0.001], (100, 1))
    rates[50:, 3] = 0.01  # mid-March the laggard becomes the leader
    bars, weights = _weights("dual_momentum", _grow(rates), top_n=2, **DUAL)
    starts = np.flatnonzero(month_starts(bars.index))
    april = starts[starts > 51][0]
    np.testing.assert_array_equal(weights[28:april], np.tile([0.5, 0.5, 0.0, 0.0], (april - 28, 1)))
    np.testing.assert_array_equal(weights[april], [0.5, 0.0, 0.0, 0.5])


REGIME = dict(trend_window=5, vol_window=3, rank_window=5)  # warm-up max(5, 8) + 23 = 31


def _regime_close(crash_at: int, n: int = 100, spike: float | None = None) -> np.ndarray:
    """Risk asset: uptrend with alternating returns, a 10-bar crash from ``crash_at``, then a slow
    decline.
    Defensive assets grow steadily."""
    a = 0.004
    risk = np.tile([2 * a, -a], n // 2)
    risk[crash_at : crash_at + 10] = -0.05
    risk[crash_at + 10 :] = -0.002
    if spike is not None:
        risk[crash_at - 12] = spike  # a volatility spike inside the uptrend
    return _grow(np.column_stack([risk, np.full(n, 0.001), np.full(n, 0.0005)]))


RISK_ON, RISK_OFF = [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]


def test_regime_switch_daily_follows_the_trend():
    close = _regime_close(crash_at=50)
    _, weights = _weights("regime_switch", close, max_percentile=1.0, monthly=False, **REGIME)
    # close row r carries return r - 1: the crash starts on row 51
    np.testing.assert_array_equal(weights[31:51], np.tile(RISK_ON, (20, 1)))
    np.testing.assert_array_equal(weights[51:], np.tile(RISK_OFF, (50, 1)))


def test_regime_switch_monthly_waits_for_the_month_start():
    close = _regime_close(crash_at=50)
    bars, weights = _weights("regime_switch", close, max_percentile=1.0, monthly=True, **REGIME)
    starts = np.flatnonzero(month_starts(bars.index))
    next_start = starts[starts > 51][0]
    np.testing.assert_array_equal(weights[31:next_start], np.tile(RISK_ON, (next_start - 31, 1)))
    np.testing.assert_array_equal(weights[next_start:], np.tile(RISK_OFF, (101 - next_start, 1)))


@pytest.mark.parametrize(("max_percentile", "expected"), [(0.8, RISK_OFF), (1.0, RISK_ON)])
def test_regime_switch_volatility_spike_turns_risk_off(max_percentile, expected):
    # a +6 % day in the uptrend makes today's volatility the highest of the window (rank 1)
    close = _regime_close(crash_at=70, spike=0.06)
    _, weights = _weights("regime_switch", close, max_percentile=max_percentile, monthly=False,
                          **REGIME)
    np.testing.assert_array_equal(weights[59], expected)
    assert close[59, 0] > close[58, 0]  # still an uptrend bar


def test_regime_switch_single_symbol_goes_to_cash():
    close = _regime_close(crash_at=50)[:, :1]
    _, weights = _weights("regime_switch", close, max_percentile=1.0, monthly=False, **REGIME)
    np.testing.assert_array_equal(weights[31:51, 0], 1.0)
    np.testing.assert_array_equal(weights[51:, 0], 0.0)


def test_regime_switch_skips_defensive_assets_without_prices():
    close = _regime_close(crash_at=50)
    close[:, 2] = np.nan  # "GLD" has not started trading
    _, weights = _weights("regime_switch", close, max_percentile=1.0, monthly=False, **REGIME)
    np.testing.assert_array_equal(weights[60], [0.0, 1.0, 0.0])
