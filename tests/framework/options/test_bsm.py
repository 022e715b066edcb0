"""BSM price and Greeks against vollib, finite differences and parity; the American CRR tree
against a pure-Python tree and QuantLib."""

from __future__ import annotations

import math

import numpy as np
import pytest
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black_scholes_merton import black_scholes_merton as vollib_price
from vollib.black_scholes_merton.greeks import analytical as vollib_greeks

from framework.errors import ConfigError, DataError
from framework.options.bsm import Greeks, american_price, bsm_greeks, bsm_price

GREEKS = ("delta", "gamma", "theta", "vega", "rho")


@st.composite
def markets(draw, min_days: float = 1.0):
    """One option from the contract's grid: spot 1..5000, strike 0.2..5x spot, t 1 day..5 years,
    rate -1%..10%, dividend yield 0..8%, vol 1%..300%."""
    spot = draw(st.floats(1.0, 5000.0))
    moneyness = math.exp(draw(st.floats(math.log(0.2), math.log(5.0))))
    days = draw(st.floats(min_days, 5 * 365.0))
    rate = draw(st.floats(-0.01, 0.10))
    div = draw(st.floats(0.0, 0.08))
    vol = math.exp(draw(st.floats(math.log(0.01), math.log(3.0))))
    call = draw(st.booleans())
    return spot, spot * moneyness, days / 365.0, rate, div, vol, call


def flag(call: bool) -> str:
    return "c" if call else "p"


@settings(max_examples=300, deadline=None)
@given(m=markets())
def test_price_matches_vollib(m):
    spot, strike, t, rate, div, vol, call = m
    expected = vollib_price(flag(call), spot, strike, t, rate, vol, div)
    got = float(bsm_price(spot, strike, t, rate, div, vol, call))
    # same formula: 1e-10 relative; the absolute floor covers prices of 1e-200 and below, where
    # vollib's rational approximation and our erfc differ in the last digits
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-13 * spot)


@settings(max_examples=300, deadline=None)
@given(m=markets())
def test_greeks_match_vollib(m):
    spot, strike, t, rate, div, vol, call = m
    greeks = bsm_greeks(spot, strike, t, rate, div, vol, call)
    for name in GREEKS:
        expected = getattr(vollib_greeks, name)(flag(call), spot, strike, t, rate, vol, div)
        got = float(getattr(greeks, name))
        assert got == pytest.approx(expected, rel=1e-10, abs=1e-14 * spot), name
    assert float(greeks.price) == float(bsm_price(spot, strike, t, rate, div, vol, call))


@settings(max_examples=300, deadline=None)
@given(m=markets())
def test_put_call_parity(m):
    spot, strike, t, rate, div, vol, _ = m
    call = float(bsm_price(spot, strike, t, rate, div, vol, True))
    put = float(bsm_price(spot, strike, t, rate, div, vol, False))
    forward_gap = spot * math.exp(-div * t) - strike * math.exp(-rate * t)
    assert call - put == pytest.approx(forward_gap, abs=1e-11 * (spot + strike))


def finite_differences(spot, strike, t, rate, div, vol, call) -> dict[str, float]:
    """Central differences of bsm_price, in the contract's units."""

    def price(**bumped) -> float:
        args = {"spot": spot, "strike": strike, "t": t, "rate": rate, "div": div, "vol": vol}
        args.update(bumped)
        return float(bsm_price(**args, call=call))

    h_s = 1e-4 * spot * min(1.0, vol * math.sqrt(t))  # well inside the density's width
    h_t = 1e-4 * t
    h = 1e-6
    mid = price()
    return {
        "delta": (price(spot=spot + h_s) - price(spot=spot - h_s)) / (2 * h_s),
        "gamma": (price(spot=spot + h_s) - 2 * mid + price(spot=spot - h_s)) / h_s**2,
        # theta: value lost as one calendar day passes = -d price / d t / 365
        "theta": -(price(t=t + h_t) - price(t=t - h_t)) / (2 * h_t) / 365.0,
        "vega": (price(vol=vol + h) - price(vol=vol - h)) / (2 * h) * 0.01,
        "rho": (price(rate=rate + h) - price(rate=rate - h)) / (2 * h) * 0.01,
    }


