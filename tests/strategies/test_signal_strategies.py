"""Scenario tables: single-asset strategies enter and exit where their rules say.

Each scenario builds closes from segments (flat, zigzag, rises, drops) so the bar where a rule
must fire is known by construction; the comments say why it fires there.
"""

from __future__ import annotations

import numpy as np
import pytest

from framework.errors import ParameterError
from framework.strategy import compute_target
from strategies import REGISTRY
from tests.strategies._bars import bars_from_close, path

ZIGZAG_30 = [(1, 1.0), (1, -1.0)] * 15  # 30 bars oscillating 100/101: no trend, RSI ~50


def positions(name: str, close: np.ndarray, **params) -> np.ndarray:
    strategy = REGISTRY[name]()
    bars = bars_from_close(close, spread=0.5)
    return compute_target(strategy, bars, strategy.params_type(**params))[:, 0]


def expect(target: np.ndarray, table: list[tuple[int, int, float]]) -> None:
    """``table`` rows ``(first_bar, last_bar, position)``, inclusive."""
    for first, last, value in table:
        np.testing.assert_array_equal(target[first : last + 1], value,
                                      err_msg=f"bars {first}..{last} should be {value}")


# 40 flat bars (bars 0..40 at 100), rising bars 41..70, falling fast bars 71..100
RISE_FALL = path(100.0, (40, 0.0), (30, 1.0), (30, -3.0))


@pytest.mark.parametrize(("short", "when_falling"), [(False, 0.0), (True, -1.0)])
def test_ema_cross_follows_the_cross(short, when_falling):
    # fast=1 is the close itself; on a flat series fast == slow exactly (a tie: stay flat)
    target = positions("ema_cross", RISE_FALL, fast=1, slow=3, short=short)
    expect(target, [(0, 14, 0.0), (15, 40, 0.0), (41, 70, 1.0), (71, 100, when_falling)])


def test_macd_trend_long_while_histogram_positive():
    target = positions("macd_trend", RISE_FALL, fast=2, slow=4, signal=2)
    expect(target, [(0, 40, 0.0), (41, 70, 1.0), (71, 100, 0.0)])


def test_macd_threshold_keeps_only_accelerating_moves():
    # on a steady linear rise the histogram decays toward 0, so a threshold ends the trade early
    plain = positions("macd_trend", RISE_FALL, fast=2, slow=4, signal=2)
    strict = positions("macd_trend", RISE_FALL, fast=2, slow=4, signal=2, threshold=0.001)
    assert strict[41:71].sum() >= 1  # the start of the rise clears the threshold
    assert strict[41:71].sum() < plain[41:71].sum()
    assert strict[70] == 0.0 and plain[70] == 1.0
    assert np.all(strict <= plain)


RSI_PARAMS = dict(window=2, trend_window=2, low=10.0, high=90.0, trend_filter=False)
# zigzag to bar 100 (past the 60-bar warm-up), three drops of 4 (bars 101-103: RSI(2) < 10),
# then a slow climb that keeps RSI between 10 and 90, and from bar 110 strong rises (RSI > 90)
RSI_DIP = path(100.0, *[(1, 1.0), (1, -1.0)] * 50, (3, -4.0), (4, 0.5), (1, -0.5), (1, 0.5),
               (6, 3.0))


def test_rsi_reversion_enters_oversold_exits_overbought():
    target = positions("rsi_reversion", RSI_DIP, max_hold=20, **RSI_PARAMS)
    expect(target, [(0, 100, 0.0), (101, 109, 1.0), (110, 115, 0.0)])


def test_rsi_reversion_time_stop():
    # the last oversold bar is 103; with max_hold 5 the position ends after bar 107
    target = positions("rsi_reversion", RSI_DIP, max_hold=5, **RSI_PARAMS)
    expect(target, [(0, 100, 0.0), (101, 107, 1.0), (108, 115, 0.0)])


def test_rsi_reversion_trend_filter_blocks_dips_in_downtrends():
    # the dip takes the close below its 20-bar average: no entry with the filter on
    params = dict(RSI_PARAMS, trend_window=20, max_hold=20)
    filtered = positions("rsi_reversion", RSI_DIP, **dict(params, trend_filter=True))
    unfiltered = positions("rsi_reversion", RSI_DIP, **params)
    assert unfiltered[101] == 1.0
    assert filtered.sum() == 0.0


