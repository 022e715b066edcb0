"""Volume indicators: on-balance volume, rolling VWAP, money flow index.

Every function accepts 1-D ``(bars,)`` or 2-D ``(bars, columns)`` arrays and returns the same
shape. Warm-up rows are NaN and follow TA-Lib's lookbacks where TA-Lib has the indicator. A row
where any input is NaN is NaN and restarts the warm-up (OBV restarts its running total), so the
rows after it equal the indicator on the series that begins after the NaN. Inputs shorter than the
warm-up give all-NaN output, never an exception.
"""

from __future__ import annotations

import numpy as np

from framework.indicators._common import as_matrices, check_window, restore
from framework.indicators._volume_nb import mfi_nb, obv_nb, vwap_nb


def obv(close: np.ndarray, volume: np.ndarray) -> np.ndarray:
    """On-balance volume (TA-Lib OBV).

    Starts at the first bar's volume, then adds the volume on an up close, subtracts it on a down
    close and keeps it on an unchanged close.

    Parameters
    ----------
    close, volume : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` arrays.

    Returns
    -------
    ndarray
        Same shape as ``close``; valid from row 0. Its level depends on the starting bar; use
        differences or slopes, not levels, to compare series.
    """
    (c, v), one_d = as_matrices("obv", close=close, volume=volume)
    return restore(obv_nb(c, v), one_d)


def vwap(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int = 20
) -> np.ndarray:
    """Rolling volume-weighted average of the typical price ``(high + low + close) / 3``.

    ``sum(tp * volume) / sum(volume)`` over the last ``window`` bars (no TA-Lib equivalent). This
    is a rolling VWAP; a session-anchored VWAP (reset at each open) is not provided here.

    Parameters
    ----------
    high, low, close, volume : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` arrays.
    window : int
        Number of bars (>= 1).

    Returns
    -------
    ndarray
        Same shape as ``close``; first valid at row ``window - 1``; NaN where the window's volume
        is 0.
    """
    window = check_window(window, "vwap")
    arrays, one_d = as_matrices("vwap", high=high, low=low, close=close, volume=volume)
    h, lo, c, v = arrays
    return restore(vwap_nb(h, lo, c, v, window), one_d)


def mfi(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int = 14
) -> np.ndarray:
    """Money flow index in [0, 100] (TA-Lib MFI).

    The typical price times volume is positive money flow when the typical price rose, negative
    when it fell, and none when it did not move (within 1e-14 relative, TA-Lib's dead-zone);
    ``mfi = 100 * positive / (positive + negative)`` over ``window`` bars, 0 when there is no flow.

    Parameters
    ----------
    high, low, close, volume : ndarray
        Same-shaped ``(bars,)`` or ``(bars, columns)`` arrays.
    window : int
        Number of bars (>= 2).

    Returns
    -------
    ndarray
        Same shape as ``close``; first valid at row ``window``.
    """
    window = check_window(window, "mfi", minimum=2)
    arrays, one_d = as_matrices("mfi", high=high, low=low, close=close, volume=volume)
    return restore(mfi_nb(*arrays, window), one_d)


__all__ = ["mfi", "obv", "vwap"]
