"""Synthetic but valid OHLCV bars for tests (random walks with consistent high/low)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from framework.types import Bars


def make_bars(n: int = 300, m: int = 1, seed: int = 0, start: str = "2015-01-02",
              symbols: tuple[str, ...] | None = None, vol: float = 0.015) -> Bars:
    """Daily bars labelled at 21:00 UTC on business days, geometric random walks."""
    rng = np.random.default_rng(seed)
    index = pd.bdate_range(start, periods=n, tz="UTC") + pd.Timedelta(hours=21)
    rets = rng.normal(0.0003, vol, size=(n, m))
    close = 100.0 * np.exp(np.cumsum(rets, axis=0))
    open_ = close * np.exp(rng.normal(0.0, vol / 3, size=(n, m)))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol / 2, size=(n, m))))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol / 2, size=(n, m))))
    volume = rng.integers(100_000, 5_000_000, size=(n, m)).astype(np.float64)
    syms = symbols or tuple(f"S{j}" for j in range(m))
    return Bars(index=pd.DatetimeIndex(index), symbols=syms, open=open_, high=high, low=low,
                close=close, volume=volume)


@st.composite
def bars_strategy(draw, min_n: int = 80, max_n: int = 400, max_m: int = 3) -> Bars:
    """Hypothesis strategy: random-walk bars of random length, width and volatility."""
    n = draw(st.integers(min_n, max_n))
    m = draw(st.integers(1, max_m))
    seed = draw(st.integers(0, 2**31 - 1))
    vol = draw(st.sampled_from([0.005, 0.015, 0.04]))
    return make_bars(n=n, m=m, seed=seed, vol=vol)
