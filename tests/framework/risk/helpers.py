"""Builders shared by the risk tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from framework.risk import RiskSpec
from framework.types import Bars

BIG_VOLUME = 1e12


def ohlc_bars(open_, high=None, low=None, close=None, freq="D", start="2024-01-01") -> Bars:
    """Bars from explicit open/high/low/close (1-D: one asset); missing parts copy the open."""
    o = _two_d(open_)
    c = o.copy() if close is None else _two_d(close)
    h = np.fmax(o, c) if high is None else _two_d(high)
    lo = np.fmin(o, c) if low is None else _two_d(low)
    n, m = o.shape
    return Bars(
        index=pd.date_range(start, periods=n, freq=freq, tz="UTC"),
        symbols=tuple(f"S{j}" for j in range(m)),
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=np.full((n, m), BIG_VOLUME),
    )


def run(bars, target, cash=1000.0, costs=None, regime=None, engine=None, **risk):
    """Simulate with no costs (unless given) and a RiskSpec with only the given rules."""
    spec = engine or EngineSpec(initial_cash=cash)
    return simulate(
        bars,
        np.asarray(target, dtype=float),
        spec,
        costs or CostSpec.none(),
        RiskSpec(**risk),
        regime,
    )


def rules(result) -> list[str]:
    return list(result.risk_events["rule"])


def _two_d(values) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr
