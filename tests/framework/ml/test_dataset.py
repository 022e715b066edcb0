"""Bars -> labels -> training rows: the label grid, the rows kept and meta-labelling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framework.errors import ParameterError
from framework.ml.dataset import LabelGrid, LabelSpec, label_grid, training_rows
from framework.ml.labels import (
    BarrierSpec,
    average_uniqueness,
    daily_volatility,
    forward_return_labels,
    triple_barrier_labels,
)
from framework.types import Bars
from tests.barsgen import make_bars


def _with_late_listing(bars: Bars, asset: int, first: int) -> Bars:
    """``bars`` where ``asset`` has no bars (NaN) before row ``first`` (listed later)."""
    arrays = {}
    for name in ("open", "high", "low", "close", "volume"):
        values = getattr(bars, name).copy()
        values[:first, asset] = np.nan
        arrays[name] = values
    return Bars(index=bars.index, symbols=bars.symbols, **arrays)


# -- label grid -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec",
    [LabelSpec(kind="forward", horizon=5),
     LabelSpec(kind="triple_barrier", horizon=10, barrier=1.0, vol_window=20),
     LabelSpec(kind="triple_barrier", horizon=3, barrier=0.5, vol_window=5)],
)
def test_label_grid_equals_the_label_functions_asset_by_asset(spec):
    bars = _with_late_listing(make_bars(n=200, m=3, seed=4), asset=2, first=40)
    grid = label_grid(bars, spec)
    assert grid.label.shape == grid.end.shape == grid.ret.shape == (200, 3)
    width = spec.barrier * math.sqrt(spec.horizon)
    barrier = BarrierSpec(profit_take=width, stop_loss=width, max_holding=spec.horizon,
                          time_label="sign")
    for j in range(3):
        close = bars.close[:, j].copy()
        if spec.kind == "forward":
            expected = forward_return_labels(close, spec.horizon)
        else:
            expected = triple_barrier_labels(close, daily_volatility(close, spec.vol_window), barrier)
        np.testing.assert_array_equal(grid.label[:, j], expected.label)
        np.testing.assert_array_equal(grid.end[:, j], expected.end)
        np.testing.assert_array_equal(grid.ret[:, j], expected.ret)
    # the late-listed asset has no labels before it trades; the tail of each is unknown
    assert np.isnan(grid.label[:40, 2]).all() and (grid.end[:40, 2] == -1).all()
    assert np.isnan(grid.label[-1]).all()


def test_label_grid_uses_only_the_bars_given():
    # a label known on a prefix is final: labelling bars[:k] agrees wherever it is known
    bars = make_bars(n=150, m=2, seed=8)
    spec = LabelSpec(horizon=5)
    full, part = label_grid(bars, spec), label_grid(bars.iloc(slice(0, 100)), spec)
    known = np.isfinite(part.label)
    np.testing.assert_array_equal(part.label[known], full.label[:100][known])
    assert (part.end[known] < 100).all()


# -- training rows ----------------------------------------------------------------------------
N_BARS, N_ASSETS = 30, 2


def _toy():
    """Features and labels with holes in known places (bar b, asset a)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(N_BARS, N_ASSETS))
    b = rng.normal(size=(N_BARS, N_ASSETS))
    a[:3] = np.nan  # feature warm-up
    a[10, 0] = np.nan  # a missing feature on one asset
    b[12, 1] = np.inf
    label = np.where(rng.random((N_BARS, N_ASSETS)) < 0.5, 1.0, -1.0)
    end = np.minimum(np.arange(N_BARS)[:, None] + 2, N_BARS - 1) + np.zeros((1, N_ASSETS), int)
    ret = np.where(label > 0, 0.01, -0.02) * (1 + rng.random((N_BARS, N_ASSETS)))
    label[-2:] = np.nan  # unresolved tail
    end[-2:] = -1
    ret[-2:] = np.nan
    label[15, 1], end[15, 1], ret[15, 1] = np.nan, -1, np.nan  # one unknown label
    return {"a": a, "b": b, "unused": np.zeros((N_BARS, N_ASSETS))}, LabelGrid(label, end, ret)


def _expected_cells(feats, labels, first_row, side=None):
    cells = []
    for bar in range(first_row, N_BARS):
        for asset in range(N_ASSETS):
            finite = all(np.isfinite(feats[n][bar, asset]) for n in ("a", "b"))
            ok = finite and np.isfinite(labels.label[bar, asset])
            if side is not None:
                ok = ok and np.isfinite(side[bar, asset]) and side[bar, asset] != 0
            if ok:
                cells.append((bar, asset))
    return cells


