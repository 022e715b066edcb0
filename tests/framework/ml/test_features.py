"""The ML feature set: causal, scale-free, warm-up exact, stacked in a documented order."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import DataError, ParameterError
from framework.lookahead import perturb_after
from framework.ml.features import (
    FeatureSpec,
    feature_names,
    feature_warmup,
    feature_warmups,
    ml_features,
    stack_rows,
)
from framework.types import FIELDS, Bars
from tests.barsgen import bars_strategy, make_bars

# short windows so that hypothesis' 80..400-bar draws reach past the warm-up
SMALL = FeatureSpec(return_horizons=(1, 3, 10), volatility_window=5, rsi_window=6,
                    macd=(3, 8, 4), adx_window=5, band_window=7, channel_window=9,
                    volume_window=6, long_volatility_window=15, atr_window=4, trend_window=30)
SPECS = (FeatureSpec(), SMALL, FeatureSpec(trend_window=None, day_of_week=False))


def _with(bars: Bars, **arrays: np.ndarray) -> Bars:
    fields = {name: arrays.get(name, getattr(bars, name)) for name in FIELDS}
    return Bars(index=bars.index, symbols=bars.symbols, **fields)


def _assert_same(left: dict, right: dict, rows: slice = slice(None)) -> None:
    assert list(left) == list(right)
    for name in left:
        np.testing.assert_array_equal(left[name][rows], right[name][rows], err_msg=name)


# -- causality ---------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(bars=bars_strategy(), cut=st.floats(0.05, 1.0), which=st.integers(0, len(SPECS) - 1))
def test_prefix_invariance_is_exact(bars, cut, which):
    spec = SPECS[which]
    k = max(1, int(cut * bars.n_bars))
    full = ml_features(bars, spec)
    prefix = ml_features(bars.iloc(slice(0, k)), spec)
    _assert_same(prefix, full, slice(0, k))


@settings(max_examples=25, deadline=None)
@given(bars=bars_strategy(), cut=st.floats(0.0, 0.95), seed=st.integers(0, 1000))
def test_future_blindness(bars, cut, seed):
    k = int(cut * (bars.n_bars - 1))
    full = ml_features(bars, SMALL)
    changed = ml_features(perturb_after(bars, k, seed=seed), SMALL)
    _assert_same(changed, full, slice(0, k + 1))
    # the perturbation is real: the next bar's one-bar return moves
    assert not np.array_equal(changed["ret_1"][k + 1], full["ret_1"][k + 1])


def test_late_listing_matches_history_starting_at_listing():
    bars = make_bars(n=360, m=2, seed=3)
    listed = 70
    arrays = {name: getattr(bars, name).copy() for name in FIELDS}
    for name in FIELDS:
        arrays[name][:listed, 1] = np.nan
    late = ml_features(_with(bars, **arrays), SMALL)
    alone = ml_features(bars.iloc(slice(listed, bars.n_bars)), SMALL)
    for name in late:
        assert np.isnan(late[name][:listed, 1]).all() or name.startswith("dow"), name
        np.testing.assert_array_equal(late[name][listed:, 1], alone[name][:, 1], err_msg=name)


# -- warm-up -----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", SPECS)
def test_finite_after_warmup_and_warmups_are_tight(spec):
    bars = make_bars(n=450, m=3, seed=11, vol=0.02)
    feats = ml_features(bars, spec)
    assert tuple(feats) == feature_names(spec)
    warm = feature_warmup(spec)
    assert warm == max(feature_warmups(spec).values())
    for name, first in feature_warmups(spec).items():
        col = feats[name]
        assert col.shape == (bars.n_bars, bars.n_assets) and col.dtype == np.float64
        assert np.isfinite(col[warm:]).all(), name
        assert np.isfinite(col[first:]).all(), name
        if first > 0:
            assert np.isnan(col[first - 1]).all(), name
    assert not np.isfinite(np.column_stack([feats[n][warm - 1] for n in feats])).all()


def test_default_warmup_is_the_trend_sma():
    assert feature_warmup(FeatureSpec()) == 199
    assert feature_warmup(FeatureSpec(trend_window=None)) == 100
    assert feature_warmup(FeatureSpec(trend_window=None, long_volatility_window=30,
                                      return_horizons=(1, 5))) == 33


def test_short_history_gives_nan_not_an_error():
    bars = make_bars(n=5, m=2)
    feats = ml_features(bars, FeatureSpec())
    assert np.isnan(feats["sma_distance"]).all() and np.isnan(feats["ret_60"]).all()
    assert np.isfinite(feats["ret_1"][1:]).all()


# -- meaning and scale -------------------------------------------------------------------------


@settings(max_examples=15, deadline=None)
@given(bars=bars_strategy(min_n=250), factor=st.sampled_from([10.0, 1e-3, 37.5]))
def test_scale_free_in_price(bars, factor):
    scaled = _with(bars, **{n: getattr(bars, n) * factor for n in ("open", "high", "low", "close")})
    base, other = ml_features(bars, FeatureSpec()), ml_features(scaled, FeatureSpec())
    for name in base:
        np.testing.assert_allclose(other[name], base[name], rtol=1e-9, atol=1e-9,
                                   equal_nan=True, err_msg=name)


def test_features_match_slow_references():
    bars = make_bars(n=300, m=2, seed=5)
    spec = SMALL
    feats = ml_features(bars, spec)
    close = pd.DataFrame(bars.close)
    log_ret = np.log(close / close.shift(1))
    for h in spec.return_horizons:
        expected = np.log(close / close.shift(h)).to_numpy()
        np.testing.assert_allclose(feats[f"ret_{h}"], expected, rtol=1e-12, atol=1e-14,
                                   equal_nan=True)
    vol = log_ret.rolling(spec.volatility_window).std(ddof=1)
    np.testing.assert_allclose(feats["vol"], vol.to_numpy(), rtol=1e-9, equal_nan=True)
    long_vol = log_ret.rolling(spec.long_volatility_window).std(ddof=1)
    np.testing.assert_allclose(feats["vol_ratio"], (vol / long_vol).to_numpy(), rtol=1e-9,
                               equal_nan=True)
    hi = pd.DataFrame(bars.high).rolling(spec.channel_window).max()
    lo = pd.DataFrame(bars.low).rolling(spec.channel_window).min()
    np.testing.assert_allclose(feats["donchian_position"], ((close - lo) / (hi - lo)).to_numpy(),
                               rtol=1e-9, equal_nan=True)
    log_vol = pd.DataFrame(np.log1p(bars.volume)).rolling(spec.volume_window)
    z = (np.log1p(bars.volume) - log_vol.mean()) / log_vol.std(ddof=0)
    np.testing.assert_allclose(feats["volume_z"], z.to_numpy(), rtol=1e-7, atol=1e-9,
                               equal_nan=True)
    sma = close.rolling(spec.trend_window).mean()
    np.testing.assert_allclose(feats["sma_distance"], np.log(close / sma).to_numpy(), rtol=1e-9,
                               atol=1e-12, equal_nan=True)
    warm = feature_warmup(spec)
    for name, low, high in (("rsi", -1, 1), ("adx", 0, 1), ("di_spread", -1, 1),
                            ("donchian_position", 0, 1)):
        col = feats[name][warm:]
        assert ((col >= low) & (col <= high)).all(), name


def test_flat_market_features_are_neutral_and_finite():
    bars = make_bars(n=260, m=2, seed=1)
    flat = np.full(bars.close.shape, 50.0)
    quiet = _with(bars, open=flat, high=flat, low=flat, close=flat,
                  volume=np.zeros(bars.close.shape))
    feats = ml_features(quiet, FeatureSpec())
    warm = feature_warmup(FeatureSpec())
    for name in feats:
        assert np.isfinite(feats[name][warm:]).all(), name
    for name, value in (("bb_percent_b", 0.5), ("donchian_position", 0.5), ("vol_ratio", 1.0),
                        ("volume_z", 0.0), ("ret_5", 0.0), ("sma_distance", 0.0),
                        ("macd_hist", 0.0), ("atr_ratio", 0.0)):
        np.testing.assert_array_equal(feats[name][warm:], value, err_msg=name)


def test_nan_price_row_gives_nan_without_error():
    bars = make_bars(n=300, m=1, seed=2)
    close = bars.close.copy()
    close[150, 0] = np.nan
    feats = ml_features(_with(bars, close=close), SMALL)
    for name in feats:
        if not name.startswith(("dow", "volume")):
            assert np.isnan(feats[name][150, 0]), name
    # a return is missing where either end is missing, not in between
    ret_10 = feats["ret_10"][:, 0]
    assert np.isnan(ret_10[160]) and np.isfinite(ret_10[159]) and np.isfinite(ret_10[161])
    assert np.isfinite(feats["ret_1"][152, 0])


def test_day_of_week_uses_new_york_time():
    stamps = pd.DatetimeIndex([
        "2024-01-08 21:00",  # Monday 16:00 EST
        "2024-01-09 04:30",  # still Monday 23:30 EST (Tuesday in UTC)
        "2024-01-12 21:00",  # Friday
        "2024-07-08 04:30",  # Monday 00:30 EDT (would be Sunday on EST: DST is honoured)
        "2024-07-14 15:00",  # Sunday
    ], tz="UTC")
    expected_day = np.array([0, 0, 4, 0, 6], dtype=np.float64)
    n, m = len(stamps), 2
    ones = np.ones((n, m))
    bars = Bars(index=stamps, symbols=("A", "B"), open=ones, high=ones, low=ones, close=ones,
                volume=ones)
    feats = ml_features(bars, FeatureSpec())
    angle = 2 * math.pi * expected_day / 7
    for j in range(m):
        np.testing.assert_allclose(feats["dow_sin"][:, j], np.sin(angle), atol=1e-15)
        np.testing.assert_allclose(feats["dow_cos"][:, j], np.cos(angle), atol=1e-15)
    assert "dow_sin" not in ml_features(bars, FeatureSpec(day_of_week=False))


# -- stack_rows --------------------------------------------------------------------------------


def test_stack_rows_is_asset_by_asset():
    n, m = 6, 3
    feats = {"a": np.arange(n * m, dtype=float).reshape(n, m), "b": -np.ones((n, m))}
    X, bar, asset = stack_rows(feats, ["a", "b"])
    assert X.shape == (n * m, 2) and X.dtype == np.float64
    np.testing.assert_array_equal(bar, np.tile(np.arange(n), m))
    np.testing.assert_array_equal(asset, np.repeat(np.arange(m), n))
    np.testing.assert_array_equal(X[:, 0], feats["a"][bar, asset])
    np.testing.assert_array_equal(X[:n, 0], feats["a"][:, 0])  # first block = asset 0
    assert bar.dtype == np.int64 and asset.dtype == np.int64


@pytest.mark.parametrize("rows, expected", [
    (slice(2, 5), [2, 3, 4]),
    (np.array([5, 0, -1]), [5, 0, 7]),
    (np.arange(8) % 3 == 0, [0, 3, 6]),
    (np.array([], dtype=np.int64), []),
])
def test_stack_rows_selects_rows(rows, expected):
    feats = ml_features(make_bars(n=8, m=2), FeatureSpec())
    names = feature_names(FeatureSpec())
    X, bar, asset = stack_rows(feats, names, rows)
    assert X.shape == (2 * len(expected), len(names))
    np.testing.assert_array_equal(bar, np.tile(expected, 2))
    for k, name in enumerate(names):
        np.testing.assert_array_equal(X[:, k], feats[name][bar, asset])


def test_stack_rows_on_real_features_keeps_name_order():
    feats = ml_features(make_bars(n=120, m=2), SMALL)
    names = ("rsi", "ret_1")
    X, bar, asset = stack_rows(feats, names)
    np.testing.assert_array_equal(X[:, 0], feats["rsi"][bar, asset])
    np.testing.assert_array_equal(X[:, 1], feats["ret_1"][bar, asset])


def test_stack_rows_accepts_one_dimensional_columns():
    X, bar, asset = stack_rows({"x": np.arange(4.0)}, ["x"])
    np.testing.assert_array_equal(X[:, 0], np.arange(4.0))
    assert set(asset) == {0} and list(bar) == [0, 1, 2, 3]


@pytest.mark.parametrize("names, rows, error, words", [
    (["rsu"], None, ParameterError, "Did you mean 'rsi'"),
    ([], None, ParameterError, "non-empty"),
    ("rsi", None, ParameterError, "non-empty"),
    (["rsi", "short"], None, DataError, "same-shaped"),
    (["rsi"], np.array([True, False]), ParameterError, "mask"),
    (["rsi"], np.array([10]), ParameterError, "must lie in"),
    (["rsi"], np.array([0.5]), ParameterError, "integer positions"),
])
def test_stack_rows_rejects_bad_input(names, rows, error, words):
    feats = {"rsi": np.zeros((5, 2)), "short": np.zeros((4, 2))}
    with pytest.raises(error, match=words):
        stack_rows(feats, names, rows)


# -- spec validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, words", [
    ({"return_horizons": [1, 5]}, "return_horizons must be a tuple"),
    ({"return_horizons": (1, 0)}, "return_horizons must be an integer >= 1; got 0"),
    ({"return_horizons": (5, 5)}, "repeated horizon"),
    ({"volatility_window": 1}, "volatility_window must be an integer >= 2; got 1"),
    ({"rsi_window": 2.5}, "rsi_window"),
    ({"macd": (26, 12, 9)}, "fast < slow"),
    ({"macd": (12, 26)}, r"macd must be a tuple \(fast, slow, signal\)"),
    ({"adx_window": True}, "adx_window"),
    ({"band_window": 1}, "band_window"),
    ({"band_width": 0.0}, "band_width must be a finite number > 0 .standard deviations.; got 0.0"),
    ({"band_width": float("nan")}, "band_width"),
    ({"channel_window": 0}, "channel_window"),
    ({"volume_window": 1}, "volume_window"),
    ({"day_of_week": 1}, "day_of_week must be True or False"),
    ({"long_volatility_window": 20}, "long_volatility_window .20. must exceed"),
    ({"atr_window": 0}, "atr_window"),
    ({"trend_window": 1}, "trend_window must be an integer >= 2"),
])
def test_bad_spec_names_the_field(kwargs, words):
    with pytest.raises(ParameterError, match=words):
        FeatureSpec(**kwargs)


def test_ml_features_rejects_wrong_argument_types():
    bars = make_bars(n=30)
    with pytest.raises(ParameterError, match="FeatureSpec"):
        ml_features(bars, {"rsi_window": 14})
    with pytest.raises(DataError, match="Bars"):
        ml_features(bars.close, FeatureSpec())
