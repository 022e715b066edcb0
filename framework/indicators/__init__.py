"""Causal technical indicators (numba kernels with friendly wrappers).

Wrappers accept 1-D ``(n,)`` or 2-D ``(n, m)`` float arrays and return the same shape. Warm-up rows
are NaN, following TA-Lib's conventions.
"""

from __future__ import annotations

import numpy as np

from framework.errors import ParameterError
from framework.indicators._nb import ema_nb, sma_nb
from framework.indicators.signals import cross_above, cross_below, latch

__all__ = ["cross_above", "cross_below", "ema", "latch", "sma"]


def _prepare(x: np.ndarray, window: int, name: str) -> tuple[np.ndarray, bool]:
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ParameterError(f"{name} window must be a positive integer; got {window!r}.")
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        return np.ascontiguousarray(arr.reshape(-1, 1)), True
    if arr.ndim != 2:
        raise ParameterError(f"{name} takes a 1-D or 2-D array; got {arr.ndim} dimensions.")
    return np.ascontiguousarray(arr), False


def sma(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars (first ``window - 1`` rows NaN)."""
    arr, one_d = _prepare(x, window, "sma")
    out = sma_nb(arr, int(window))
    return out[:, 0] if one_d else out


def ema(x: np.ndarray, window: int) -> np.ndarray:
    """Exponential moving average, alpha = 2/(window+1), seeded by the first window's SMA."""
    arr, one_d = _prepare(x, window, "ema")
    out = ema_nb(arr, int(window))
    return out[:, 0] if one_d else out
