"""Probability -> position: a hand-computed scenario table and hypothesis invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from framework.errors import ParameterError
from framework.ml.sizing import SizingSpec, probability_to_position

CONF = SizingSpec(threshold=0.55, scaling="confidence", full_at=0.7, long_only=True)
CONF_LS = SizingSpec(threshold=0.55, scaling="confidence", full_at=0.7, long_only=False)
FIXED = SizingSpec(threshold=0.55, scaling="fixed", long_only=True)
FIXED_LS = SizingSpec(threshold=0.55, scaling="fixed", long_only=False)
KELLY_HALF = SizingSpec(threshold=0.55, scaling="fixed", long_only=True, kelly=0.5)
KELLY_FULL = SizingSpec(threshold=0.55, scaling="confidence", full_at=0.7, long_only=False, kelly=1.0)
KELLY_FIXED_LS = SizingSpec(threshold=0.55, scaling="fixed", long_only=False, kelly=1.0)

# (spec, payoff b, probability, expected position); the comment says why
SCENARIOS = [
    (CONF, 1.0, 0.50, 0.0),  # a coin flip: nothing
    (CONF, 1.0, 0.54, 0.0),  # below the threshold
    (CONF, 1.0, 0.55, 0.25),  # at the threshold: (0.55 - 0.5) / (0.7 - 0.5)
    (CONF, 1.0, 0.60, 0.5),  # halfway to full_at
    (CONF, 1.0, 0.70, 1.0),  # full size at full_at
    (CONF, 1.0, 0.95, 1.0),  # capped at full size
    (CONF, 1.0, 0.10, 0.0),  # confident "down", but long only
    (CONF_LS, 1.0, 0.10, -1.0),  # 1 - p = 0.9: full short
    (CONF_LS, 1.0, 0.40, -0.5),  # 1 - p = 0.6: half short
    (CONF_LS, 1.0, 0.46, 0.0),  # 1 - p = 0.54: below the threshold
    (CONF_LS, 1.0, 0.60, 0.5),  # long side as with long only
    (FIXED, 1.0, 0.55, 1.0),  # fixed: full size from the threshold on
    (FIXED, 1.0, 0.549, 0.0),
    (FIXED, 1.0, 0.05, 0.0),
    (FIXED_LS, 1.0, 0.45, -1.0),  # 1 - p = 0.55 clears the threshold
    (FIXED_LS, 1.0, 0.50, 0.0),
    (FIXED_LS, 1.0, 0.56, 1.0),
    # Kelly f* = p - (1 - p) / b, capped at kelly * f*
    (KELLY_HALF, 2.0, 0.70, 0.5 * (0.7 - 0.3 / 2)),  # 0.275
    (KELLY_HALF, 2.0, 0.60, 0.5 * (0.6 - 0.4 / 2)),  # 0.2
    (KELLY_HALF, 2.0, 0.55, 0.5 * (0.55 - 0.45 / 2)),  # 0.1625
    (KELLY_HALF, 0.5, 0.60, 0.0),  # f* = 0.6 - 0.8 < 0: no edge at this payoff
    (KELLY_HALF, 2.0, 0.50, 0.0),  # below the threshold Kelly changes nothing
    (KELLY_FULL, 1.0, 0.60, 0.2),  # min(confidence 0.5, f* = 0.2)
    (KELLY_FULL, 1.0, 0.90, 0.8),  # min(confidence 1, f* = 0.8)
    (KELLY_FIXED_LS, 2.0, 0.20, -(0.8 - 0.2 / 0.5)),  # short payoff is 1 / b: f* = 0.4
    (KELLY_FIXED_LS, 0.0, 0.70, 0.7 - 0.3 / 1.0),  # b <= 0 is unknown: treated as 1
]


@pytest.mark.parametrize(("spec", "payoff", "prob", "expected"), SCENARIOS)
def test_scenario_table(spec, payoff, prob, expected):
    got = probability_to_position(np.array([prob]), spec, payoff)
    np.testing.assert_allclose(got, [expected], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("spec", [CONF, CONF_LS, FIXED_LS, KELLY_FULL])
def test_missing_probabilities_hold_nothing(spec):
    got = probability_to_position(np.array([np.nan, np.inf, -np.inf, 0.9]), spec, 1.5)
    np.testing.assert_array_equal(got[:3], 0.0)
    assert got[3] > 0


def test_shape_is_kept():
    prob = np.array([[0.9, np.nan], [0.1, 0.6]])
    got = probability_to_position(prob, CONF_LS)
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got, [[1.0, 0.0], [-1.0, 0.5]], rtol=1e-12)


# -- invariants -----------------------------------------------------------------------------
specs = st.builds(
    SizingSpec,
    threshold=st.floats(0.5, 0.99),
    scaling=st.sampled_from(["fixed", "confidence"]),
    full_at=st.floats(0.51, 1.0),
    long_only=st.booleans(),
    kelly=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
)
probs = st.lists(st.one_of(st.floats(0.0, 1.0), st.just(np.nan)), min_size=1, max_size=40)
payoffs = st.floats(0.0, 10.0, allow_subnormal=False)  # b is a ratio of average returns


@settings(max_examples=200, deadline=None)
@given(spec=specs, prob=probs, payoff=payoffs)
def test_positions_are_bounded(spec, prob, payoff):
    got = probability_to_position(np.array(prob), spec, payoff)
    assert np.isfinite(got).all()
    low = 0.0 if spec.long_only else -1.0
    assert ((got >= low) & (got <= 1.0)).all()
    np.testing.assert_array_equal(got[np.isnan(prob)], 0.0)


@settings(max_examples=200, deadline=None)
@given(spec=specs, prob=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=40), payoff=payoffs)
def test_positions_do_not_fall_as_the_probability_rises(spec, prob, payoff):
    # long only is the documented case; long/short is monotone too (shorts shrink as p rises)
    got = probability_to_position(np.sort(prob), spec, payoff)
    assert (np.diff(got) >= 0).all(), (spec, got)


@settings(max_examples=100, deadline=None)
@given(prob=st.floats(0.0, 1.0), threshold=st.floats(0.5, 0.99), full_at=st.floats(0.51, 1.0))
def test_long_short_confidence_is_symmetric(prob, threshold, full_at):
    # without Kelly (b = 1 either way) a short at p mirrors a long at 1 - p, except at the tie
    # p = 0.5 that both sides clear when the threshold is 0.5 (and probabilities within
    # rounding of a threshold, where 1 - (1 - p) may land on the other side)
    assume(prob != 0.5 and min(abs(prob - threshold), abs(1 - prob - threshold)) > 1e-9)
    spec = SizingSpec(threshold=threshold, scaling="confidence", full_at=full_at, long_only=False)
    up = probability_to_position(np.array([prob]), spec)
    down = probability_to_position(np.array([1.0 - prob]), spec)
    np.testing.assert_allclose(up, -down, rtol=1e-9, atol=1e-12)


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scaling": "confidnce"}, r"unknown scaling 'confidnce'\. Did you mean 'confidence'\?"),
        ({"threshold": 0.4}, r"threshold must be in \[0\.5, 1\); got 0\.4"),
        ({"threshold": 1.0}, r"threshold must be in \[0\.5, 1\); got 1\.0"),
        ({"full_at": 0.5}, r"full_at must be in \(0\.5, 1\]; got 0\.5"),
        ({"full_at": 1.2}, r"full_at must be in \(0\.5, 1\]; got 1\.2"),
        ({"kelly": -0.1}, r"kelly must be >= 0 \(0 turns the cap off\); got -0\.1"),
        ({"threshold": float("nan")}, r"threshold must be in"),
    ],
)
def test_bad_spec_raises(changes, message):
    with pytest.raises(ParameterError, match=message):
        SizingSpec(**changes)
