"""The causal rule classifier: BULL / BEAR / CHOPPY / VOLATILE per bar.

Inputs per bar (all from :mod:`framework.indicators`, all causal): the VIX close and its trailing
percentile rank, ADX with +DI / -DI, ATR as a fraction of the close, the close relative to its
``trend_window`` simple moving average, and the drawdown from the running peak.

Decision order on each bar (thresholds from :class:`~framework.regime.spec.RegimeSpec`):

1. VOLATILE when ``VIX >= vix_level``, or ``VIX percentile >= vix_percentile`` with
   ``VIX >= vix_floor``, or ``ATR / close >= atr_percent``. On bars without a usable VIX (none
   given, or before its history and percentile window) the annualized realized volatility and its
   percentile stand in when ``use_realized_volatility`` is true, else those terms are skipped.
2. BEAR when the close is below its average and the drawdown is at least ``bear_drawdown``.
3. BULL when the close is above its average and either ADX >= ``bull_adx`` with +DI > -DI, or the
   drawdown is shallower than ``bull_near_peak`` with the close at least ``bull_margin`` above the
   average (a quiet grind to new highs rather than a flat range).
4. CHOPPY otherwise.

Raw labels then pass the minimum-duration hysteresis (:func:`hold_min_duration`). Bars where an
input is not ready yet are -1 (warm-up).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.indicators import adx, atr, drawdown, percentile_rank, realized_volatility, sma
from framework.regime._nb import hold_min_duration_nb
from framework.regime.spec import BEAR, BULL, CHOPPY, VOLATILE, WARMUP, RegimeSpec
from framework.types import Bars


@dataclass(frozen=True, eq=False)
class Classification:
    """The classifier's output and inputs for one price series (1-D arrays, one row per bar).

    Attributes
    ----------
    labels : ndarray of int64
        Regimes after hysteresis (0..3), -1 during warm-up.
    raw : ndarray of int64
        Regimes before hysteresis.
    vix_used : ndarray of bool
        True where the VIX terms decided the volatility test (False: stand-in or skipped).
    inputs : dict of str to ndarray
        The indicator columns used: ``trend_ratio`` (close / average - 1), ``adx``, ``plus_di``,
        ``minus_di``, ``atr_percent``, ``drawdown``, ``vix``, ``vix_percentile``,
        ``realized_volatility``, ``realized_volatility_percentile``.
    """

    labels: np.ndarray
    raw: np.ndarray
    vix_used: np.ndarray
    inputs: dict[str, np.ndarray]


def _vector(x: object, name: str, n: int | None = None) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1 or (n is not None and arr.shape[0] != n):
        want = f"({n},)" if n is not None else "one dimension"
        raise DataError(
            f"regime input {name!r} must be a 1-D float array of shape {want}; got {arr.shape}. "
            "Pass one column per call, aligned to the price bars."
        )
    return arr


def regime_inputs(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    spec: RegimeSpec,
    vix: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Compute the causal indicator columns the classifier reads (see :class:`Classification`).

    Parameters
    ----------
    high, low, close : ndarray
        One symbol's prices, ``(bars,)``.
    spec : RegimeSpec
        Windows and thresholds.
    vix : ndarray, optional
        VIX closes aligned to the price bars (NaN where unknown); None when there is no VIX.
    """
    c = _vector(close, "close")
    h, lo = _vector(high, "high", len(c)), _vector(low, "low", len(c))
    trend = adx(h, lo, c, spec.adx_window)
    rv = realized_volatility(c, spec.realized_volatility_window)
    v = np.full(len(c), np.nan) if vix is None else _vector(vix, "vix", len(c))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "trend_ratio": c / sma(c, spec.trend_window) - 1.0,
            "adx": trend.adx,
            "plus_di": trend.plus_di,
            "minus_di": trend.minus_di,
            "atr_percent": atr(h, lo, c, spec.atr_window) / c,
            "drawdown": drawdown(c),
            "vix": v,
            "vix_percentile": percentile_rank(v, spec.percentile_window),
            "realized_volatility": rv,
            "realized_volatility_percentile": percentile_rank(rv, spec.percentile_window),
        }