@settings(max_examples=200, deadline=None)
@given(m=markets())
def test_greeks_match_finite_differences(m):
    spot, strike, t, rate, div, vol, call = m
    greeks = bsm_greeks(spot, strike, t, rate, div, vol, call)
    numeric = finite_differences(spot, strike, t, rate, div, vol, call)
    sd = vol * math.sqrt(t)
    # absolute floors: rounding of the bumped prices (~1e-16 spot) divided by the bump
    floors = {
        "delta": 1e-10 / min(1.0, sd),
        "gamma": 1e-6 / (spot * min(1.0, sd) ** 2),
        "theta": 1e-10 * spot / t,
        "vega": 1e-10 * spot,
        "rho": 1e-10 * spot,
    }
    for name in GREEKS:
        assert numeric[name] == pytest.approx(
            float(getattr(greeks, name)), rel=1e-6, abs=floors[name]
        ), name


def test_expiring_now_is_intrinsic_with_degenerate_greeks():
    spot = np.array([90.0, 100.0, 110.0])
    call = bsm_greeks(spot, 100.0, 0.0, 0.05, 0.02, 0.3, True)
    put = bsm_greeks(spot, 100.0, 0.0, 0.05, 0.02, 0.3, False)
    np.testing.assert_array_equal(call.price, [0.0, 0.0, 10.0])
    np.testing.assert_array_equal(put.price, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(call.delta, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(put.delta, [-1.0, -0.5, 0.0])
    for name in ("gamma", "theta", "vega", "rho"):
        np.testing.assert_array_equal(getattr(call, name), 0.0)
        np.testing.assert_array_equal(getattr(put, name), 0.0)


def test_zero_vol_is_the_small_vol_limit():
    # forward 100 e^{0.03} ~ 103: the 95 and 100 strikes are in the money, 110 out of it
    args = (100.0, np.array([95.0, 100.0, 110.0]), 1.0, 0.05, 0.02)
    zero = bsm_greeks(*args, 0.0, True)
    tiny = bsm_greeks(*args, 1e-7, True)
    for name in ("price", "delta", "theta", "rho"):
        np.testing.assert_allclose(getattr(zero, name), getattr(tiny, name), atol=1e-9)
    np.testing.assert_array_equal(zero.gamma, 0.0)
    np.testing.assert_array_equal(zero.vega, 0.0)
    np.testing.assert_allclose(
        zero.price[:2], 100 * math.exp(-0.02) - args[1][:2] * math.exp(-0.05)
    )


def test_broadcasting_and_shapes():
    strikes = np.array([[90.0], [100.0], [110.0]])
    vols = np.array([0.1, 0.2, 0.3, 0.4])
    prices = bsm_price(100.0, strikes, 0.5, 0.03, 0.01, vols, True)
    assert prices.shape == (3, 4)
    assert prices[1, 2] == float(bsm_price(100.0, 100.0, 0.5, 0.03, 0.01, 0.3, True))
    scalar = bsm_price(100.0, 100.0, 0.5, 0.03, 0.01, 0.2, False)
    assert scalar.shape == ()
    calls = np.array([True, False])
    greeks = bsm_greeks(100.0, 100.0, 0.5, 0.03, 0.01, 0.2, calls)
    assert isinstance(greeks, Greeks)
    assert greeks.delta.shape == (2,)
    assert greeks.delta[0] > 0 > greeks.delta[1]
    assert american_price(100.0, strikes, 0.5, 0.03, 0.01, vols, False).shape == (3, 4)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"spot": -1.0}, "spot must be finite and > 0; got -1.0"),
        (
            {"spot": np.array([100.0, 0.0])},
            "spot must be finite and > 0; got 0.0 at flat position 1",
        ),
        ({"strike": float("nan")}, "strike must be finite and > 0; got nan"),
        ({"t": -0.1}, "t must be finite and >= 0; got -0.1"),
        ({"vol": -0.2}, "vol must be finite and >= 0; got -0.2"),
        ({"vol": float("nan")}, "vol must be finite and >= 0; got nan"),
        ({"rate": float("inf")}, "rate must be finite; got inf"),
        ({"div": float("nan")}, "div must be finite; got nan"),
        ({"call": 1}, "call must be a bool or bool array"),
        ({"call": np.array(["C", "P"])}, "call must be a bool or bool array"),
        ({"strike": np.ones(3), "vol": np.ones(2)}, "broadcast together"),
    ],
)
def test_bad_inputs_raise_data_error_naming_the_value(kwargs, words):
    args = {
        "spot": 100.0,
        "strike": 100.0,
        "t": 1.0,
        "rate": 0.03,
        "div": 0.0,
        "vol": 0.2,
        "call": True,
    }
    args.update(kwargs)
    for function in (bsm_price, bsm_greeks, american_price):
        with pytest.raises(DataError, match=words.replace("(", r"\(").replace(".", r"\.")):
            function(**args)


