"""A causal, scale-free feature set for learned strategies, built on :mod:`framework.indicators`.

:func:`ml_features` turns :class:`~framework.types.Bars` into ``(n_bars, n_assets)`` float64
columns. Every column is **causal** (row ``i`` uses bars ``<= i`` only, so features on
``bars[:k]`` equal the first ``k`` rows on ``bars`` exactly) and **scale-free**: prices enter
only through log returns and ratios, so multiplying an asset's prices by a constant leaves every
feature unchanged (up to float rounding), and assets at different price levels, or the same asset
decades apart, are comparable.

Features, in :func:`feature_names` order (windows are :class:`FeatureSpec` fields; warm-up = the
first row that is defined on clean data, i.e. the number of NaN rows before it):

======================  ========================================================  ==============
name                    meaning                                                   warm-up bars
======================  ========================================================  ==============
``ret_{h}``             log return over ``h`` bars, ``log(c[i] / c[i-h])``,       ``h``
                        one per ``return_horizons`` entry (``ret_1``, ``ret_5``..)
``vol``                 per-bar (NOT annualised) realised volatility: sample std  ``volatility_window``
                        of the last ``volatility_window`` one-bar log returns
``vol_ratio``           ``vol`` / the same over ``long_volatility_window``        ``long_volatility_window``
                        (> 1: volatility is rising); 1 when both are 0
``rsi``                 Wilder RSI rescaled from [0, 100] to [-1, 1]              ``rsi_window``
``macd_hist``           MACD histogram (``macd`` = fast, slow, signal) / close    ``slow + signal - 2``
``adx``                 Wilder ADX / 100, in [0, 1] (trend strength)              ``2 * adx_window - 1``
``di_spread``           (+DI - -DI) / 100, in [-1, 1] (trend direction)           ``adx_window``
``bb_percent_b``        Bollinger %B: ``(c - lower) / (upper - lower)`` of the    ``band_window - 1``
                        ``band_window``-bar, ``band_width``-std bands; 0.5 when
                        the window is flat (bands touch)
``donchian_position``   ``(c - lowest low) / (highest high - lowest low)`` over   ``channel_window - 1``
                        ``channel_window`` bars (current bar included), in
                        [0, 1] for valid OHLC; 0.5 when the channel is flat
``atr_ratio``           Wilder ATR over ``atr_window`` bars / close               ``atr_window``
``volume_z``            z-score of ``log(1 + volume)`` against its last           ``volume_window - 1``
                        ``volume_window`` values (population std, current bar
                        included); 0 when the window is constant (e.g. an index
                        that reports no volume)
``sma_distance``        ``log(c / SMA(c, trend_window))``; only when              ``trend_window - 1``
                        ``trend_window`` is not None
``dow_sin``,            day of week of the bar's close time in America/New_York   0
``dow_cos``             (Monday = 0) as ``sin``/``cos`` of ``2 pi day / 7``, the
                        same for every asset; only when ``day_of_week``
======================  ========================================================  ==============

:func:`feature_warmup` is the largest warm-up: from that row on every feature is finite on valid
data (positive prices, non-negative volume, no gaps). A NaN price restarts the indicator-based
features (see :mod:`framework.indicators`) and makes the return features NaN for ``h`` bars.
EMA- and Wilder-smoothed features (``rsi``, ``macd_hist``, ``adx``, ``di_spread``,
``atr_ratio``) still carry a fading memory of where the series started after their warm-up.

:func:`stack_rows` turns the columns into a model's design matrix, one row per (bar, asset).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.errors import DataError, ParameterError, unknown_name_message
from framework.indicators import (
    adx,
    atr,
    bollinger_bands,
    donchian_channels,
    macd,
    realized_volatility,
    rolling_zscore,
    rsi,
    sma,
)
from framework.types import Bars

EXCHANGE_TIMEZONE = "America/New_York"


def _check_int(field: str, value: object, minimum: int, example: int) -> None:
    """Raise ParameterError unless ``value`` is an integer (not a bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ParameterError(
            f"FeatureSpec.{field} must be an integer >= {minimum}; got {value!r}. "
            f"Use e.g. {field}={example}."
        )


@dataclass(frozen=True)
class FeatureSpec:
    """Windows of the ML feature set (see the module docstring for the features they set).

    Attributes
    ----------
    return_horizons : tuple of int
        Bars of each log-return feature ``ret_{h}`` (distinct, each >= 1; may be empty).
    volatility_window : int
        One-bar log returns in ``vol`` (>= 2).
    rsi_window : int
        Wilder RSI period (>= 2).
    macd : tuple of (int, int, int)
        MACD fast span, slow span and signal span (``2 <= fast < slow``, ``signal >= 1``).
    adx_window : int
        Wilder period of ADX and +DI/-DI (>= 2).
    band_window : int
        Bollinger window (>= 2).
    band_width : float
        Bollinger band width in standard deviations (> 0).
    channel_window : int
        Donchian channel window (>= 1).
    volume_window : int
        Window of the log-volume z-score (>= 2).
    day_of_week : bool
        Add ``dow_sin`` and ``dow_cos``.
    long_volatility_window : int
        Returns in the slower volatility that ``vol_ratio`` divides by (> ``volatility_window``).
    atr_window : int
        Wilder ATR period of ``atr_ratio`` (>= 1).
    trend_window : int or None
        SMA window of ``sma_distance`` (>= 2); None leaves the feature out, which shortens the
        warm-up when history is scarce.
    """

    return_horizons: tuple[int, ...] = (1, 5, 20, 60)
    volatility_window: int = 20
    rsi_window: int = 14
    macd: tuple[int, int, int] = (12, 26, 9)
    adx_window: int = 14
    band_window: int = 20
    band_width: float = 2.0
    channel_window: int = 20
    volume_window: int = 20
    day_of_week: bool = True
    long_volatility_window: int = 100
    atr_window: int = 14
    trend_window: int | None = 200

    def __post_init__(self) -> None:
        self._check_horizons()
        self._check_macd()
        for field, minimum, example in (
            ("volatility_window", 2, 20), ("rsi_window", 2, 14), ("adx_window", 2, 14),
            ("band_window", 2, 20), ("channel_window", 1, 20), ("volume_window", 2, 20),
            ("long_volatility_window", 3, 100), ("atr_window", 1, 14),
        ):
            _check_int(field, getattr(self, field), minimum, example)
        if self.long_volatility_window <= self.volatility_window:
            raise ParameterError(
                f"FeatureSpec.long_volatility_window ({self.long_volatility_window}) must exceed "
                f"volatility_window ({self.volatility_window}): vol_ratio compares a fast "
                "volatility with a slower one. Use e.g. 5 times volatility_window."
            )
        if self.trend_window is not None:
            _check_int("trend_window", self.trend_window, 2, 200)
        width = self.band_width
        if (isinstance(width, bool) or not isinstance(width, int | float | np.integer | np.floating)
                or not math.isfinite(float(width)) or width <= 0):
            raise ParameterError(
                f"FeatureSpec.band_width must be a finite number > 0 (standard deviations); got "
                f"{width!r}. Use e.g. band_width=2.0."
            )
        if not isinstance(self.day_of_week, bool):
            raise ParameterError(
                f"FeatureSpec.day_of_week must be True or False; got {self.day_of_week!r}."
            )

    def _check_horizons(self) -> None:
        horizons = self.return_horizons
        if not isinstance(horizons, tuple):
            raise ParameterError(
                f"FeatureSpec.return_horizons must be a tuple of integers; got {horizons!r}. "
                "Use e.g. return_horizons=(1, 5, 20, 60)."
            )
        for h in horizons:
            _check_int("return_horizons", h, 1, 5)
        if len(set(horizons)) != len(horizons):
            raise ParameterError(
                f"FeatureSpec.return_horizons has a repeated horizon: {horizons!r}; each "
                "horizon names one feature (ret_h), so list each once."
            )

    def _check_macd(self) -> None:
        spans = self.macd
        if not isinstance(spans, tuple) or len(spans) != 3:
            raise ParameterError(
                f"FeatureSpec.macd must be a tuple (fast, slow, signal); got {spans!r}. "
                "Use e.g. macd=(12, 26, 9)."
            )
        fast, slow, signal = spans
        _check_int("macd", fast, 2, 12)
        _check_int("macd", slow, 2, 26)
        _check_int("macd", signal, 1, 9)
        if fast >= slow:
            raise ParameterError(
                f"FeatureSpec.macd needs fast < slow; got macd={spans!r}. Use e.g. (12, 26, 9)."
            )


def feature_warmups(spec: FeatureSpec) -> dict[str, int]:
    """Warm-up of each feature, in :func:`feature_names` order.

    Parameters
    ----------
    spec : FeatureSpec

    Returns
    -------
    dict of str to int
        For each feature, the first row that is defined on clean data (the number of NaN rows
        that precede it).
    """
    fast, slow, signal = spec.macd
    out = {f"ret_{h}": int(h) for h in spec.return_horizons}
    out |= {
        "vol": spec.volatility_window,
        "vol_ratio": spec.long_volatility_window,
        "rsi": spec.rsi_window,
        "macd_hist": slow + signal - 2,
        "adx": 2 * spec.adx_window - 1,
        "di_spread": spec.adx_window,
        "bb_percent_b": spec.band_window - 1,
        "donchian_position": spec.channel_window - 1,
        "atr_ratio": spec.atr_window,
        "volume_z": spec.volume_window - 1,
    }
    if spec.trend_window is not None:
        out["sma_distance"] = spec.trend_window - 1
    if spec.day_of_week:
        out |= {"dow_sin": 0, "dow_cos": 0}
    return out


def feature_names(spec: FeatureSpec) -> tuple[str, ...]:
    """Names of the features of ``spec``, in the (stable) order :func:`ml_features` returns them."""
    return tuple(feature_warmups(spec))


def feature_warmup(spec: FeatureSpec) -> int:
    """Rows after which every feature of ``spec`` is defined.

    Returns
    -------
    int
        The first row at which all features are finite on valid data (positive prices,
        non-negative volume, no gaps); 0 when nothing needs a warm-up.
    """
    return max(feature_warmups(spec).values(), default=0)


def ml_features(bars: Bars, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Compute the feature set of ``spec`` on ``bars``.

    Parameters
    ----------
    bars : Bars
        Aligned OHLCV bars, ``(n_bars, n_assets)``.
    spec : FeatureSpec
        Windows of the features.

    Returns
    -------
    dict of str to ndarray
        One float64 ``(n_bars, n_assets)`` array per feature, keyed and ordered as
        :func:`feature_names`; NaN during warm-up and where the inputs are missing.
    """
    if not isinstance(bars, Bars):
        raise DataError(f"ml_features needs a Bars object; got {type(bars).__name__}.")
    if not isinstance(spec, FeatureSpec):
        raise ParameterError(
            f"ml_features needs a FeatureSpec; got {type(spec).__name__}. Pass FeatureSpec()."
        )
    close, high, low = bars.close, bars.high, bars.low
    log_close = _log_positive(close)
    out: dict[str, np.ndarray] = {f"ret_{h}": _log_return(log_close, h) for h in spec.return_horizons}
    out.update(_volatility_features(close, spec))
    out["rsi"] = rsi(close, spec.rsi_window) / 50.0 - 1.0
    out["macd_hist"] = _per_close(macd(close, *spec.macd).histogram, close)
    directional = adx(high, low, close, spec.adx_window)
    out["adx"] = directional.adx / 100.0
    out["di_spread"] = (directional.plus_di - directional.minus_di) / 100.0
    out["bb_percent_b"] = _percent_b(close, spec)
    out["donchian_position"] = _channel_position(bars, spec.channel_window)
    out["atr_ratio"] = _per_close(atr(high, low, close, spec.atr_window), close)
    out["volume_z"] = _volume_zscore(bars.volume, spec.volume_window)
    if spec.trend_window is not None:
        out["sma_distance"] = log_close - _log_positive(sma(close, spec.trend_window))
    if spec.day_of_week:
        out.update(_day_of_week(bars.index, bars.n_assets))
    return {name: np.asarray(out[name], dtype=np.float64) for name in feature_names(spec)}


def stack_rows(
    features: Mapping[str, np.ndarray],
    names: Sequence[str],
    rows: np.ndarray | slice | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack feature columns into a design matrix with one row per (bar, asset).

    Rows are stacked **asset by asset**: all selected bars of asset 0 (in bar order), then all of
    asset 1, and so on, so row ``a * n_rows + r`` is asset ``a`` at the ``r``-th selected bar.
    Rows with NaN are kept; callers drop them (e.g. ``np.isfinite(X).all(axis=1)``).

    Parameters
    ----------
    features : mapping of str to ndarray
        Same-shaped ``(n_bars, n_assets)`` columns (a 1-D ``(n_bars,)`` column counts as one
        asset), e.g. the output of :func:`ml_features`.
    names : sequence of str
        Columns of ``X``, in order.
    rows : ndarray of int or bool, slice, optional
        Bars to take (integer positions, a boolean mask of length ``n_bars`` or a slice); all
        bars when None.

    Returns
    -------
    X : ndarray, shape (n_rows * n_assets, n_features)
        float64 design matrix.
    bar : ndarray of int64
        Bar index (row of ``features``) of each row of ``X``.
    asset : ndarray of int64
        Asset index (column of ``features``) of each row of ``X``.
    """
    if isinstance(names, str) or len(names) == 0:
        raise ParameterError(
            f"stack_rows needs a non-empty sequence of feature names; got {names!r}. "
            "Pass e.g. feature_names(spec)."
        )
    columns = [_feature_matrix(features, name) for name in names]
    shapes = {name: col.shape for name, col in zip(names, columns, strict=True)}
    if len(set(shapes.values())) > 1:
        raise DataError(
            f"stack_rows needs same-shaped feature columns; got {shapes}. Compute them on the "
            "same bars."
        )
    n_bars, n_assets = columns[0].shape
    selected = _select_rows(n_bars, rows)
    X = np.empty((selected.size * n_assets, len(columns)), dtype=np.float64)
    for k, col in enumerate(columns):
        # transposing makes each asset's bars contiguous: that is the asset-by-asset order
        X[:, k] = col[selected].T.reshape(-1)
    bar = np.tile(selected, n_assets)
    asset = np.repeat(np.arange(n_assets, dtype=np.int64), selected.size)
    return X, bar, asset


# -- feature helpers ---------------------------------------------------------------------------


def _log_positive(x: np.ndarray) -> np.ndarray:
    """``log(x)`` where ``x > 0``, NaN elsewhere (a non-positive price has no log)."""
    out = np.full(x.shape, np.nan)
    np.log(x, out=out, where=x > 0)
    return out


def _log_return(log_close: np.ndarray, horizon: int) -> np.ndarray:
    """``log_close[i] - log_close[i - horizon]``; the first ``horizon`` rows are NaN."""
    out = np.full(log_close.shape, np.nan)
    if horizon < log_close.shape[0]:
        out[horizon:] = log_close[horizon:] - log_close[:-horizon]
    return out


def _per_close(values: np.ndarray, close: np.ndarray) -> np.ndarray:
    """``values / close`` where the close is positive, NaN elsewhere."""
    out = np.full(values.shape, np.nan)
    np.divide(values, close, out=out, where=close > 0)
    return out


def _volatility_features(close: np.ndarray, spec: FeatureSpec) -> dict[str, np.ndarray]:
    """Per-bar realised volatility and its ratio to a slower one."""
    fast = realized_volatility(close, spec.volatility_window, periods_per_year=1.0, ddof=1)
    slow = realized_volatility(close, spec.long_volatility_window, periods_per_year=1.0, ddof=1)
    # the fast window lies inside the slow one, so a zero slow vol means both are flat: ratio 1
    ratio = np.where(slow == 0.0, 1.0, np.nan)
    np.divide(fast, slow, out=ratio, where=slow > 0.0)
    return {"vol": fast, "vol_ratio": ratio}


def _percent_b(close: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Bollinger %B, 0.5 (the middle) when the window is flat and the bands touch."""
    bands = bollinger_bands(close, spec.band_window, spec.band_width)
    flat = np.isnan(bands.percent_b) & np.isfinite(bands.middle)
    return np.where(flat, 0.5, bands.percent_b)


def _channel_position(bars: Bars, window: int) -> np.ndarray:
    """Where the close sits in the Donchian channel: 0 at the lowest low, 1 at the highest high."""
    channel = donchian_channels(bars.high, bars.low, window)
    width = channel.upper - channel.lower
    flat = (width == 0.0) & np.isfinite(bars.close)
    out = np.where(flat, 0.5, np.nan)
    np.divide(bars.close - channel.lower, width, out=out, where=width > 0.0)
    return out


def _volume_zscore(volume: np.ndarray, window: int) -> np.ndarray:
    """Rolling z-score of ``log(1 + volume)``; 0 where the window is constant.

    ``log1p`` keeps zero-volume bars finite (indexes often report 0), and a constant window
    means "volume as usual", hence 0 rather than the undefined 0/0.
    """
    log_volume = np.full(volume.shape, np.nan)
    np.log1p(volume, out=log_volume, where=volume >= 0)
    z = rolling_zscore(log_volume, window, ddof=0)
    constant = np.isnan(z) & np.isfinite(sma(log_volume, window))
    return np.where(constant, 0.0, z)


def _day_of_week(index: pd.DatetimeIndex, n_assets: int) -> dict[str, np.ndarray]:
    """Day of week of each close time on the exchange's clock, as a point on the unit circle."""
    day = index.tz_convert(EXCHANGE_TIMEZONE).day_of_week.to_numpy(dtype=np.float64)
    angle = 2.0 * np.pi * day / 7.0
    return {
        "dow_sin": np.tile(np.sin(angle)[:, None], (1, n_assets)),
        "dow_cos": np.tile(np.cos(angle)[:, None], (1, n_assets)),
    }


def _feature_matrix(features: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    """Feature ``name`` as a 2-D float64 array, with a clear error when it is missing."""
    if name not in features:
        raise ParameterError(unknown_name_message("feature", name, features))
    col = np.asarray(features[name], dtype=np.float64)
    if col.ndim == 1:
        return col.reshape(-1, 1)
    if col.ndim != 2:
        raise DataError(
            f"feature {name!r} must be a (n_bars,) or (n_bars, n_assets) array; got shape "
            f"{col.shape}."
        )
    return col


def _select_rows(n_bars: int, rows: np.ndarray | slice | None) -> np.ndarray:
    """Integer bar positions (int64, non-negative) selected by ``rows``."""
    positions = np.arange(n_bars, dtype=np.int64)
    if rows is None:
        return positions
    if isinstance(rows, slice):
        return positions[rows]
    chosen = np.asarray(rows)
    if chosen.dtype == bool:
        if chosen.shape != (n_bars,):
            raise ParameterError(
                f"stack_rows rows mask must have shape ({n_bars},), one flag per bar; got "
                f"{chosen.shape}."
            )
        return positions[chosen]
    if chosen.ndim != 1 or (chosen.size and not np.issubdtype(chosen.dtype, np.integer)):
        raise ParameterError(
            f"stack_rows rows must be a slice, a boolean mask or 1-D integer positions; got "
            f"dtype {chosen.dtype}, shape {chosen.shape}."
        )
    if chosen.size and (chosen.max() >= n_bars or chosen.min() < -n_bars):
        raise ParameterError(
            f"stack_rows rows must lie in [-{n_bars}, {n_bars - 1}] (there are {n_bars} bars); "
            f"got positions from {chosen.min()} to {chosen.max()}."
        )
    return positions[chosen.astype(np.int64)]