@pytest.mark.parametrize("first_row", [0, 5])
def test_training_rows_keep_exactly_the_usable_cells_in_time_order(first_row):
    feats, labels = _toy()
    rows = training_rows(feats, ["b", "a"], labels, first_row)
    cells = _expected_cells(feats, labels, first_row)
    assert rows.n_samples == len(cells)
    assert rows.feature_names == ("b", "a")
    # time order first, then asset: what the purged splitter expects
    assert [(int(s), a) for s, (_, a) in zip(rows.start, cells, strict=True)] == cells
    assert (np.diff(rows.start) >= 0).all()
    for k, (bar, asset) in enumerate(cells):
        np.testing.assert_array_equal(rows.X[k], [feats["b"][bar, asset], feats["a"][bar, asset]])
        assert rows.y[k] == (labels.label[bar, asset] > 0)
        assert rows.end[k] == labels.end[bar, asset]
        assert rows.ret[k] == labels.ret[bar, asset]
    assert np.isfinite(rows.X).all() and set(np.unique(rows.y)) <= {0, 1}
    assert (rows.start >= first_row).all()


def test_training_rows_weights_are_uniqueness_scaled_to_mean_one():
    feats, labels = _toy()
    rows = training_rows(feats, ["a", "b"], labels, 5)
    assert math.isclose(rows.weight.mean(), 1.0, rel_tol=1e-12)
    raw = average_uniqueness(rows.start, rows.end, N_BARS)
    np.testing.assert_allclose(rows.weight, raw / raw.mean(), rtol=1e-12)
    # overlapping labels (2 assets x 3-bar spans) weigh less than 1 before scaling
    assert (raw < 1).all()


def test_meta_labels_keep_bets_only_and_ask_whether_the_side_was_right():
    feats, labels = _toy()
    rng = np.random.default_rng(1)
    side = rng.choice([-1.0, 0.0, 1.0], size=(N_BARS, N_ASSETS))
    side[20, 0] = np.nan  # no primary signal at all
    rows = training_rows(feats, ["a", "b"], labels, 5, side=side)
    cells = _expected_cells(feats, labels, 5, side)
    assert 0 < rows.n_samples == len(cells) < len(_expected_cells(feats, labels, 5))
    for k, (bar, asset) in enumerate(cells):
        assert rows.start[k] == bar
        # y = 1 when the primary side agrees with what happened
        assert rows.y[k] == (side[bar, asset] * labels.label[bar, asset] > 0)
        # the realised return is the side's return (a right short earns the fall)
        assert rows.ret[k] == side[bar, asset] * labels.ret[bar, asset]
    right = rows.y == 1
    assert (rows.ret[right] > 0).all() and (rows.ret[~right] < 0).all()


def test_all_long_side_meta_labels_equal_plain_labels():
    feats, labels = _toy()
    plain = training_rows(feats, ["a", "b"], labels, 5)
    meta = training_rows(feats, ["a", "b"], labels, 5, side=np.ones((N_BARS, N_ASSETS)))
    for name in ("X", "y", "weight", "start", "end", "ret"):
        np.testing.assert_array_equal(getattr(meta, name), getattr(plain, name))


def test_no_usable_rows_gives_an_empty_set():
    feats, labels = _toy()
    rows = training_rows(feats, ["a", "b"], labels, N_BARS)
    assert rows.n_samples == 0 and rows.X.shape == (0, 2)


def test_training_rows_from_real_features_and_labels():
    # end to end on generated bars with two assets, one listed late
    from framework.ml.features import FeatureSpec, feature_names, ml_features

    bars = _with_late_listing(make_bars(n=320, m=2, seed=2), asset=1, first=100)
    spec = FeatureSpec()
    feats = ml_features(bars, spec)
    labels = label_grid(bars, LabelSpec(horizon=5))
    rows = training_rows(feats, feature_names(spec), labels, 0)
    assert np.isfinite(rows.X).all()
    assert (rows.end > rows.start).all() and (rows.end < bars.n_bars).all()
    # asset 1's rows start once its features have warmed up after the listing
    assert rows.n_samples > 0 and (np.diff(rows.start) >= 0).all()


# -- label spec -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "tripple_barrier"}, r"unknown label 'tripple_barrier'\. Did you mean 'triple_barrier'\?"),
        ({"horizon": 0}, r"label horizon must be >= 1 bar; got 0"),
        ({"barrier": 0.0}, r"label barrier must be > 0 volatility units; got 0\.0"),
        ({"barrier": float("nan")}, r"label barrier must be > 0"),
        ({"vol_window": 1}, r"label vol_window must be >= 2 returns; got 1"),
    ],
)
def test_label_spec_rejects_bad_values(changes, message):
    with pytest.raises(ParameterError, match=message):
        LabelSpec(**changes)


def test_label_spec_defaults():
    spec = LabelSpec()
    assert (spec.kind, spec.horizon, spec.barrier, spec.vol_window) == ("triple_barrier", 10, 1.0, 20)
