"""Helpers for signal-style strategy authors: crossings and latching signals into positions."""

from __future__ import annotations

import numpy as np

from framework.indicators._nb import latch_nb


def _as_2d(x: np.ndarray) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x)
    return (arr.reshape(-1, 1), True) if arr.ndim == 1 else (arr, False)


def cross_above(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True on the bar where ``a`` moves from ``<= b`` to ``> b`` (NaN never crosses)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    above = a > b
    prev = np.zeros_like(above)
    prev[1:] = above[:-1]
    valid_prev = np.zeros_like(above)
    valid_prev[1:] = ~(np.isnan(a[:-1]) | np.isnan(b[:-1]))
    return above & ~prev & valid_prev


def cross_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True on the bar where ``a`` moves from ``>= b`` to ``< b`` (NaN never crosses)."""
    return cross_above(-np.asarray(a, dtype=np.float64), -np.asarray(b, dtype=np.float64))


def latch(entries: np.ndarray, exits: np.ndarray, value: float = 1.0) -> np.ndarray:
    """Turn entry/exit signals into a held position: ``value`` after an entry, 0 after an exit.

    An exit on the same bar as an entry wins (flat). Shapes ``(n,)`` or ``(n, m)`` are kept.
    """
    e, one_d = _as_2d(np.asarray(entries, dtype=np.bool_))
    x, _ = _as_2d(np.asarray(exits, dtype=np.bool_))
    out = latch_nb(np.ascontiguousarray(e), np.ascontiguousarray(x), float(value))
    return out[:, 0] if one_d else out
