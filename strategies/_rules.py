"""Rule helpers shared by the strategy modules (plain NumPy, no loops over bars).

Why these exist: fw's warm-up check requires that, after ``warmup(p)`` bars, a strategy's targets
do not depend on how much earlier history was loaded. A plain entry/exit latch remembers its last
signal forever, so a position could hinge on a signal from before the loaded history began. The
helpers here bound every rule's memory so a finite warm-up covers it:

* :func:`hold_with_time_stop` is a latch whose entries expire after ``max_hold`` bars;
* :func:`month_starts` and :func:`hold_from_rebalance` hold weights chosen on the first bar of
  each month, so the weights at any bar depend only on the last month start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.errors import ParameterError


def _last_true_index(flags: np.ndarray) -> np.ndarray:
    """Per row, the index of the latest row ``<=`` it where ``flags`` is true (-1 if none)."""
    rows = np.arange(flags.shape[0]).reshape((-1,) + (1,) * (flags.ndim - 1))
    marked = np.where(flags, rows, -1)
    return np.maximum.accumulate(marked, axis=0)


def hold_with_time_stop(entries: np.ndarray, exits: np.ndarray, max_hold: int) -> np.ndarray:
    """Long (1.0) from an entry until an exit or until ``max_hold`` bars after the last entry.

    Parameters
    ----------
    entries, exits : ndarray of bool
        Same-shaped ``(bars,)`` or ``(bars, columns)`` signals. A bar that is both an entry and an
        exit is flat (the exit wins, as in :func:`framework.indicators.latch`). An entry while
        already long restarts the clock.
    max_hold : int
        Bars a position is held after its latest entry (>= 1): an entry at bar ``j`` keeps the
        position on bars ``j .. j + max_hold - 1`` unless an exit comes first.

    Returns
    -------
    ndarray of float64
        1.0 while long, 0.0 otherwise, same shape as ``entries``. The value at bar ``i`` depends
        only on bars ``i - max_hold + 1 .. i``.
    """
    if isinstance(max_hold, bool) or not isinstance(max_hold, int | np.integer) or max_hold < 1:
        raise ParameterError(
            f"max_hold must be a positive integer number of bars; got {max_hold!r}."
        )
    entries = np.asarray(entries, dtype=np.bool_)
    exits = np.asarray(exits, dtype=np.bool_)
    if entries.shape != exits.shape:
        raise ParameterError(
            f"entries have shape {entries.shape} but exits have {exits.shape}; pass one signal "
            "per bar and column for both."
        )
    last_entry = _last_true_index(entries)
    last_exit = _last_true_index(exits)
    rows = np.arange(entries.shape[0]).reshape((-1,) + (1,) * (entries.ndim - 1))
    long = (last_entry >= 0) & (last_entry > last_exit) & (rows - last_entry < max_hold)
    return long.astype(np.float64)


def month_starts(index: pd.DatetimeIndex) -> np.ndarray:
    """True on the first bar of each calendar month (never on the first bar of the data).

    The first loaded bar is not a rebalance because nothing says it opens a month; treating it
    as one would make the weights depend on where the loaded history starts.
    """
    month = np.asarray(index.year * 12 + index.month)
    flags = np.zeros(len(month), dtype=np.bool_)
    flags[1:] = np.diff(month) != 0
    return flags


def hold_from_rebalance(weights: np.ndarray, rebalance: np.ndarray) -> np.ndarray:
    """Weights chosen on rebalance rows, held until the next rebalance (0 before the first).

    Parameters
    ----------
    weights : ndarray
        ``(bars, columns)`` candidate weights; only rows where ``rebalance`` is true are used.
    rebalance : ndarray of bool
        ``(bars,)`` rebalance flags.
    """
    weights = np.asarray(weights, dtype=np.float64)
    last = _last_true_index(np.asarray(rebalance, dtype=np.bool_))
    out = weights[np.maximum(last, 0)]
    out[last < 0] = 0.0
    return out
