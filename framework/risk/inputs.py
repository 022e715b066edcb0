"""The arrays the kernel's risk rules read, built from a :class:`RiskSpec` and the bars."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.risk.spec import RiskSpec
from framework.types import Bars

# US equity sessions: a bar belongs to the New York calendar date of its close time
SESSION_TIMEZONE = "America/New_York"
_PERIOD_CODES = {"daily": "D", "weekly": "W", "monthly": "M", "quarterly": "Q"}


def session_ids(index: pd.DatetimeIndex) -> np.ndarray:
    """Session number per bar: consecutive bars on one New York date share a session."""
    dates = index.tz_convert(SESSION_TIMEZONE).normalize() if index.tz else index.normalize()
    values = dates.asi8
    starts = np.ones(len(values), np.int64)
    starts[1:] = values[1:] != values[:-1]
    return np.cumsum(starts) - 1


def period_starts(index: pd.DatetimeIndex, frequency: str) -> np.ndarray:
    """1.0 on the first bar of each calendar period (bar 0 included), else 0.0."""
    local = index.tz_convert(SESSION_TIMEZONE) if index.tz else index
    periods = local.tz_localize(None).to_period(_PERIOD_CODES[frequency]).asi8
    out = np.ones(len(periods))
    out[1:] = periods[1:] != periods[:-1]
    return out


def risk_inputs(bars: Bars, risk: RiskSpec, regime: np.ndarray | None = None) -> tuple:
    """``(table, regime_row, session, period_start, high, low, atr, groups)`` for the kernel
    (zero-row arrays where the layer is off, so nothing large is allocated)."""
    n, m = bars.n_bars, bars.n_assets
    table = risk.table()
    if not risk.enabled:
        empty = np.empty((0, m))
        return (
            table,
            np.zeros(n, np.int64),
            np.zeros(n, np.int64),
            np.zeros(n),
            empty,
            empty,
            empty,
            np.zeros(0, np.int64),
        )
    high = np.ascontiguousarray(bars.high, dtype=np.float64)
    low = np.ascontiguousarray(bars.low, dtype=np.float64)
    if risk.needs_atr:
        from framework.indicators import atr as atr_indicator

        atr = np.ascontiguousarray(
            atr_indicator(high, low, np.asarray(bars.close, np.float64), risk.atr_window)
        )
    else:
        atr = np.full((n, m), np.nan)
    groups = np.zeros(0, np.int64)
    if risk.groups:
        names = sorted(set(dict(risk.groups).values()))
        mapping = dict(risk.groups)
        groups = np.array(
            [names.index(mapping[s]) if s in mapping else -1 for s in bars.symbols], np.int64
        )
    return (
        table,
        risk.regime_rows(regime, n),
        session_ids(bars.index),
        period_starts(bars.index, risk.rebalance_frequency),
        high,
        low,
        atr,
        groups,
    )