def raw_labels(
    inputs: dict[str, np.ndarray], spec: RegimeSpec, has_vix: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the decision order bar by bar (no hysteresis); returns ``(labels, vix_used)``.

    Parameters
    ----------
    inputs : dict
        Output of :func:`regime_inputs`.
    spec : RegimeSpec
        Thresholds.
    has_vix : bool
        Whether a VIX series was given; without one and with ``use_realized_volatility`` false the
        volatility-index terms are skipped instead of making every bar warm-up.
    """
    x = inputs
    base = ["trend_ratio", "adx", "plus_di", "minus_di", "atr_percent", "drawdown"]
    ready = np.logical_and.reduce([~np.isnan(x[k]) for k in base])
    vix_used = ~np.isnan(x["vix"]) & ~np.isnan(x["vix_percentile"])
    rv_ready = ~np.isnan(x["realized_volatility_percentile"])
    with np.errstate(invalid="ignore"):
        vix_stress = (x["vix"] >= spec.vix_level) | (
            (x["vix_percentile"] >= spec.vix_percentile) & (x["vix"] >= spec.vix_floor)
        )
        rv_stress = (x["realized_volatility_percentile"] >= spec.realized_volatility_percentile) & (
            x["realized_volatility"] >= spec.realized_volatility_floor
        )
        if spec.use_realized_volatility:
            vol_ready = vix_used | rv_ready
            index_stress = np.where(vix_used, vix_stress, rv_stress)
        else:
            # Without a stand-in the VIX terms are skipped only when no VIX was given at all;
            # with a VIX its own warm-up (history + percentile window) is warm-up here too.
            vol_ready = vix_used if has_vix else np.ones(len(ready), dtype=bool)
            index_stress = vix_used & vix_stress
        volatile = index_stress | (x["atr_percent"] >= spec.atr_percent)
        above, below = x["trend_ratio"] > 0.0, x["trend_ratio"] < 0.0
        bear = below & (x["drawdown"] <= -spec.bear_drawdown)
        trending_up = (x["adx"] >= spec.bull_adx) & (x["plus_di"] > x["minus_di"])
        grinding_up = (x["drawdown"] > -spec.bull_near_peak) & (
            x["trend_ratio"] >= spec.bull_margin
        )
        bull = above & (trending_up | grinding_up)
    labels = np.select(
        [~(ready & vol_ready), volatile, bear, bull], [WARMUP, VOLATILE, BEAR, BULL], CHOPPY
    ).astype(np.int64)
    return labels, vix_used & ready


def hold_min_duration(raw: np.ndarray, min_duration: int) -> np.ndarray:
    """Hysteresis: the regime switches only once a new raw label held ``min_duration`` bars.

    Parameters
    ----------
    raw : ndarray of int
        Raw labels, ``(bars,)`` or ``(bars, columns)``; values < 0 mean warm-up / no data.
    min_duration : int
        Consecutive bars (>= 1) a new label must hold; 1 means no smoothing.

    Returns
    -------
    ndarray of int64
        Same shape. A raw value < 0 gives -1 and restarts the column (the next valid raw label is
        adopted at once). Prefix invariant: row ``i`` depends on raw rows ``<= i`` only.
    """
    if isinstance(min_duration, bool) or not isinstance(min_duration, (int, np.integer)):
        raise DataError(f"min_duration must be an int >= 1; got {min_duration!r}.")
    if min_duration < 1:
        raise DataError(f"min_duration must be >= 1 bar; got {min_duration}.")
    arr = np.asarray(raw)
    if arr.ndim not in (1, 2) or not np.issubdtype(arr.dtype, np.integer):
        raise DataError(
            f"raw labels must be a 1-D or 2-D integer array; got dtype {arr.dtype}, "
            f"shape {arr.shape}."
        )
    matrix = np.ascontiguousarray(
        arr.reshape(len(arr), 1 if arr.ndim == 1 else arr.shape[1]), dtype=np.int64
    )
    out = hold_min_duration_nb(matrix, int(min_duration))
    return out[:, 0] if arr.ndim == 1 else out


def classify(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    spec: RegimeSpec | None = None,
    vix: np.ndarray | None = None,
) -> Classification:
    """Classify one price series into regimes (causal, with hysteresis).

    Parameters
    ----------
    high, low, close : ndarray
        One symbol's prices, ``(bars,)``.
    spec : RegimeSpec, optional
        Thresholds; default ``RegimeSpec()`` (equal to the shipped ``config/regimes.yaml``).
    vix : ndarray, optional
        VIX closes aligned to the bars (NaN where unknown).

    Returns
    -------
    Classification
        Labels after hysteresis, raw labels, where the VIX was used, and the inputs.
    """
    spec = RegimeSpec() if spec is None else spec
    inputs = regime_inputs(high, low, close, spec, vix)
    raw, vix_used = raw_labels(inputs, spec, has_vix=vix is not None)
    labels = hold_min_duration(raw, spec.min_duration)
    return Classification(labels=labels, raw=raw, vix_used=vix_used, inputs=inputs)


def align_vix(vix: Bars | np.ndarray | pd.Series, index: pd.DatetimeIndex) -> np.ndarray:
    """VIX closes on ``index``: arrays must already match; Bars / Series are aligned by time.

    Aligning carries the last known VIX close forward (causal); times before the first VIX bar
    stay NaN. Bars must hold exactly one symbol.
    """
    if isinstance(vix, Bars):
        if vix.n_assets != 1:
            raise DataError(
                f"vix Bars must hold one symbol; got {list(vix.symbols)}. Use bars.select(['VIX'])."
            )
        vix = pd.Series(vix.close[:, 0], index=vix.index)
    if isinstance(vix, pd.Series):
        clean = vix.dropna()
        pos = clean.index.searchsorted(index, side="right") - 1
        values = clean.to_numpy(np.float64)
        return (
            np.where(pos >= 0, values[np.clip(pos, 0, None)], np.nan)
            if len(clean)
            else (np.full(len(index), np.nan))
        )
    return _vector(vix, "vix", len(index))


def regime_labels(
    bars: Bars, spec: RegimeSpec | None = None, vix: Bars | np.ndarray | pd.Series | None = None
) -> np.ndarray:
    """Regime label per bar and symbol, usable inside ``Strategy.features``.

    Parameters
    ----------
    bars : Bars
        Prices; every symbol is classified on its own.
    spec : RegimeSpec, optional
        Thresholds; default ``RegimeSpec()``.
    vix : Bars, Series or ndarray, optional
        The VIX: one-symbol Bars or a Series (aligned by time, last value carried forward) or an
        array already aligned to ``bars`` rows. None: realized volatility stands in (or the VIX
        terms are skipped, per ``spec.use_realized_volatility``).

    Returns
    -------
    ndarray of int64
        Shape ``(n_bars, n_assets)``: 0 BULL, 1 BEAR, 2 CHOPPY, 3 VOLATILE, -1 during warm-up.
        Causal: row ``i`` uses bars ``<= i`` only. Labels do depend on how much history
        precedes a bar (drawdown from the running peak, Wilder smoothing, hysteresis state), so
        give a strategy a generous warm-up (e.g. ``trend_window + percentile_window`` bars).
    """
    if not isinstance(bars, Bars):
        raise DataError(f"regime_labels takes Bars; got {type(bars).__name__}.")
    v = None if vix is None else align_vix(vix, bars.index)
    out = np.empty((bars.n_bars, bars.n_assets), dtype=np.int64)
    for j in range(bars.n_assets):
        found = classify(bars.high[:, j], bars.low[:, j], bars.close[:, j], spec, v)
        out[:, j] = found.labels
    return out


__all__ = [
    "Classification",
    "align_vix",
    "classify",
    "hold_min_duration",
    "raw_labels",
    "regime_inputs",
    "regime_labels",
]
