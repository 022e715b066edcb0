"""Turning bars, causal features and forward labels into the rows a model trains on.

Labels look forward by construction (the label of bar ``i`` resolves at a later bar ``end``), so
they are only ever computed from the bars a ``fit`` was given: a label whose barrier or horizon
lies beyond the last given bar is unknown and its row is dropped. Within the window, the purged
cross-validation (:mod:`framework.ml.cv`) keeps overlapping labels out of each other's folds,
and the sample weights (average uniqueness) stop a run of overlapping labels from counting as
many independent observations.

Several assets are pooled: one row per (bar, asset), with the bar index kept for purging.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError, unknown_name_message
from framework.ml.training import TrainingSet
from framework.types import Bars

LABEL_KINDS: tuple[str, ...] = ("triple_barrier", "forward")


@dataclass(frozen=True)
class LabelSpec:
    """Which label a model learns.

    Attributes
    ----------
    kind : {"triple_barrier", "forward"}
        ``forward``: the sign of the ``horizon``-bar forward return. ``triple_barrier``: which of
        a profit-take and a stop-loss barrier, each ``barrier * vol * sqrt(horizon)`` away (``vol``
        the per-bar volatility of the last ``vol_window`` returns), the price touches first
        within ``horizon`` bars; at the time barrier, the sign of the return.
    horizon : int
        Bars a label looks ahead (the holding period it judges).
    barrier : float
        Barrier distance in volatility units over the horizon.
    vol_window : int
        Returns in the volatility estimate.
    """

    kind: str = "triple_barrier"
    horizon: int = 10
    barrier: float = 1.0
    vol_window: int = 20

    def __post_init__(self) -> None:
        if self.kind not in LABEL_KINDS:
            raise ParameterError(unknown_name_message("label", self.kind, LABEL_KINDS))
        if self.horizon < 1:
            raise ParameterError(f"label horizon must be >= 1 bar; got {self.horizon}.")
        if not self.barrier > 0:
            raise ParameterError(f"label barrier must be > 0 volatility units; got {self.barrier}.")
        if self.vol_window < 2:
            raise ParameterError(f"label vol_window must be >= 2 returns; got {self.vol_window}.")


@dataclass(frozen=True, eq=False)
class LabelGrid:
    """Labels of every (bar, asset): ``label`` +1/-1 (``nan`` unknown), the bar each resolved
    at (``end``, -1 unknown) and the return it realised (``ret``); all ``(n_bars, n_assets)``."""

    label: np.ndarray
    end: np.ndarray
    ret: np.ndarray


def label_grid(bars: Bars, spec: LabelSpec) -> LabelGrid:
    """Labels of ``spec`` for every bar and asset of ``bars`` (from ``bars`` alone)."""
    from framework.ml.labels import (
        BarrierSpec,
        daily_volatility,
        forward_return_labels,
        triple_barrier_labels,
    )

    n, m = bars.close.shape
    label, end, ret = np.full((n, m), np.nan), np.full((n, m), -1, dtype=np.int64), np.full((n, m), np.nan)
    width = spec.barrier * math.sqrt(spec.horizon)
    barrier = BarrierSpec(profit_take=width, stop_loss=width, max_holding=spec.horizon, time_label="sign")
    for j in range(m):
        close = np.ascontiguousarray(bars.close[:, j])
        if spec.kind == "forward":
            found = forward_return_labels(close, spec.horizon)
        else:
            found = triple_barrier_labels(close, daily_volatility(close, spec.vol_window), barrier)
        label[:, j], end[:, j], ret[:, j] = found.label, found.end, found.ret
    return LabelGrid(label, end, ret)


def training_rows(
    features: Mapping[str, np.ndarray],
    names: Sequence[str],
    labels: LabelGrid,
    first_row: int,
    side: np.ndarray | None = None,
) -> TrainingSet:
    """The pooled training rows: bars from ``first_row`` on whose features are finite and whose
    label is known.

    Parameters
    ----------
    features : mapping
        ``(n_bars, n_assets)`` feature columns.
    names : sequence of str
        Feature columns to use, in model order.
    labels : LabelGrid
    first_row : int
        First bar to learn from (the warm-up before it only settles features).
    side : (n_bars, n_assets) ndarray, optional
        Meta-labelling: the primary signal's side (+1/-1, 0 = no bet). Rows without a bet are
        dropped and the target becomes "the primary side was right".
    """
    from framework.ml.features import stack_rows
    from framework.ml.labels import average_uniqueness

    X, bar, asset = stack_rows(features, names)
    label = labels.label[bar, asset]
    keep = np.isfinite(X).all(axis=1) & np.isfinite(label) & (bar >= first_row)
    if side is not None:
        chosen = side[bar, asset]
        keep &= np.isfinite(chosen) & (chosen != 0)
        outcome = np.where(keep, np.sign(np.nan_to_num(chosen)) * np.nan_to_num(label), 0.0)
    else:
        outcome = np.nan_to_num(label)
    X, bar, asset, outcome = X[keep], bar[keep], asset[keep], outcome[keep]
    end = labels.end[bar, asset]
    ret = labels.ret[bar, asset]
    if side is not None:
        ret = ret * np.sign(side[bar, asset])
    n_bars = int(labels.label.shape[0])
    weight = average_uniqueness(bar.astype(np.int64), end.astype(np.int64), n_bars)
    # mean 1: uniqueness sets relative weights; the scale would change the regularisation
    weight = weight / weight.mean() if weight.size and weight.mean() > 0 else weight
    order = np.lexsort((asset, bar))  # time order (then asset): what the splitter expects
    return TrainingSet(
        X=X[order], y=(outcome[order] > 0).astype(np.int64), weight=weight[order],
        start=bar[order].astype(np.int64), end=end[order].astype(np.int64), ret=ret[order],
        feature_names=tuple(names),
    )
