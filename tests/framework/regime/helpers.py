"""Hand-made price series and a slow hysteresis reference for the regime tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.types import Bars


def with_range(close: np.ndarray, range_pct: float = 0.01) -> tuple[np.ndarray, ...]:
    """High / low / close with a symmetric daily range of ``range_pct`` around the close."""
    return close * (1 + range_pct / 2), close * (1 - range_pct / 2), close


def uptrend(n: int = 600, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(0.001 + rng.normal(0, 0.004, n)))


def after(prefix: np.ndarray, drift: float, noise: float, n: int, seed: int = 2) -> np.ndarray:
    """``prefix`` continued by ``n`` bars of log-drift ``drift`` and noise ``noise``."""
    rng = np.random.default_rng(seed)
    tail = prefix[-1] * np.exp(np.cumsum(drift + rng.normal(0, noise, n)))
    return np.r_[prefix, tail]


def mean_reverting(n: int = 600, seed: int = 1, phi: float = 0.9, noise: float = 0.008):
    rng = np.random.default_rng(seed)
    x, e = np.zeros(n), rng.normal(0, noise, n)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return 100 * np.exp(x)


def bars_from_close(close: np.ndarray, range_pct: float = 0.01, symbol: str = "X") -> Bars:
    high, low, c = with_range(close, range_pct)
    index = pd.bdate_range("2000-01-03", periods=len(c), tz="UTC") + pd.Timedelta(hours=21)
    col = lambda a: np.ascontiguousarray(a, dtype=np.float64).reshape(-1, 1)  # noqa: E731
    return Bars(
        index=pd.DatetimeIndex(index),
        symbols=(symbol,),
        open=col(c),
        high=col(high),
        low=col(low),
        close=col(c),
        volume=col(np.full(len(c), 1e6)),
    )


def hold_reference(raw: list[int], min_duration: int) -> list[int]:
    """Slow hysteresis, stated declaratively: warm-up (-1) resets; the first valid label is adopted
    at once; afterwards the held label becomes ``raw[i]`` exactly when it differs from the held one
    and the last ``min_duration`` raw labels (bar ``i`` included) all equal it."""
    out, current = [], -1
    for i, r in enumerate(raw):
        window = raw[max(0, i - min_duration + 1) : i + 1]
        held_long_enough = len(window) == min_duration and all(v == r for v in window)
        if r < 0:
            current = -1
        elif current < 0 or (r != current and held_long_enough):
            current = r
        out.append(current)
    return out
