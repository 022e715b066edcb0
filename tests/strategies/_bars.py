"""Hand-made bars for strategy scenario tests: closes built from per-bar steps."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.types import Bars


def path(start: float, *segments: tuple[int, float]) -> np.ndarray:
    """Closes starting at ``start``; each ``(count, step)`` adds ``step`` on ``count`` bars."""
    steps = np.concatenate([np.full(count, step, dtype=np.float64) for count, step in segments])
    return start + np.concatenate([[0.0], np.cumsum(steps)])


def bars_from_close(close: np.ndarray, start: str = "2020-01-01", spread: float = 0.0,
                    symbols: tuple[str, ...] | None = None) -> Bars:
    """Bars whose open equals the previous close and high/low sit ``spread`` around the body."""
    close = np.asarray(close, dtype=np.float64)
    close2 = close.reshape(len(close), -1)
    n, m = close2.shape
    open_ = np.vstack([close2[:1], close2[:-1]])
    high = np.maximum(open_, close2) + spread
    low = np.minimum(open_, close2) - spread
    index = pd.bdate_range(start, periods=n, tz="UTC") + pd.Timedelta(hours=21)
    return Bars(index=pd.DatetimeIndex(index), symbols=symbols or tuple(f"S{j}" for j in range(m)),
                open=open_, high=high, low=low, close=close2, volume=np.full((n, m), 1e6))
