"""Labels for learned strategies and sample weights from label overlap.

A label says what happened *after* bar ``i``, so it is the one place where the future is read on
purpose. Two rules keep that honest:

* a label is only resolved with bars that exist: when the data ends before the outcome is
  decided the label is unknown (``nan``, ``end == -1``), never guessed from a shorter window;
* a label known on a prefix of the data is final: appending bars never changes it. Walk-forward
  training can therefore label its in-sample window alone and drop the unknown tail.

:func:`forward_return_labels` is the sign of the return over a fixed horizon;
:func:`triple_barrier_labels` stops at the first of a profit-take, a stop-loss (both in units of
the per-bar volatility at ``i``, e.g. :func:`daily_volatility`) and a time barrier.
:func:`average_uniqueness` weights overlapping labels so that a stretch of bars shared by many
labels does not count many times over.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from framework.errors import DataError, ParameterError, unknown_name_message
from framework.ml._labels_nb import (
    average_uniqueness_nb,
    return_volatility_nb,
    triple_barrier_nb,
)

TIME_LABELS: tuple[str, ...] = ("sign", "zero")


@dataclass(frozen=True, eq=False)
class LabelSet:
    """One label per bar.

    Attributes
    ----------
    label : (n,) float64 ndarray
        +1.0 (up) or -1.0 (down); 0.0 only for triple-barrier time exits with
        ``time_label="zero"``; ``nan`` where the given bars do not decide the label.
    end : (n,) int64 ndarray
        Bar at which the label resolved (the last bar it depends on); -1 when unknown.
    ret : (n,) float64 ndarray
        ``close[end] / close[i] - 1``, the return the label realised; ``nan`` when unknown.

    The arrays are copied and made read-only so a frozen label set stays frozen.
    """

    label: np.ndarray
    end: np.ndarray
    ret: np.ndarray

    def __post_init__(self) -> None:
        label = _read_only(np.array(self.label, dtype=np.float64))
        end = _read_only(np.array(self.end, dtype=np.int64))
        ret = _read_only(np.array(self.ret, dtype=np.float64))
        shapes = {"label": label.shape, "end": end.shape, "ret": ret.shape}
        if label.ndim != 1 or len(set(shapes.values())) != 1:
            raise DataError(
                f"LabelSet arrays must be 1-D and of one length; got shapes {shapes}. "
                "Build them from the same close series."
            )
        object.__setattr__(self, "label", label)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "ret", ret)

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def known(self) -> np.ndarray:
        """Boolean mask of the bars whose label is decided by the given data."""
        return ~np.isnan(self.label)


@dataclass(frozen=True)
class BarrierSpec:
    """Triple-barrier geometry.

    Attributes
    ----------
    profit_take : float
        Upper barrier ``close[i] * (1 + profit_take * vol[i])``; > 0.
    stop_loss : float
        Lower barrier ``close[i] * (1 - stop_loss * vol[i])``; > 0.
    max_holding : int
        Time barrier at bar ``i + max_holding``; >= 1.
    time_label : {"sign", "zero"}
        Label when the time barrier is hit first: the sign of its return (a zero return is -1,
        as for forward labels) or 0.0 ("no opinion").
    """

    profit_take: float = 2.0
    stop_loss: float = 2.0
    max_holding: int = 10
    time_label: str = "sign"

    def __post_init__(self) -> None:
        for name in ("profit_take", "stop_loss"):
            value = getattr(self, name)
            if not _is_real(value) or not np.isfinite(value) or value <= 0:
                raise ParameterError(
                    f"BarrierSpec {name} must be a finite number > 0 (a multiple of the "
                    f"per-bar volatility); got {value!r}."
                )
        if not _is_int(self.max_holding) or self.max_holding < 1:
            raise ParameterError(
                f"BarrierSpec max_holding must be an integer >= 1 bar; got {self.max_holding!r}."
            )
        if self.time_label not in TIME_LABELS:
            raise ParameterError(
                unknown_name_message("time_label", str(self.time_label), TIME_LABELS)
            )


def forward_return_labels(close: np.ndarray, horizon: int) -> LabelSet:
    """Sign of the return over the next ``horizon`` bars.

    ``label[i] = +1`` if ``close[i + horizon] / close[i] - 1 > 0`` else ``-1``: a return of
    exactly zero is labelled -1 ("did not rise"), so the label is binary. The last ``horizon``
    bars, and bars where ``close[i]`` or ``close[i + horizon]`` is missing, are unknown.

    Parameters
    ----------
    close : (n,) array_like
        Closes, positive or NaN (missing).
    horizon : int
        Bars ahead, >= 1.

    Returns
    -------
    LabelSet
        ``end[i] = i + horizon`` where known.
    """
    if not _is_int(horizon) or horizon < 1:
        raise ParameterError(
            f"forward_return_labels horizon must be an integer >= 1; got {horizon!r}."
        )
    c = _as_close(close, "forward_return_labels")
    n = c.shape[0]
    h = int(horizon)
    ret = np.full(n, np.nan)
    if n > h:
        ret[: n - h] = c[h:] / c[: n - h] - 1.0
    known = ~np.isnan(ret)
    label = np.where(known, np.where(ret > 0.0, 1.0, -1.0), np.nan)
    end = np.where(known, np.arange(n, dtype=np.int64) + h, -1)
    return LabelSet(label=label, end=end, ret=ret)


def triple_barrier_labels(
    close: np.ndarray, volatility: np.ndarray, spec: BarrierSpec | None = None
) -> LabelSet:
    """First barrier touched by the closes after each bar (see :class:`BarrierSpec`).

    Bar ``i`` walks ``close[i+1 .. i+max_holding]``: the first close ``>=`` the upper barrier is
    +1, ``<=`` the lower barrier -1 (``end`` = that bar); with no touch the time label applies at
    ``i + max_holding``. Unknown (``nan``, ``end == -1``) when the data ends before a touch and
    before the time barrier, when ``close[i]`` or ``volatility[i]`` is missing, when
    ``volatility[i]`` is 0 (both barriers on the entry price), or when no barrier is touched and
    the close at the time barrier is missing. A missing close inside the walk touches nothing.

    Parameters
    ----------
    close : (n,) array_like
        Closes, positive or NaN.
    volatility : (n,) array_like
        Per-bar return volatility known at each bar (>= 0 or NaN), e.g. :func:`daily_volatility`.
    spec : BarrierSpec, optional
        Barrier geometry; the defaults when omitted.
    """
    spec = BarrierSpec() if spec is None else spec
    if not isinstance(spec, BarrierSpec):
        raise ParameterError(
            f"triple_barrier_labels spec must be a BarrierSpec; got {type(spec).__name__}."
        )
    c = _as_close(close, "triple_barrier_labels")
    vol = _as_volatility(volatility, c.shape[0])
    label, end, ret = triple_barrier_nb(
        c,
        vol,
        float(spec.profit_take),
        float(spec.stop_loss),
        int(spec.max_holding),
        spec.time_label == "zero",
    )
    return LabelSet(label=label, end=end, ret=ret)


def daily_volatility(close: np.ndarray, window: int = 20) -> np.ndarray:
    """Causal rolling standard deviation (ddof 1) of simple returns, one value per bar.

    ``vol[i]`` uses the returns ``close[k] / close[k-1] - 1`` for ``k = i-window+1 .. i`` only,
    so it is known at bar ``i``. The first ``window`` rows are NaN (warm-up); a missing close
    makes its two returns missing and restarts the window. "Daily" is the usual name; the unit is
    whatever one bar is.

    Parameters
    ----------
    close : (n,) array_like
        Closes, positive or NaN.
    window : int
        Returns per window, >= 2.
    """
    if not _is_int(window) or window < 2:
        raise ParameterError(f"daily_volatility window must be an integer >= 2; got {window!r}.")
    c = _as_close(close, "daily_volatility")
    return return_volatility_nb(c, int(window))


def average_uniqueness(start: np.ndarray, end: np.ndarray, n_bars: int) -> np.ndarray:
    """Sample weight = mean over the label's bars of ``1 / (labels covering that bar)``.

    Sample ``k`` spans bars ``start[k] .. end[k]`` inclusive; ``c_t`` counts the samples whose
    span covers bar ``t``. Samples with ``end < 0`` (unknown labels) get weight 0 and are not
    counted. Disjoint spans weigh 1, ``k`` identical spans weigh ``1/k`` each. Several samples
    may share a start (labels of several assets pooled on one bar axis).

    Parameters
    ----------
    start, end : (m,) int array_like
        First and last bar of each label (``0 <= start <= end < n_bars`` when ``end >= 0``).
    n_bars : int
        Length of the bar axis.

    Returns
    -------
    (m,) float64 ndarray
        Weights in ``[0, 1]``.
    """
    if not _is_int(n_bars) or n_bars < 0:
        raise ParameterError(f"average_uniqueness n_bars must be an integer >= 0; got {n_bars!r}.")
    s = _as_index(start, "start")
    e = _as_index(end, "end")
    if s.shape != e.shape:
        raise DataError(
            f"average_uniqueness start and end must have one length; got {s.shape[0]} and "
            f"{e.shape[0]}. Pass one start and one end per sample."
        )
    _check_spans(s, e, int(n_bars))
    return average_uniqueness_nb(s, e, int(n_bars))


def _check_spans(start: np.ndarray, end: np.ndarray, n_bars: int) -> None:
    live = end >= 0
    bad = live & ((start < 0) | (start > end) | (end >= n_bars))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"average_uniqueness sample {k} has start={int(start[k])}, end={int(end[k])}; "
            f"expected 0 <= start <= end < n_bars={n_bars} (end < 0 marks an unknown label)."
        )


def _as_close(close: np.ndarray, where: str) -> np.ndarray:
    c = np.asarray(close, dtype=np.float64)
    if c.ndim != 1:
        raise DataError(f"{where} close must be 1-D (one series); got shape {c.shape}.")
    bad = ~np.isnan(c) & ~(np.isfinite(c) & (c > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where} close[{i}] = {float(c[i])!r}; closes must be positive finite numbers or NaN "
            "(missing). Clean the price series first."
        )
    return np.ascontiguousarray(c)


def _as_volatility(volatility: np.ndarray, n: int) -> np.ndarray:
    v = np.asarray(volatility, dtype=np.float64)
    if v.shape != (n,):
        raise DataError(
            f"triple_barrier_labels volatility must have the shape of close ({n},); got "
            f"{v.shape}. Compute it from the same series, e.g. daily_volatility(close)."
        )
    bad = ~np.isnan(v) & ~(np.isfinite(v) & (v >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"triple_barrier_labels volatility[{i}] = {float(v[i])!r}; expected a finite number >= 0 "
            "or NaN (unknown)."
        )
    return np.ascontiguousarray(v)


def _as_index(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"average_uniqueness {name} must be 1-D; got shape {arr.shape}.")
    if arr.dtype.kind in "iu":
        return np.ascontiguousarray(arr, dtype=np.int64)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        return np.ascontiguousarray(arr, dtype=np.int64)
    raise DataError(
        f"average_uniqueness {name} must hold integer bar indices; got dtype {arr.dtype}. "
        "Use LabelSet.end (int64) and np.arange for the starts."
    )


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


__all__ = [
    "TIME_LABELS",
    "BarrierSpec",
    "LabelSet",
    "average_uniqueness",
    "daily_volatility",
    "forward_return_labels",
    "triple_barrier_labels",
]