@pytest.mark.parametrize("steps", [0, -5, 2.5, True, "200"])
def test_bad_steps_raise_config_error(steps):
    with pytest.raises(ConfigError, match="steps must be an integer >= 1"):
        american_price(100.0, 100.0, 1.0, 0.03, 0.0, 0.2, False, steps=steps)


# --- American: pure-Python reference tree --------------------------------------------------


def reference_tree(spot, strike, t, rate, div, vol, call, steps, american=True) -> float:
    """Slow CRR tree: node prices by pow, explicit early-exercise check (the kernel's twin)."""
    sign = 1.0 if call else -1.0
    if t == 0.0:
        return max(sign * (spot - strike), 0.0)
    dt = t / steps
    up = math.exp(vol * math.sqrt(dt))
    down = 1.0 / up
    growth = math.exp((rate - div) * dt)
    p = (growth - down) / (up - down)
    if not 0.0 <= p <= 1.0:  # the kernel's re-centred tree for tiny vols
        up, down = growth * up, growth * down
        p = (growth - down) / (up - down)
    disc = math.exp(-rate * dt)

    def payoff(i, j):
        return max(sign * (spot * up**j * down ** (i - j) - strike), 0.0)

    values = [payoff(steps, j) for j in range(steps + 1)]
    for i in range(steps - 1, -1, -1):
        held = [disc * (p * values[j + 1] + (1 - p) * values[j]) for j in range(i + 1)]
        values = [max(h, payoff(i, j)) if american else h for j, h in enumerate(held)]
    return values[0]


@settings(max_examples=150, deadline=None)
@given(m=markets(), steps=st.integers(1, 60))
def test_american_kernel_matches_reference_tree(m, steps):
    spot, strike, t, rate, div, vol, call = m
    got = float(american_price(spot, strike, t, rate, div, vol, call, steps=steps))
    expected = reference_tree(spot, strike, t, rate, div, vol, call, steps)
    assert got == pytest.approx(expected, rel=1e-10, abs=1e-11 * spot)


def test_tiny_vol_tree_stays_arbitrage_free():
    # vol far below |r - q| sqrt(dt): CRR's up probability would be > 1; the re-centred tree
    # must still give a value between the exercise bounds
    got = float(american_price(100.0, 100.0, 1.0, 0.08, 0.0, 1e-4, False, steps=50))
    assert got == pytest.approx(reference_tree(100.0, 100.0, 1.0, 0.08, 0.0, 1e-4, False, 50))
    assert 0.0 <= got <= 100.0
    zero = float(american_price(100.0, 110.0, 1.0, 0.08, 0.0, 0.0, False, steps=50))
    assert zero == pytest.approx(10.0)  # the put is exercised at once when nothing is random


