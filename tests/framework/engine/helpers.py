"""Small builders shared by the engine tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from framework.costs import CostSpec
from framework.types import Bars

BIG_VOLUME = 1e12  # so the participation cap never binds unless a test wants it


def make_bars(open_, close=None, volume=None, symbols=None, start="2024-01-01") -> Bars:
    """Bars from open (and optionally close/volume) arrays; 1-D inputs mean one asset."""
    open_arr = _two_d(open_)
    close_arr = open_arr.copy() if close is None else _two_d(close)
    n, m = open_arr.shape
    volume_arr = np.full((n, m), BIG_VOLUME) if volume is None else _two_d(volume)
    names = tuple(symbols) if symbols is not None else tuple(f"S{j}" for j in range(m))
    return Bars(
        index=pd.date_range(start, periods=n, freq="D", tz="UTC"),
        symbols=names,
        open=open_arr,
        high=np.fmax(open_arr, close_arr),
        low=np.fmin(open_arr, close_arr),
        close=close_arr,
        volume=volume_arr,
    )


def _two_d(values) -> np.ndarray:
    arr = np.array(values, dtype=np.float64)
    return arr.reshape(-1, 1) if arr.ndim == 1 else arr


def no_costs(**overrides) -> CostSpec:
    """CostSpec.none() with some fields switched on."""
    return CostSpec.none().with_overrides(overrides)
