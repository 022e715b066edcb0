"""Tests of framework.ml.labels: kernels against slow references, scenario tables, finality."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import DataError, ParameterError
from framework.ml.labels import (
    BarrierSpec,
    LabelSet,
    average_uniqueness,
    daily_volatility,
    forward_return_labels,
    triple_barrier_labels,
)

NAN = math.nan
FAST = settings(max_examples=60, deadline=None)


# ----------------------------------------------------------------------------- slow references


def ref_forward(close, h):
    n = len(close)
    label, end, ret = [NAN] * n, [-1] * n, [NAN] * n
    for i in range(n - h):
        a, b = close[i], close[i + h]
        if math.isnan(a) or math.isnan(b):
            continue
        r = b / a - 1.0
        label[i], end[i], ret[i] = (1.0 if r > 0 else -1.0), i + h, r
    return label, end, ret


def ref_triple(close, vol, spec):
    n = len(close)
    label, end, ret = [NAN] * n, [-1] * n, [NAN] * n
    for i in range(n):
        c0, v = close[i], vol[i]
        if math.isnan(c0) or math.isnan(v) or v == 0:
            continue
        up = c0 * (1.0 + spec.profit_take * v)
        lo = c0 * (1.0 - spec.stop_loss * v)
        decided = False
        for j in range(i + 1, i + spec.max_holding + 1):
            if j >= n:
                decided = True  # ran off the data: unknown
                break
            c = close[j]
            if math.isnan(c):
                continue
            if c >= up or c <= lo:
                label[i], end[i], ret[i] = (1.0 if c >= up else -1.0), j, c / c0 - 1.0
                decided = True
                break
        if decided:
            continue
        t = i + spec.max_holding
        if math.isnan(close[t]):
            continue
        r = close[t] / c0 - 1.0
        if spec.time_label == "zero":
            label[i] = 0.0
        else:
            label[i] = 1.0 if r > 0 else -1.0
        end[i], ret[i] = t, r
    return label, end, ret


def ref_volatility(close, window):
    n = len(close)
    r = [NAN] + [close[k] / close[k - 1] - 1.0 for k in range(1, n)]
    out = [NAN] * n
    for i in range(window, n):
        chunk = r[i - window + 1 : i + 1]
        if any(math.isnan(x) for x in chunk):
            continue
        mean = sum(chunk) / window
        out[i] = math.sqrt(sum((x - mean) ** 2 for x in chunk) / (window - 1))
    return out


def ref_uniqueness(start, end, n_bars):
    weights = []
    for s, e in zip(start, end, strict=True):
        if e < 0:
            weights.append(0.0)
            continue
        inv = []
        for t in range(s, e + 1):
            c = sum(1 for s2, e2 in zip(start, end, strict=True) if e2 >= 0 and s2 <= t <= e2)
            inv.append(1.0 / c)
        weights.append(sum(inv) / len(inv))
    return weights


def assert_labels_equal(got: LabelSet, label, end, ret) -> None:
    np.testing.assert_array_equal(got.label, np.array(label, dtype=float))
    np.testing.assert_array_equal(got.end, np.array(end, dtype=np.int64))
    np.testing.assert_allclose(got.ret, np.array(ret, dtype=float), rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- data strategies


@st.composite
def closes(draw, min_size=0, max_size=40, nan_prob=0.1):
    """Closes on a coarse grid (so barrier equalities and zero returns happen) with some NaNs."""
    size = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    steps = rng.integers(-3, 4, size)
    c = 100.0 + 0.5 * np.cumsum(steps)
    c = np.maximum(c, 1.0)
    c[rng.random(size) < nan_prob] = np.nan
    return c


@st.composite
def barrier_cases(draw):
    c = draw(closes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    vol = rng.choice([0.0, 0.005, 0.01, 0.02, 0.05, np.nan], size=c.shape[0])
    spec = BarrierSpec(
        profit_take=draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])),
        stop_loss=draw(st.sampled_from([0.5, 1.0, 2.0, 3.0])),
        max_holding=draw(st.integers(1, 8)),
        time_label=draw(st.sampled_from(["sign", "zero"])),
    )
    return c, vol, spec


# ----------------------------------------------------------------------------- forward labels


@FAST
@given(closes(), st.integers(1, 6))
def test_forward_labels_match_reference(c, h):
    assert_labels_equal(forward_return_labels(c, h), *ref_forward(list(c), h))


def test_forward_labels_edges():
    c = np.array([100.0, 101.0, 101.0, 100.0, NAN, 102.0, 103.0])
    got = forward_return_labels(c, 1)
    # up, flat (zero return is -1), down, into a NaN, out of a NaN, up, last row unknown
    np.testing.assert_array_equal(got.label, [1.0, -1.0, -1.0, NAN, NAN, 1.0, NAN])
    np.testing.assert_array_equal(got.end, [1, 2, 3, -1, -1, 6, -1])
    assert got.ret[1] == 0.0
    np.testing.assert_array_equal(got.known, [True, True, True, False, False, True, False])


def test_forward_labels_last_h_rows_unknown_and_short_series():
    got = forward_return_labels(np.linspace(100, 110, 10), 3)
    assert got.known.tolist() == [True] * 7 + [False] * 3
    np.testing.assert_array_equal(got.end[:7], np.arange(7) + 3)
    assert not forward_return_labels(np.array([100.0, 101.0]), 5).known.any()
    assert len(forward_return_labels(np.array([]), 1)) == 0


@pytest.mark.parametrize("horizon", [0, -2, 1.5, True, "3"])
def test_forward_labels_bad_horizon(horizon):
    with pytest.raises(ParameterError, match=f"horizon.*{horizon!r}"):
        forward_return_labels(np.ones(5), horizon)


# ----------------------------------------------------------------------------- triple barrier

# vol 0.25 with multiples 1.0 puts the barriers of a 100 close exactly at 125 and 75.
SCENARIOS = [
    # name, closes, vol at 0, spec kwargs, expected (label, end) of bar 0
    ("upper first", [100, 110, 125, 70], 0.25, {}, (1.0, 2)),
    ("lower first", [100, 90, 75, 130], 0.25, {}, (-1.0, 2)),
    ("above upper", [100, 130], 0.25, {}, (1.0, 1)),
    ("time sign up", [100, 110, 90, 101], 0.25, {"max_holding": 3}, (1.0, 3)),
    ("time sign down", [100, 110, 90, 99], 0.25, {"max_holding": 3}, (-1.0, 3)),
    ("time sign flat", [100, 110, 90, 100], 0.25, {"max_holding": 3}, (-1.0, 3)),
    ("time zero", [100, 110, 90, 101], 0.25, {"max_holding": 3, "time_label": "zero"}, (0.0, 3)),
    ("touch after time barrier ignored", [100, 110, 124, 130], 0.25, {"max_holding": 2}, (1.0, 2)),
    ("data ends early", [100, 110, 90], 0.25, {"max_holding": 3}, (NAN, -1)),
    ("data ends after touch", [100, 126], 0.25, {"max_holding": 5}, (1.0, 1)),
    ("NaN vol", [100, 130, 130], NAN, {}, (NAN, -1)),
    ("zero vol", [100, 130, 130], 0.0, {}, (NAN, -1)),
    ("NaN inside walk skipped", [100, NAN, 70], 0.25, {}, (-1.0, 2)),
    ("NaN at time barrier", [100, 110, NAN], 0.25, {"max_holding": 2}, (NAN, -1)),
    ("asymmetric barriers", [100, 112.5], 0.25, {"profit_take": 0.5, "stop_loss": 3.0}, (1.0, 1)),
]


@pytest.mark.parametrize(
    ("name", "c", "v0", "kwargs", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS]
)
def test_triple_barrier_scenarios(name, c, v0, kwargs, expected):
    close = np.array(c, dtype=float)
    vol = np.full(close.shape[0], 0.25)
    vol[0] = v0
    spec = BarrierSpec(**{"profit_take": 1.0, "stop_loss": 1.0, **kwargs})
    got = triple_barrier_labels(close, vol, spec)
    label, end = expected
    np.testing.assert_array_equal(got.label[0], label)
    assert got.end[0] == end
    if end >= 0:
        assert got.ret[0] == pytest.approx(close[end] / close[0] - 1.0, abs=0)
    else:
        assert math.isnan(got.ret[0])


def test_triple_barrier_never_uses_missing_bars():
    close = np.array([100.0, 101.0, 102.0, 103.0, 104.0])
    got = triple_barrier_labels(close, np.full(5, 0.25), BarrierSpec(1.0, 1.0, max_holding=3))
    # only bar 0 and 1 have their time barrier inside the data; none touches +-25 %
    np.testing.assert_array_equal(got.label, [1.0, 1.0, NAN, NAN, NAN])
    np.testing.assert_array_equal(got.end, [3, 4, -1, -1, -1])


@FAST
@given(barrier_cases())
def test_triple_barrier_matches_reference(case):
    c, vol, spec = case
    assert_labels_equal(triple_barrier_labels(c, vol, spec), *ref_triple(list(c), list(vol), spec))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"profit_take": 0.0}, "profit_take.*0.0"),
        ({"profit_take": -1.0}, "profit_take.*-1.0"),
        ({"stop_loss": float("nan")}, "stop_loss.*nan"),
        ({"stop_loss": "2"}, "stop_loss.*'2'"),
        ({"max_holding": 0}, "max_holding.*0"),
        ({"max_holding": 2.5}, "max_holding.*2.5"),
        ({"time_label": "signs"}, "time_label 'signs'.*Did you mean 'sign'"),
    ],
)
def test_barrier_spec_rejects_bad_values(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        BarrierSpec(**kwargs)


def test_triple_barrier_rejects_bad_inputs():
    close = np.array([100.0, 101.0, 102.0])
    with pytest.raises(DataError, match=r"volatility must have the shape of close \(3,\)"):
        triple_barrier_labels(close, np.ones(2))
    with pytest.raises(DataError, match=r"volatility\[1\] = -0.1"):
        triple_barrier_labels(close, np.array([0.1, -0.1, 0.1]))
    with pytest.raises(DataError, match=r"close\[2\] = 0.0"):
        triple_barrier_labels(np.array([100.0, 101.0, 0.0]), np.ones(3))
    with pytest.raises(DataError, match=r"close must be 1-D.*\(3, 1\)"):
        triple_barrier_labels(close[:, None], np.ones(3))
    with pytest.raises(ParameterError, match="must be a BarrierSpec; got dict"):
        triple_barrier_labels(close, np.ones(3), {"max_holding": 2})


# ----------------------------------------------------------------------------- finality


@FAST
@given(barrier_cases(), st.data())
def test_triple_barrier_label_known_on_prefix_is_final(case, data):
    c, vol, spec = case
    k = data.draw(st.integers(0, c.shape[0]))
    full = triple_barrier_labels(c, vol, spec)
    part = triple_barrier_labels(c[:k], vol[:k], spec)
    assert_prefix_final(part, full, k)


@FAST
@given(closes(min_size=1), st.integers(1, 6), st.data())
def test_forward_label_known_on_prefix_is_final(c, h, data):
    k = data.draw(st.integers(0, c.shape[0]))
    assert_prefix_final(forward_return_labels(c[:k], h), forward_return_labels(c, h), k)


@FAST
@given(closes(min_size=1, nan_prob=0.05), st.data())
def test_barriers_on_daily_volatility_are_final(c, data):
    # the whole pipeline (causal vol -> labels) on a prefix agrees with the full series
    k = data.draw(st.integers(0, c.shape[0]))
    spec = BarrierSpec(1.0, 1.0, max_holding=4)
    full = triple_barrier_labels(c, daily_volatility(c, 3), spec)
    part = triple_barrier_labels(c[:k], daily_volatility(c[:k], 3), spec)
    assert_prefix_final(part, full, k)


def assert_prefix_final(part: LabelSet, full: LabelSet, k: int) -> None:
    known = part.known
    # a label known on the prefix is known, and identical, on the full series ...
    assert full.known[:k][known].all()
    np.testing.assert_array_equal(part.label[known], full.label[:k][known])
    np.testing.assert_array_equal(part.end[known], full.end[:k][known])
    np.testing.assert_array_equal(part.ret[known], full.ret[:k][known])
    # ... and was resolved strictly after its bar with bars that exist in the prefix
    idx = np.flatnonzero(known)
    assert ((part.end[known] > idx) & (part.end[known] < k)).all()
    assert (part.end[~known] == -1).all() and np.isnan(part.ret[~known]).all()


# ----------------------------------------------------------------------------- volatility


@FAST
@given(closes(nan_prob=0.05), st.integers(2, 6))
def test_daily_volatility_matches_reference(c, window):
    got = daily_volatility(c, window)
    np.testing.assert_allclose(got, ref_volatility(list(c), window), rtol=1e-9, atol=1e-14)


def test_daily_volatility_warm_up_and_causality():
    c = 100.0 * np.cumprod(1.0 + np.random.default_rng(1).normal(0, 0.01, 60))
    vol = daily_volatility(c, window=20)
    assert np.isnan(vol[:20]).all() and np.isfinite(vol[20:]).all()
    np.testing.assert_array_equal(daily_volatility(c[:35], 20), vol[:35])
    returns = c[1:21] / c[:20] - 1.0
    assert vol[20] == pytest.approx(np.std(returns, ddof=1), rel=1e-12)


@pytest.mark.parametrize("window", [1, 0, 2.0, None])
def test_daily_volatility_bad_window(window):
    with pytest.raises(ParameterError, match=f"window.*{window!r}"):
        daily_volatility(np.ones(30), window)


# ----------------------------------------------------------------------------- uniqueness


@st.composite
def spans(draw):
    n_bars = draw(st.integers(1, 30))
    m = draw(st.integers(0, 25))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    start = rng.integers(0, n_bars, m)
    end = np.minimum(start + rng.integers(0, 6, m), n_bars - 1)
    end[rng.random(m) < 0.2] = -1
    return start, end, n_bars


@FAST
@given(spans())
def test_average_uniqueness_matches_reference(case):
    start, end, n_bars = case
    got = average_uniqueness(start, end, n_bars)
    np.testing.assert_allclose(
        got, ref_uniqueness(start.tolist(), end.tolist(), n_bars), rtol=1e-12
    )
    assert ((got >= 0) & (got <= 1)).all()
    assert (got[end < 0] == 0).all() and (got[end >= 0] > 0).all()


def test_uniqueness_of_disjoint_spans_is_one():
    got = average_uniqueness(np.array([0, 3, 4, 8]), np.array([2, 3, 7, 9]), 10)
    np.testing.assert_array_equal(got, [1.0, 1.0, 1.0, 1.0])


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_uniqueness_of_k_identical_spans_is_one_over_k(k):
    # several assets pooled on one bar axis share starts and ends
    got = average_uniqueness(np.full(k, 2), np.full(k, 6), 10)
    np.testing.assert_allclose(got, np.full(k, 1.0 / k), rtol=1e-15)


def test_uniqueness_partial_overlap_and_unknown_labels():
    # spans [0,1] and [1,2]: bar 1 shared -> (1 + 1/2) / 2 each; the unknown one is ignored
    got = average_uniqueness(np.array([0, 1, 0]), np.array([1, 2, -1]), 3)
    np.testing.assert_allclose(got, [0.75, 0.75, 0.0])


def test_uniqueness_from_label_set():
    labels = forward_return_labels(np.array([100.0, 101.0, 99.0, 102.0, 103.0]), 2)
    got = average_uniqueness(np.arange(len(labels)), labels.end, len(labels))
    # spans [0,2], [1,3], [2,4]; last two labels unknown
    expected = [(1 + 1 / 2 + 1 / 3) / 3, (1 / 2 + 1 / 3 + 1 / 2) / 3, (1 / 3 + 1 / 2 + 1) / 3, 0, 0]
    np.testing.assert_allclose(got, expected)


@pytest.mark.parametrize(
    ("start", "end", "n_bars", "error", "match"),
    [
        ([0, 3], [2, 1], 5, DataError, "sample 1 has start=3, end=1"),
        ([0, 1], [2, 5], 5, DataError, "sample 1 has start=1, end=5.*n_bars=5"),
        ([-1], [2], 5, DataError, "sample 0 has start=-1"),
        ([0, 1], [2], 5, DataError, "one length; got 2 and 1"),
        ([0.5], [2], 5, DataError, "start must hold integer bar indices"),
        ([0], [2], -1, ParameterError, "n_bars.*-1"),
    ],
)
def test_uniqueness_rejects_bad_input(start, end, n_bars, error, match):
    with pytest.raises(error, match=match):
        average_uniqueness(np.array(start), np.array(end), n_bars)


# ----------------------------------------------------------------------------- LabelSet


def test_label_set_is_read_only_and_checks_shapes():
    labels = LabelSet(label=[1.0, NAN], end=[1, -1], ret=[0.1, NAN])
    assert labels.known.tolist() == [True, False]
    assert labels.end.dtype == np.int64
    with pytest.raises(ValueError, match="read-only"):
        labels.label[0] = -1.0
    with pytest.raises(DataError, match="one length"):
        LabelSet(label=[1.0], end=[1, 2], ret=[0.1])
