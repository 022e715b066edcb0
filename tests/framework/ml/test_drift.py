"""Tests for framework.ml.drift: baseline, PSI, rolling hit rate, assessment."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import DataError, ParameterError
from framework.ml.drift import (
    DriftReport,
    DriftSpec,
    FeatureBaseline,
    FeatureBins,
    assess_drift,
    population_stability_index,
    rolling_hit_rate,
)

# --------------------------------------------------------------------------------------------
# Slow references
# --------------------------------------------------------------------------------------------


def slow_hit_rate(
    predicted: list[float], realised: list[float], window: int, min_pairs: int | None = None
) -> list[float]:
    """Obvious loop: at each bar, collect the known pairs so far and average the last ``window``."""
    out = []
    for i in range(len(predicted)):
        pairs = [
            (p, r)
            for p, r in zip(predicted[: i + 1], realised[: i + 1], strict=True)
            if not math.isnan(p) and not math.isnan(r)
        ]
        need = max(window // 2, 1) if min_pairs is None else min_pairs
        if len(pairs) < need:
            out.append(math.nan)
            continue
        last = pairs[-window:]
        out.append(sum(1 for p, r in last if p == r) / len(last))
    return out


def slow_psi(e: list[float], a: list[float], floor: float = 1e-4) -> float:
    total = 0.0
    for x, y in zip(e, a, strict=True):
        x, y = max(x, floor), max(y, floor)
        total += (y - x) * math.log(y / x)
    return total


# --------------------------------------------------------------------------------------------
# population_stability_index
# --------------------------------------------------------------------------------------------


def test_psi_two_bins_hand_computed() -> None:
    # (0.8-0.5)ln(0.8/0.5) + (0.2-0.5)ln(0.2/0.5) = 0.3*ln(1.6) + 0.3*ln(2.5) = 0.3*ln(4)
    got = population_stability_index(np.array([0.5, 0.5]), np.array([0.8, 0.2]))
    assert got == pytest.approx(0.3 * math.log(4.0), rel=1e-12)


def test_psi_identical_is_zero() -> None:
    e = np.array([0.1, 0.2, 0.3, 0.4])
    assert population_stability_index(e, e) == 0.0


def test_psi_floor_keeps_empty_bins_finite() -> None:
    got = population_stability_index(np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    assert math.isfinite(got)
    assert got == pytest.approx(slow_psi([0.5, 0.5], [1.0, 0.0]))
    # a larger floor caps the empty bin harder
    assert population_stability_index(np.array([0.5, 0.5]), np.array([1.0, 0.0]), 0.01) < got


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12).flatmap(
        lambda e: st.tuples(
            st.just(e), st.lists(st.floats(0.0, 1.0), min_size=len(e), max_size=len(e))
        )
    )
)
def test_psi_non_negative_and_matches_reference(pair: tuple[list[float], list[float]]) -> None:
    e, a = pair
    got = population_stability_index(np.array(e), np.array(a))
    assert got >= 0.0
    assert got == pytest.approx(max(slow_psi(e, a), 0.0), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize(
    ("e", "a", "floor", "exc"),
    [
        ([0.5, 0.5], [1.0], 1e-4, DataError),
        ([], [], 1e-4, DataError),
        ([0.5, -0.1], [0.5, 0.5], 1e-4, DataError),
        ([0.5, math.nan], [0.5, 0.5], 1e-4, DataError),
        ([0.5, 0.5], [0.5, 0.5], 0.0, ParameterError),
        ([0.5, 0.5], [0.5, 0.5], 1.5, ParameterError),
    ],
)
def test_psi_rejects_bad_input(e, a, floor, exc) -> None:
    with pytest.raises(exc):
        population_stability_index(np.array(e), np.array(a), floor)


# --------------------------------------------------------------------------------------------
# FeatureBaseline
# --------------------------------------------------------------------------------------------


def test_fit_decile_bins_are_balanced() -> None:
    rng = np.random.default_rng(0)
    base = FeatureBaseline.fit({"x": rng.normal(size=5000)}, bins=10)
    fb = base.features["x"]
    assert fb.n_bins == 10
    assert fb.edges[0] == -math.inf and fb.edges[-1] == math.inf
    assert all(b > a for a, b in zip(fb.edges, fb.edges[1:], strict=False))
    assert sum(fb.expected) == pytest.approx(1.0)
    assert all(p == pytest.approx(0.1, abs=0.002) for p in fb.expected)
    assert fb.n_fit == 5000


def test_psi_same_sample_is_zero_and_same_distribution_small() -> None:
    rng = np.random.default_rng(1)
    train = rng.normal(size=20_000)
    base = FeatureBaseline.fit({"x": train})
    assert base.psi({"x": train})["x"] == pytest.approx(0.0, abs=1e-12)
    assert base.psi({"x": rng.normal(size=20_000)})["x"] < 0.01


def test_psi_shifted_normal_is_large() -> None:
    rng = np.random.default_rng(2)
    base = FeatureBaseline.fit({"x": rng.normal(size=5000)})
    assert base.psi({"x": rng.normal(loc=1.0, size=5000)})["x"] > 0.25


def test_psi_is_scale_of_live_sample_invariant() -> None:
    # PSI depends on proportions only: repeating the live sample changes nothing
    rng = np.random.default_rng(3)
    base = FeatureBaseline.fit({"x": rng.normal(size=2000)})
    live = rng.normal(0.3, 1.2, size=500)
    one = base.psi({"x": live})["x"]
    assert base.psi({"x": np.tile(live, 3)})["x"] == pytest.approx(one, rel=1e-12)


def test_bins_are_right_closed_and_every_training_bin_is_populated() -> None:
    # heavy ties: half the values are 0, the rest 1..50
    values = np.concatenate([np.zeros(50), np.arange(1.0, 51.0)])
    fb = FeatureBaseline.fit({"x": values}, bins=10).features["x"]
    assert len(set(fb.edges)) == len(fb.edges)  # duplicate edges collapsed
    assert fb.n_bins < 10
    assert min(fb.expected) > 0.0
    # the zeros all land in the first bin, which is (-inf, 0]
    assert fb.edges[1] == 0.0
    assert fb.expected[0] == pytest.approx(0.5)
    assert sum(fb.expected) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(-5, 5), min_size=0, max_size=120),
    st.integers(2, 8),
)
def test_fit_invariants(ints: list[int], bins: int) -> None:
    values = np.array(ints, dtype=np.float64)
    fb = FeatureBaseline.fit({"x": values}, bins=bins).features["x"]
    assert fb.n_fit == len(ints)
    assert 1 <= fb.n_bins <= bins
    assert sum(fb.expected) == pytest.approx(1.0)
    if fb.n_bins > 1:
        assert min(fb.expected) > 0.0
    # the training sample scores 0 against its own baseline
    if ints:
        psi = FeatureBaseline.fit({"x": values}, bins=bins).psi({"x": values})["x"]
        assert psi == pytest.approx(0.0, abs=1e-12)


def test_constant_and_short_features_get_one_bin() -> None:
    rng = np.random.default_rng(4)
    base = FeatureBaseline.fit(
        {
            "const": np.full(500, 3.0),
            "short": rng.normal(size=49),  # < bins * 5 = 50
            "enough": rng.normal(size=50),
            "empty": np.full(10, np.nan),
        },
        bins=10,
    )
    for name in ("const", "short", "empty"):
        fb = base.features[name]
        assert fb.edges == (-math.inf, math.inf)
        assert fb.expected == (1.0,)
    assert base.features["empty"].n_fit == 0
    assert base.features["enough"].n_bins > 1
    psi = base.psi({"const": np.full(20, 99.0), "short": rng.normal(5, 1, 30)})
    assert psi["const"] == 0.0 and psi["short"] == 0.0


def test_nan_and_inf_are_ignored() -> None:
    rng = np.random.default_rng(5)
    clean = rng.normal(size=1000)
    dirty = np.concatenate([clean, [np.nan] * 200, [np.inf, -np.inf]])
    assert FeatureBaseline.fit({"x": dirty}) == FeatureBaseline.fit({"x": clean})
    base = FeatureBaseline.fit({"x": clean})
    live = rng.normal(size=300)
    live_dirty = np.concatenate([live, [np.nan] * 50])
    assert base.psi({"x": live_dirty})["x"] == base.psi({"x": live})["x"]


def test_psi_nan_when_feature_missing_or_all_nan() -> None:
    rng = np.random.default_rng(6)
    base = FeatureBaseline.fit({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    got = base.psi({"a": np.full(5, np.nan), "extra": rng.normal(size=10)})
    assert list(got) == ["a", "b"]  # baseline order; unknown live names ignored
    assert math.isnan(got["a"]) and math.isnan(got["b"])
    assert math.isnan(base.psi({"a": np.array([]), "b": np.array([])})["a"])


def test_json_round_trip_is_exact() -> None:
    rng = np.random.default_rng(7)
    base = FeatureBaseline.fit(
        {
            "ret_20": rng.normal(scale=0.013, size=3000),
            "vol": rng.lognormal(size=3000),
            "flag": np.full(100, 1.0),
            "ties": rng.integers(0, 3, size=400).astype(float),
        },
        bins=7,
    )
    text = json.dumps(base.to_dict(), allow_nan=False)  # strict JSON: no Infinity/NaN
    again = FeatureBaseline.from_dict(json.loads(text))
    assert again == base
    assert list(again.features) == list(base.features)
    live = {"ret_20": rng.normal(scale=0.02, size=300), "vol": rng.lognormal(size=300)}
    assert again.psi(live) == pytest.approx(base.psi(live), nan_ok=True)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(format=99),
        lambda d: d.pop("features"),
        lambda d: d.update(bins=1),
        lambda d: d["features"]["x"].pop("n_fit"),
        lambda d: d["features"]["x"].update(expected=[1.0]),
        lambda d: d["features"]["x"].update(inner_edges=[2.0, 1.0]),
        lambda d: d["features"]["x"].update(inner_edges=["a"]),
        lambda d: d["features"].update(x=[1, 2]),
    ],
)
def test_from_dict_rejects_malformed(mutate) -> None:
    d = FeatureBaseline.fit({"x": np.arange(100.0)}, bins=4).to_dict()
    mutate(d)
    with pytest.raises(DataError):
        FeatureBaseline.from_dict(d)


def test_fit_rejects_bad_input() -> None:
    with pytest.raises(ParameterError, match="bins"):
        FeatureBaseline.fit({"x": np.arange(10.0)}, bins=1)
    with pytest.raises(DataError, match="no features"):
        FeatureBaseline.fit({})
    with pytest.raises(DataError, match="'x'.*1-D"):
        FeatureBaseline.fit({"x": np.zeros((3, 3))})
    with pytest.raises(DataError, match="'x'"):
        FeatureBaseline.fit({"x": np.array(["a", "b"])})
    with pytest.raises(DataError):
        FeatureBins(edges=(0.0, 1.0), expected=(1.0,), n_fit=1)


# --------------------------------------------------------------------------------------------
# rolling_hit_rate
# --------------------------------------------------------------------------------------------

direction = st.sampled_from([1.0, -1.0, math.nan])


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 60).flatmap(
        lambda n: st.tuples(
            st.lists(direction, min_size=n, max_size=n),
            st.lists(direction, min_size=n, max_size=n),
        )
    ),
    st.integers(1, 12),
    st.none() | st.integers(1, 15),
)
def test_rolling_hit_rate_matches_reference(pair, window: int, min_pairs: int | None) -> None:
    p, r = pair
    got = rolling_hit_rate(np.array(p), np.array(r), window, min_pairs)
    want = np.array(slow_hit_rate(p, r, window, min_pairs))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(direction, direction), min_size=2, max_size=40),
    st.integers(1, 8),
    st.data(),
)
def test_rolling_hit_rate_is_causal(pairs, window: int, data) -> None:
    p = np.array([a for a, _ in pairs])
    r = np.array([b for _, b in pairs])
    cut = data.draw(st.integers(1, len(pairs) - 1))
    full = rolling_hit_rate(p, r, window)
    changed_r = r.copy()
    changed_r[cut:] = -np.nan_to_num(changed_r[cut:], nan=1.0)  # rewrite the future
    np.testing.assert_array_equal(
        rolling_hit_rate(p, changed_r, window)[:cut], full[:cut], strict=True
    )


def test_rolling_hit_rate_hand_example() -> None:
    nan = math.nan
    p = np.array([1, -1, nan, 1, 1, -1, 1])
    r = np.array([1, 1, -1, nan, 1, -1, -1])
    # known pairs at 0 (hit), 1 (miss), 4 (hit), 5 (hit), 6 (miss); window 4 -> NaN until 2 known
    got = rolling_hit_rate(p, r, 4)
    np.testing.assert_allclose(
        got, [nan, 0.5, 0.5, 0.5, 2 / 3, 3 / 4, 2 / 4], equal_nan=True, atol=1e-15
    )


def test_rolling_hit_rate_rejects_bad_input() -> None:
    with pytest.raises(DataError, match=r"predicted\[1\] is 0.0"):
        rolling_hit_rate(np.array([1.0, 0.0]), np.array([1.0, 1.0]), 3)
    with pytest.raises(DataError, match="same length"):
        rolling_hit_rate(np.array([1.0]), np.array([1.0, 1.0]), 3)
    with pytest.raises(ParameterError, match="window"):
        rolling_hit_rate(np.array([1.0]), np.array([1.0]), 0)
    with pytest.raises(ParameterError, match="min_pairs"):
        rolling_hit_rate(np.array([1.0]), np.array([1.0]), 3, 0)
    with pytest.raises(DataError, match="1-D"):
        rolling_hit_rate(np.ones((2, 2)), np.ones((2, 2)), 3)


# --------------------------------------------------------------------------------------------
# DriftSpec / assess_drift
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"psi_warn": 0.0}, "psi_warn"),
        ({"psi_warn": math.nan}, "psi_warn"),
        ({"psi_warn": 0.3, "psi_alert": 0.2}, "psi_alert"),
        ({"psi_alert": math.inf}, "psi_alert"),
        ({"accuracy_window": 0}, "accuracy_window"),
        ({"accuracy_window": 2.5}, "accuracy_window"),
        ({"min_accuracy": 1.5}, "min_accuracy"),
        ({"min_accuracy": "0.5"}, "min_accuracy"),
        ({"min_outcomes": 0}, "min_outcomes"),
        ({"min_outcomes": 61}, "min_outcomes"),
        ({"min_outcomes": True}, "min_outcomes"),
    ],
)
def test_bad_spec_raises(kwargs, match) -> None:
    with pytest.raises(ParameterError, match=match):
        DriftSpec(**kwargs)


def _baseline() -> tuple[FeatureBaseline, np.random.Generator]:
    rng = np.random.default_rng(11)
    base = FeatureBaseline.fit({"ret_20": rng.normal(size=4000), "vol": rng.normal(size=4000)})
    return base, rng


def test_assess_drift_quiet_when_nothing_moved() -> None:
    base, rng = _baseline()
    live = {"ret_20": rng.normal(size=4000), "vol": rng.normal(size=4000)}
    pred = np.tile([1.0, -1.0], 30)
    real = pred.copy()
    real[::4] *= -1  # 75 % hits
    report = assess_drift(base, live, pred, real, DriftSpec())
    assert isinstance(report, DriftReport)
    assert report.alerts == () and report.warnings == ()
    assert report.status == "ok"
    assert report.hit_rate == pytest.approx(0.75)
    assert report.n_outcomes == 60
    assert set(report.psi) == {"ret_20", "vol"}


def test_assess_drift_alerts_on_shift_and_bad_hit_rate() -> None:
    base, rng = _baseline()
    live = {"ret_20": rng.normal(loc=1.0, size=2000), "vol": rng.normal(size=2000)}
    pred = np.ones(100)
    real = np.where(np.arange(100) % 10 < 3, 1.0, -1.0)  # 30 % hits
    report = assess_drift(base, live, pred, real, DriftSpec(accuracy_window=50))
    assert report.status == "alert"
    assert len(report.alerts) == 2
    psi_alert, hit_alert = report.alerts
    assert psi_alert.startswith(f"feature 'ret_20' PSI {report.psi['ret_20']:.2f} >= 0.25:")
    assert "retrain or investigate" in psi_alert
    assert hit_alert.startswith("hit rate 0.30 over the last 50 outcomes < 0.45")
    assert report.n_outcomes == 50
    lines = report.lines()
    assert lines[0] == "drift: alert"
    assert any(line.startswith("ALERT: feature 'ret_20'") for line in lines)


def test_assess_drift_warning_band_and_missing_feature() -> None:
    rng = np.random.default_rng(12)
    base = FeatureBaseline.fit({"x": rng.normal(size=20_000), "gone": rng.normal(size=500)})
    live_x = rng.normal(loc=0.35, size=20_000)  # PSI between 0.1 and 0.25
    report = assess_drift(base, {"x": live_x}, np.array([]), np.array([]), DriftSpec())
    assert 0.1 <= report.psi["x"] < 0.25
    assert report.alerts == ()
    assert report.status == "warn"
    assert len(report.warnings) == 2
    assert report.warnings[0].startswith(f"feature 'x' PSI {report.psi['x']:.2f} >= 0.1")
    assert "'gone' has no live values" in report.warnings[1]
    assert math.isnan(report.hit_rate) and report.n_outcomes == 0
    assert any("n/a" in line for line in report.lines())


def test_assess_drift_no_hit_alert_with_too_few_outcomes() -> None:
    base, rng = _baseline()
    live = {"ret_20": rng.normal(size=1000), "vol": rng.normal(size=1000)}
    pred = np.ones(40)
    real = np.full(40, np.nan)
    real[:19] = -1.0  # 19 known outcomes, all wrong, below min_outcomes=20
    report = assess_drift(base, live, pred, real, DriftSpec())
    # the rate is reported (with its count) even below accuracy_window // 2 known outcomes
    assert report.hit_rate == 0.0 and report.n_outcomes == 19
    assert report.alerts == ()
    real[19] = -1.0  # the 20th outcome arrives
    report = assess_drift(base, live, pred, real)
    assert report.n_outcomes == 20
    assert report.alerts == (
        "hit rate 0.00 over the last 20 outcomes < 0.45: the model's predictions have "
        "stopped working; retrain or stop trading it",
    )
