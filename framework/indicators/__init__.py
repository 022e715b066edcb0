"""Causal technical indicators (numba kernels with friendly wrappers).

Wrappers accept 1-D ``(n,)`` or 2-D ``(n, m)`` float arrays (one column per asset) and return the
same shape; multi-output indicators return a ``NamedTuple`` of such arrays. Warm-up rows are NaN,
following TA-Lib's conventions (lookbacks, Wilder smoothing, EMA seeds) wherever TA-Lib has the
indicator. A NaN input row gives NaN and restarts the warm-up (``drawdown`` excepted: its peak
carries over a gap). Too-short inputs give all-NaN output. Parameters are checked and a bad one
raises :class:`framework.errors.ParameterError` naming the value.

Modules: :mod:`.trend` (sma, ema, wma, macd, adx, parabolic_sar), :mod:`.momentum` (rsi,
stochastic, cci, williams_r, roc, momentum), :mod:`.volatility` (true_range, atr,
bollinger_bands, keltner_channels, donchian_channels, realized_volatility), :mod:`.volume` (obv,
vwap, mfi), :mod:`.statistics` (rolling_max, rolling_min, rolling_zscore, percentile_rank,
range_rank, drawdown) and :mod:`.signals` (cross_above, cross_below, latch).
"""

from __future__ import annotations

from framework.indicators.momentum import (
    Stochastic,
    cci,
    momentum,
    roc,
    rsi,
    stochastic,
    williams_r,
)
from framework.indicators.signals import cross_above, cross_below, latch
from framework.indicators.statistics import (
    drawdown,
    percentile_rank,
    range_rank,
    rolling_max,
    rolling_min,
    rolling_zscore,
)
from framework.indicators.trend import Adx, Macd, adx, ema, macd, parabolic_sar, sma, wma
from framework.indicators.volatility import (
    BollingerBands,
    Channels,
    atr,
    bollinger_bands,
    donchian_channels,
    keltner_channels,
    realized_volatility,
    true_range,
)
from framework.indicators.volume import mfi, obv, vwap

__all__ = [
    "Adx",
    "BollingerBands",
    "Channels",
    "Macd",
    "Stochastic",
    "adx",
    "atr",
    "bollinger_bands",
    "cci",
    "cross_above",
    "cross_below",
    "donchian_channels",
    "drawdown",
    "ema",
    "keltner_channels",
    "latch",
    "macd",
    "mfi",
    "momentum",
    "obv",
    "parabolic_sar",
    "percentile_rank",
    "range_rank",
    "realized_volatility",
    "roc",
    "rolling_max",
    "rolling_min",
    "rolling_zscore",
    "rsi",
    "sma",
    "stochastic",
    "true_range",
    "vwap",
    "williams_r",
    "wma",
]
