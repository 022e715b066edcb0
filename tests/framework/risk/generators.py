"""Hypothesis strategies for risk specs and bars with wide high/low ranges."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from framework.risk import RiskSpec
from framework.types import Bars
from tests.framework.engine.generators import market


@st.composite
def risk_market(draw, max_bars=25, max_assets=3, nan_free=False):
    """``(bars, target, regime)``: engine test bars with highs/lows beyond open and close (so
    stops trigger) on daily or hourly bars (so sessions hold one or several bars)."""
    bars, target = draw(
        market(
            max_bars=max_bars,
            max_assets=max_assets,
            nan_prices=not nan_free,
            nan_closes=not nan_free,
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n, m = bars.n_bars, bars.n_assets
    top = np.fmax(bars.open, bars.close) * (1.0 + rng.uniform(0, 0.06, (n, m)))
    bottom = np.fmin(bars.open, bars.close) * (1.0 - rng.uniform(0, 0.06, (n, m)))
    freq = draw(st.sampled_from(["D", "h"]))
    out = Bars(
        index=pd.date_range("2024-01-29 14:30", periods=n, freq=freq, tz="UTC"),
        symbols=bars.symbols,
        open=bars.open,
        high=top,
        low=bottom,
        close=bars.close,
        volume=bars.volume,
    )
    regime = rng.integers(0, 3, n)
    return out, target, regime


def _maybe(draw, values):
    return draw(st.sampled_from([None, *values]))


@st.composite
def risk_specs(draw, m=3):
    """Random combinations of the rules (each on or off)."""
    kwargs = {
        "sizing": draw(
            st.sampled_from(["none", "fixed_fraction", "volatility_target", "kelly", "atr_risk"])
        ),
        "sizing_fraction": draw(st.sampled_from([0.5, 1.0])),
        "volatility_window": draw(st.sampled_from([3, 10])),
        "kelly_min_trades": draw(st.sampled_from([1, 3])),
        "max_position": _maybe(draw, [0.3, 0.8]),
        "max_gross": _maybe(draw, [0.5, 1.2]),
        "max_net": _maybe(draw, [0.2, 0.6]),
        "max_positions": _maybe(draw, [1, 2]),
        "cash_buffer": draw(st.sampled_from([0.0, 0.15])),
        "max_group": _maybe(draw, [0.4]),
        "groups": {"S0": "a", "S1": "a"},
        "stop": draw(st.sampled_from(["none", "fixed", "trailing", "atr"])),
        "stop_pct": draw(st.sampled_from([0.02, 0.05])),
        "atr_multiplier": draw(st.sampled_from([0.5, 2.0])),
        "atr_window": 3,
        "take_profit": _maybe(draw, [0.03, 0.1]),
        "time_stop_bars": _maybe(draw, [2, 5]),
        "daily_loss_limit": _maybe(draw, [0.01, 0.05]),
        "daily_flatten": draw(st.booleans()),
        "max_drawdown": _maybe(draw, [0.05, 0.2]),
        "drawdown_action": draw(st.sampled_from(["reduce", "halt"])),
        "consecutive_losses": _maybe(draw, [2, 4]),
        "losses_action": draw(st.sampled_from(["reduce", "halt"])),
        "cooldown_bars": draw(st.sampled_from([0, 3])),
        "rebalance_trigger": draw(st.sampled_from(["none", "calendar", "drift", "combined"])),
        "rebalance_frequency": draw(st.sampled_from(["daily", "weekly", "monthly"])),
        "drift_threshold": draw(st.sampled_from([0.05, 0.3])),
        "min_trade_value": draw(st.sampled_from([0.0, 50.0])),
        "max_trades_per_rebalance": _maybe(draw, [1, 2]),
    }
    if draw(st.booleans()):
        kwargs["regime_overrides"] = {1: {"max_position": 0.2}, 2: {"cash_buffer": 0.3}}
    if kwargs["sizing"] == "kelly" and draw(st.booleans()):
        kwargs["kelly_win_rate"], kwargs["kelly_payoff"] = 0.6, 1.5
    return RiskSpec(**kwargs)
