"""Deliberately leaky strategies: each must be caught by the look-ahead checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.indicators import sma
from framework.strategy import Params, Strategy, param


@dataclass(frozen=True)
class WindowParams(Params):
    window: int = param(10, stage="features", low=1)


class _Base(Strategy):
    params_type = WindowParams

    def warmup(self, p):
        return p.window

    def target(self, features, p):
        return (features["signal"] > 0).astype(float)


class NegativeShift(_Base):
    """Trades on tomorrow's return (close shifted backwards)."""

    name = "leaky_negative_shift"

    def features(self, bars, p):
        close = bars.close
        nxt = np.full_like(close, np.nan)
        nxt[:-1] = close[1:]
        return {"signal": nxt / close - 1.0}


class CentredWindow(_Base):
    """A moving average centred on the bar: half the window is in the future."""

    name = "leaky_centred_window"

    def features(self, bars, p):
        frame = pd.DataFrame(bars.close)
        centred = frame.rolling(p.window, center=True).mean().to_numpy()
        return {"signal": bars.close - centred}


class WholeSeriesZScore(_Base):
    """Normalises by the mean and std of the whole series, future included."""

    name = "leaky_whole_series_zscore"

    def features(self, bars, p):
        close = bars.close
        return {"signal": (close - close.mean(axis=0)) / close.std(axis=0)}


class Backfill(_Base):
    """Fills the warm-up NaNs of an average backwards, from the future."""

    name = "leaky_backfill"

    def warmup(self, p):
        return 0

    def features(self, bars, p):
        avg = pd.DataFrame(sma(bars.close, p.window)).bfill().to_numpy()
        return {"signal": bars.close - avg}


LEAKY = (NegativeShift, CentredWindow, WholeSeriesZScore, Backfill)