@st.composite
def american_markets(draw):
    """Typical inputs where early exercise matters: puts with r > 0, calls with q > 0."""
    spot = draw(st.floats(20.0, 500.0))
    strike = spot * draw(st.floats(0.7, 1.3))
    t = draw(st.integers(14, 730)) / 365.0
    vol = draw(st.floats(0.1, 0.6))
    call = draw(st.booleans())
    rate = draw(st.floats(0.0, 0.08)) if call else draw(st.floats(0.005, 0.08))
    div = draw(st.floats(0.01, 0.08)) if call else draw(st.floats(0.0, 0.08))
    return spot, strike, t, rate, div, vol, call


def quantlib_american(spot, strike, t, rate, div, vol, call) -> float:
    """QuantLib's finite-difference American price (400 x 400 grid)."""
    today = ql.Date(15, 1, 2025)
    ql.Settings.instance().evaluationDate = today
    counter = ql.Actual365Fixed()
    expiry = today + round(t * 365)

    def curve(level):
        return ql.YieldTermStructureHandle(ql.FlatForward(today, level, counter))

    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(spot)),
        curve(div),
        curve(rate),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, ql.NullCalendar(), vol, counter)),
    )
    kind = ql.Option.Call if call else ql.Option.Put
    option = ql.VanillaOption(
        ql.PlainVanillaPayoff(kind, strike), ql.AmericanExercise(today, expiry)
    )
    option.setPricingEngine(ql.FdBlackScholesVanillaEngine(process, 400, 400))
    return option.NPV()


@settings(max_examples=60, deadline=None)
@given(m=american_markets())
def test_american_matches_quantlib_fd(m):
    spot, strike, t, rate, div, vol, call = m
    got = float(american_price(spot, strike, t, rate, div, vol, call))
    # 200 CRR steps vs a converged FD grid: a few cents per 100 of underlying (measured max
    # 3.4e-4 * spot over 300 random cases)
    assert got == pytest.approx(
        quantlib_american(spot, strike, t, rate, div, vol, call), abs=6e-4 * spot
    )


@settings(max_examples=150, deadline=None)
@given(m=markets())
def test_american_worth_at_least_european_and_intrinsic(m):
    spot, strike, t, rate, div, vol, call = m
    american = float(american_price(spot, strike, t, rate, div, vol, call, steps=100))
    european_tree = reference_tree(spot, strike, t, rate, div, vol, call, 100, american=False)
    intrinsic = max((1 if call else -1) * (spot - strike), 0.0)
    assert american >= european_tree - 1e-12 * spot
    assert american >= intrinsic - 1e-12 * spot


@settings(max_examples=100, deadline=None)
@given(m=markets(), steps=st.integers(1, 80))
def test_american_call_without_dividend_is_european(m, steps):
    spot, strike, t, rate, _, vol, _ = m
    rate = abs(rate)  # with r >= 0 and q == 0 early exercise of a call never pays
    american = float(american_price(spot, strike, t, rate, 0.0, vol, True, steps=steps))
    european_tree = reference_tree(spot, strike, t, rate, 0.0, vol, True, steps, american=False)
    assert american == pytest.approx(european_tree, rel=1e-10, abs=1e-11 * spot)


def test_american_call_without_dividend_converges_to_bsm():
    args = (100.0, np.array([80.0, 100.0, 120.0]), 0.75, 0.04, 0.0, 0.25, True)
    np.testing.assert_allclose(american_price(*args, steps=2000), bsm_price(*args), atol=2e-3)


def test_early_exercise_premium_of_deep_put():
    european = float(bsm_price(100.0, 150.0, 1.0, 0.08, 0.0, 0.2, False))
    american = float(american_price(100.0, 150.0, 1.0, 0.08, 0.0, 0.2, False))
    assert american == pytest.approx(50.0)  # exercised at once
    assert european < 50.0 - 5.0