def test_bollinger_reversion_buys_below_lower_exits_at_middle():
    # bar 31 drops 8 below a +-1 zigzag: below the lower band; the climb regains the middle
    # band at bar 38 (close 95 >= middle 94.9)
    close = path(100.0, *ZIGZAG_30, (1, -8.0), (2, 0.0), (3, 1.0), (4, 0.0))
    target = positions("bollinger_reversion", close, window=10, num_std=2.0, max_hold=10)
    expect(target, [(0, 30, 0.0), (31, 37, 1.0), (38, 40, 0.0)])


def test_bollinger_reversion_time_stop():
    close = path(100.0, *ZIGZAG_30, (1, -8.0), (12, 0.0))
    target = positions("bollinger_reversion", close, window=10, num_std=2.0, max_hold=3)
    expect(target, [(0, 30, 0.0), (31, 33, 1.0), (34, 43, 0.0)])


ZIGZAG_20 = [(1, 1.0), (1, -1.0)] * 10


def test_donchian_breakout_enters_on_new_high_and_expires():
    # highs are close + 0.5: the zigzag tops at 101.5; bar 22 closes at 102 (a breakout), bar
    # 23 at 103 (another); flat closes at 103 are not above the 103.5 high, so the last breakout
    # is bar 23 and max_hold 10 ends the trade after bar 32
    close = path(100.0, *ZIGZAG_20, (3, 1.0), (14, 0.0), (1, -5.0), (3, 0.0))
    target = positions("donchian_breakout", close, entry=5, exit=3, max_hold=10)
    expect(target, [(0, 21, 0.0), (22, 32, 1.0), (33, 41, 0.0)])


def test_donchian_breakout_exits_on_channel_low():
    # bar 29 closes at 98, below the lowest low of the previous 3 bars (102.5)
    close = path(100.0, *ZIGZAG_20, (3, 1.0), (5, 0.0), (1, -5.0), (3, 0.0))
    target = positions("donchian_breakout", close, entry=5, exit=3, max_hold=10)
    expect(target, [(0, 21, 0.0), (22, 28, 1.0), (29, 32, 0.0)])


def test_vol_target_trend_sizes_by_realized_volatility():
    # log returns alternate +2a and -a: an uptrend with constant realized volatility
    a = 0.01
    rets = np.tile([2 * a, -a], 30)
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rets)]))
    target = positions("vol_target_trend", close, trend_window=5, vol_window=6, target_vol=0.15,
                       step=0.0)
    vol = np.sqrt(252.0) * np.std(rets[:6], ddof=1)
    expected = min(1.0, 0.15 / vol)
    assert 0.0 < expected < 1.0
    # the 5-bar trend gains 0.01 per two bars, so the close stays above its average
    np.testing.assert_allclose(target[7:], expected, rtol=1e-12)
    np.testing.assert_array_equal(target[:7], 0.0)  # warm-up


def test_vol_target_trend_caps_and_rounds():
    a = 0.0005  # very calm: target / vol > 1, capped at max_weight
    rets = np.tile([2 * a, -a], 20)
    close = 100.0 * np.exp(np.concatenate([[0.0], np.cumsum(rets)]))
    capped = positions("vol_target_trend", close, trend_window=5, vol_window=6, max_weight=0.55)
    assert capped[7] == pytest.approx(0.5)  # 0.55 rounded down to the 0.1 step
    unrounded = positions("vol_target_trend", close, trend_window=5, vol_window=6,
                          max_weight=0.55, step=0.0)
    assert unrounded[7] == pytest.approx(0.55)


def test_vol_target_trend_flat_in_downtrend():
    close = path(200.0, (80, -1.0))
    assert positions("vol_target_trend", close, trend_window=5, vol_window=6).sum() == 0.0


@pytest.mark.parametrize(
    ("name", "params", "words"),
    [
        ("ema_cross", dict(fast=50, slow=50), "fast < slow"),
        ("macd_trend", dict(fast=30, slow=26), "fast < slow"),
        ("rsi_reversion", dict(low=70.0, high=30.0), "low < high"),
        ("donchian_breakout", dict(entry=20, exit=20), "exit < entry"),
        ("dual_momentum", dict(lookback=21, skip=21), "skip < lookback"),
        ("bollinger_reversion", dict(max_hold=0), "minimum"),
        ("vol_target_trend", dict(max_weight=2.0), "maximum"),
        ("regime_switch", dict(max_percentile=1.5), "maximum"),
    ],
)
def test_bad_parameters_are_rejected_with_the_value(name, params, words):
    with pytest.raises(ParameterError, match=words):
        REGISTRY[name].params_type(**params)
