"""Payoff analytics: hand-computed tables, identities, POP vs Monte Carlo, implied distribution."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError
from framework.options import payoff
from framework.options.bsm import bsm_greeks, bsm_price
from framework.options.legs import Leg, OptionPosition

TODAY = date(2026, 5, 1)
E1 = TODAY + timedelta(days=30)
E2 = TODAY + timedelta(days=60)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pos(*legs, shares=0, price=math.nan):
    return OptionPosition("X", legs, shares, price)


# -- hand-computed tables ------------------------------------------------------------------------

HAND = [
    # name, position, max profit, max loss, breakevens
    ("bull put 5 wide 1.50 credit",
     pos(Leg("P", 100, E1, -1, 2.00), Leg("P", 95, E1, 1, 0.50)), 150, 350, (98.5,)),
    ("bear call 10 wide 2.00 credit",
     pos(Leg("C", 100, E1, -1, 3.00), Leg("C", 110, E1, 1, 1.00)), 200, 800, (102.0,)),
    ("bull call 5 wide 2.00 debit",
     pos(Leg("C", 100, E1, 1, 3.00), Leg("C", 105, E1, -1, 1.00)), 300, 200, (102.0,)),
    ("iron condor 95/100 105/110 for 1.60",
     pos(Leg("P", 95, E1, 1, 0.40), Leg("P", 100, E1, -1, 1.20), Leg("C", 105, E1, -1, 1.10),
         Leg("C", 110, E1, 1, 0.30)), 160, 340, (98.4, 106.6)),
    ("long call 100 for 2.50", pos(Leg("C", 100, E1, 1, 2.50)), math.inf, 250, (102.5,)),
    ("short call 100 for 2.50", pos(Leg("C", 100, E1, -1, 2.50)), 250, math.inf, (102.5,)),
    ("long put 100 for 4", pos(Leg("P", 100, E1, 1, 4.00)), 9600, 400, (96.0,)),
    ("put butterfly 90/100/110 for 2",
     pos(Leg("P", 90, E1, 1, 1.0), Leg("P", 100, E1, -2, 3.0), Leg("P", 110, E1, 1, 7.0)),
     800, 200, (92.0, 108.0)),
    ("covered call 100 shares at 50, 55 call for 1",
     pos(Leg("C", 55, E1, -1, 1.0), shares=100, price=50.0), 600, 4900, (49.0,)),
    ("long straddle 100 for 6", pos(Leg("P", 100, E1, 1, 2.5), Leg("C", 100, E1, 1, 3.5)),
     math.inf, 600, (94.0, 106.0)),
    ("three 5-wide bull puts for 1.50 credit each",
     pos(Leg("P", 100, E1, -3, 2.00), Leg("P", 95, E1, 3, 0.50)), 450, 1050, (98.5,)),
]


@pytest.mark.parametrize(("name", "position", "hi", "lo", "bes"), HAND, ids=[h[0] for h in HAND])
def test_hand_computed_tables(name, position, hi, lo, bes):
    stats = payoff.payoff_stats(position)
    assert stats.exact and stats.horizon == E1
    assert stats.max_profit == pytest.approx(hi)
    assert stats.max_loss == pytest.approx(lo)
    assert stats.breakevens == pytest.approx(bes)
    for be in stats.breakevens:
        assert payoff.expiry_pnl(position, [be])[0] == pytest.approx(0.0, abs=1e-9)


def test_expiry_pnl_values_by_hand():
    bull_put = HAND[0][1]
    got = payoff.expiry_pnl(bull_put, [0, 90, 95, 97, 98.5, 100, 120])
    assert got == pytest.approx([-350, -350, -350, -150, 0, 150, 150])


# -- identities (hypothesis) ---------------------------------------------------------------------

strikes = st.floats(20, 300)
premiums = st.floats(0, 50)
rights = st.sampled_from(["C", "P"])
quantities = st.integers(1, 5)


@FAST
@given(rights, strikes, premiums, quantities, st.floats(0.05, 1.0), st.floats(-0.01, 0.08))
def test_long_plus_short_of_same_leg_is_flat_zero(right, k, prem, n, vol, rate):
    position = pos(Leg(right, k, E1, n, prem), Leg(right, k, E1, -n, prem))
    grid = np.linspace(0, 3 * k, 61)
    assert np.allclose(payoff.expiry_pnl(position, grid), 0.0)
    assert np.allclose(payoff.pnl_at(position, grid, TODAY, vol, rate, 0.01), 0.0, atol=1e-9)
    stats = payoff.payoff_stats(position)
    assert stats.max_profit == 0.0 and stats.max_loss == 0.0
    greeks = payoff.position_greeks(position, k, TODAY, vol, rate, 0.0)
    assert all(abs(getattr(greeks, g)) < 1e-9 for g in ("delta", "gamma", "theta", "vega", "rho"))


@FAST
@given(strikes, premiums, premiums, st.floats(20, 300))
def test_put_call_parity_combo_has_flat_expiry_payoff(k, c, p, s0):
    # long call + short put = long forward; with 100 shares sold short the payoff is constant
    position = pos(Leg("C", k, E1, 1, c), Leg("P", k, E1, -1, p), shares=-100, price=s0)
    constant = 100 * (s0 - k) - 100 * (c - p)
    grid = np.linspace(0, 4 * max(k, s0), 81)
    assert np.allclose(payoff.expiry_pnl(position, grid), constant, atol=1e-7)
    stats = payoff.payoff_stats(position)
    assert stats.max_profit == pytest.approx(constant, abs=1e-7)
    assert stats.max_loss == pytest.approx(-constant, abs=1e-7)


@FAST
@given(st.floats(50, 150), st.floats(0.05, 0.8), st.floats(0.0, 0.08), st.integers(5, 400))
def test_put_call_parity_before_expiry_with_bsm_premiums(k, vol, rate, days):
    expiry = TODAY + timedelta(days=days)
    t = days / 365
    c = float(bsm_price(100.0, k, t, rate, 0.0, vol, True))
    p = float(bsm_price(100.0, k, t, rate, 0.0, vol, False))
    position = pos(Leg("C", k, expiry, 1, c), Leg("P", k, expiry, -1, p), shares=-100, price=100.0)
    grid = np.linspace(1, 300, 41)
    values = payoff.pnl_at(position, grid, TODAY, vol, rate, 0.0)
    # C - P - S = -K e^{-rt} whatever the price: entering at model prices is worth exactly 0
    assert np.allclose(values, 0.0, atol=1e-6 * max(1.0, k))


@FAST
@given(strikes, st.floats(0.5, 50), premiums, premiums, st.lists(st.floats(0, 600), min_size=5, max_size=40))
def test_vertical_bounded_by_width(k1, width, p1, p2, prices):
    position = pos(Leg("C", k1, E1, 1, p1), Leg("C", k1 + width, E1, -1, p2))
    stats = payoff.payoff_stats(position)
    assert stats.max_profit + stats.max_loss == pytest.approx(100 * width)
    assert stats.max_loss == pytest.approx(100 * (p1 - p2))
    values = payoff.expiry_pnl(position, prices)
    assert np.all(values <= stats.max_profit + 1e-7)
    assert np.all(values >= -stats.max_loss - 1e-7)


leg_strategy = st.tuples(rights, st.floats(50, 150), st.integers(-3, 3).filter(bool), premiums)


@FAST
@given(st.lists(leg_strategy, min_size=1, max_size=4), st.sampled_from([0, 100, 200]))
def test_stats_match_a_dense_grid(raw_legs, shares):
    position = pos(*(Leg(r, k, E1, q, p) for r, k, q, p in raw_legs), shares=shares,
                   price=100.0 if shares else math.nan)
    stats = payoff.payoff_stats(position)
    grid = np.union1d(np.linspace(0, 400, 8001), position.strikes)
    values = payoff.expiry_pnl(position, grid)
    tol = 1e-6 * max(1.0, float(np.abs(values).max()))
    assert values.max() <= stats.max_profit + tol
    assert values.min() >= -stats.max_loss - tol
    if math.isfinite(stats.max_profit):
        assert values.max() == pytest.approx(stats.max_profit, abs=tol)
    if math.isfinite(stats.max_loss):
        assert values.min() == pytest.approx(-stats.max_loss, abs=tol)
    for be in stats.breakevens:
        assert abs(payoff.expiry_pnl(position, [be])[0]) <= tol
    # every strict sign change on the grid brackets a reported breakeven
    for j in np.nonzero(values[:-1] * values[1:] < 0)[0]:
        assert any(grid[j] - 1e-9 <= be <= grid[j + 1] + 1e-9 for be in stats.breakevens)


# -- multi-expiry positions ----------------------------------------------------------------------


def test_calendar_analysed_at_the_front_expiry():
    vol, rate, div = 0.2, 0.03, 0.0
    front = float(bsm_price(100, 100, 30 / 365, rate, div, vol, True))
    back = float(bsm_price(100, 100, 60 / 365, rate, div, vol, True))
    cal = pos(Leg("C", 100, E1, -1, front), Leg("C", 100, E2, 1, back))
    with pytest.raises(ConfigError, match="expire on 2 dates"):
        payoff.expiry_pnl(cal, [100])
    with pytest.raises(ConfigError, match="a vol is needed"):
        payoff.payoff_stats(cal)
    stats = payoff.payoff_stats(cal, vol, rate, div)
    debit = 100 * (back - front)
    assert not stats.exact
    assert stats.max_loss == pytest.approx(debit, rel=1e-6)  # far from the strike the spread is worth ~0
    peak = 100 * float(bsm_price(100, 100, 30 / 365, rate, div, vol, True)) - debit
    assert stats.max_profit == pytest.approx(peak, rel=1e-9)  # the peak sits on the strike, a grid node
    assert len(stats.breakevens) == 2
    for be in stats.breakevens:
        assert payoff.horizon_pnl(cal, [be], vol, rate, div)[0] == pytest.approx(0, abs=1e-6)
    assert payoff.buying_power(cal).amount == pytest.approx(debit)


def test_pnl_surface_and_dates():
    position = HAND[0][1]
    grid = [90.0, 100.0, 110.0]
    frame = payoff.pnl_surface(position, grid, [TODAY, TODAY + timedelta(days=10), E1], 0.2, 0.03)
    assert frame.shape == (3, 3)
    assert np.allclose(frame.loc[E1].to_numpy(), payoff.expiry_pnl(position, grid))
    with pytest.raises(ConfigError, match="after the front expiry"):
        payoff.pnl_at(position, grid, E1 + timedelta(days=1), 0.2)
    with pytest.raises(ConfigError, match="got 3 vols for 2 legs"):
        payoff.pnl_at(position, grid, TODAY, [0.2, 0.2, 0.2])
    with pytest.raises(ConfigError, match="vol -0.1"):
        payoff.pnl_at(position, grid, TODAY, -0.1)


# -- probability of profit -----------------------------------------------------------------------


def _mc_terminal(spot, vol, t, rate, div, n=400_000, seed=7):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    return spot * np.exp((rate - div - 0.5 * vol * vol) * t + vol * math.sqrt(t) * z)


def test_pop_lognormal_matches_monte_carlo_single_expiry():
    condor = HAND[3][1]
    spot, vol, rate, div = 102.0, 0.25, 0.04, 0.01
    t = (E1 - TODAY).days / 365
    pop = payoff.pop_lognormal(condor, spot, vol, TODAY, rate, div)
    sims = _mc_terminal(spot, vol, t, rate, div)
    mc = float(np.mean(payoff.expiry_pnl(condor, sims) > 0))
    assert pop == pytest.approx(mc, abs=4 * math.sqrt(mc * (1 - mc) / sims.size) + 1e-4)


def test_pop_lognormal_matches_monte_carlo_calendar():
    vol, rate, div = 0.3, 0.04, 0.0
    cal = pos(Leg("P", 95, E1, -1, 2.1), Leg("P", 95, E2, 1, 3.4))
    t = (E1 - TODAY).days / 365
    pop = payoff.pop_lognormal(cal, 100.0, vol, TODAY, rate, div)
    sims = _mc_terminal(100.0, vol, t, rate, div, n=200_000)
    mc = float(np.mean(payoff.horizon_pnl(cal, sims, vol, rate, div) > 0))
    assert pop == pytest.approx(mc, abs=4 * math.sqrt(mc * (1 - mc) / sims.size) + 1e-3)


def test_pop_of_a_long_call_is_the_closed_form():
    call = pos(Leg("C", 100, E1, 1, 2.0))
    spot, vol, rate, div = 100.0, 0.2, 0.05, 0.0
    t = 30 / 365
    d2 = (math.log(spot / 102.0) + (rate - div - 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    expected = 0.5 * math.erfc(-d2 / math.sqrt(2))
    assert payoff.pop_lognormal(call, spot, vol, TODAY, rate, div) == pytest.approx(expected, abs=1e-12)


def test_pop_bad_inputs():
    call = pos(Leg("C", 100, E1, 1, 2.0))
    with pytest.raises(ConfigError, match="spot -1"):
        payoff.pop_lognormal(call, -1, 0.2, TODAY)
    with pytest.raises(ConfigError, match="vol 0"):
        payoff.pop_lognormal(call, 100, 0.0, TODAY)
    with pytest.raises(ConfigError, match="nothing is left to chance"):
        payoff.pop_lognormal(call, 100, 0.2, E1)


def test_implied_distribution_recovers_a_flat_vol_lognormal():
    spot, vol, rate, div, t = 100.0, 0.2, 0.03, 0.01, 0.25
    k = np.arange(40.0, 250.0, 0.5)
    calls = bsm_price(spot, k, t, rate, div, vol, True)
    dist = payoff.implied_distribution_from_calls(k, calls, t, rate)
    assert dist.captured == pytest.approx(1.0, abs=2e-3)
    assert dist.mass.sum() == pytest.approx(1.0)
    assert dist.mean() == pytest.approx(spot * math.exp((rate - div) * t), rel=2e-3)
    x = np.array([80.0, 90.0, 100.0, 110.0, 125.0])
    assert np.allclose(dist.cdf(x), payoff.lognormal_cdf(x, spot, vol, t, rate, div), atol=5e-3)
    assert dist.cdf(0.0) == 0.0 and dist.cdf(1e6) == 1.0


def test_implied_distribution_cleans_noise_and_refuses_too_few_strikes():
    k = np.arange(80.0, 121.0, 1.0)
    calls = np.asarray(bsm_price(100.0, k, 0.1, 0.0, 0.0, 0.2, True))
    noisy = calls + np.where(np.arange(k.size) % 3 == 0, 0.05, 0.0)  # bumps break convexity
    dist = payoff.implied_distribution_from_calls(k, noisy, 0.1)
    assert np.all(dist.mass >= 0) and dist.mass.sum() == pytest.approx(1.0)
    with pytest.raises(Exception, match="only 2 usable strikes"):
        payoff.implied_distribution_from_calls([90.0, 100.0], [10.0, 3.0], 0.1)


# -- greeks and buying power ---------------------------------------------------------------------


def test_position_greeks_sum_legs_times_quantity_and_multiplier():
    condor = HAND[3][1]
    spot, vol, rate, div = 101.0, 0.22, 0.04, 0.01
    got = payoff.position_greeks(condor, spot, TODAY, vol, rate, div)
    t = 30 / 365
    for name in ("delta", "gamma", "theta", "vega", "rho"):
        expected = sum(
            float(getattr(bsm_greeks(spot, leg.strike, t, rate, div, vol, leg.is_call), name))
            * leg.quantity * 100
            for leg in condor.legs
        )
        assert getattr(got, name) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    h = 0.01
    up, down = payoff.pnl_at(condor, [spot + h, spot - h], TODAY, vol, rate, div)
    assert got.delta == pytest.approx((up - down) / (2 * h), rel=1e-5)


def test_stock_adds_its_shares_to_delta():
    covered = HAND[8][1]
    g = payoff.position_greeks(covered, 50.0, TODAY, 0.3)
    call_delta = float(bsm_greeks(50.0, 55.0, 30 / 365, 0.0, 0.0, 0.3, True).delta)
    assert g.delta == pytest.approx(100 - 100 * call_delta)


@pytest.mark.parametrize(
    ("position", "amount", "rule"),
    [
        (HAND[0][1], 350.0, "max loss at expiry"),
        (HAND[3][1], 340.0, "max loss at expiry"),
        (HAND[2][1], 200.0, "max loss at expiry"),
        (HAND[8][1], 4900.0, "shares paid in full"),
        (pos(Leg("P", 45, E1, 1, 1.0), Leg("C", 55, E1, -1, 1.2), shares=100, price=50.0), 4980.0,
         "shares paid in full"),
        (pos(Leg("P", 45, E1, 1, 1.0), shares=100, price=50.0), 5100.0, "shares paid in full"),
        (pos(Leg("C", 100, E1, -1, 2.0), Leg("C", 90, E2, 1, 12.0)), 1000.0, "later legs at intrinsic"),
        (pos(Leg("C", 100, E1, -1, 2.0), Leg("C", 110, E2, 1, 1.5)), 950.0, "later legs at intrinsic"),
    ],
)
def test_buying_power_rules(position, amount, rule):
    bp = payoff.buying_power(position)
    assert bp.amount == pytest.approx(amount)
    assert rule in bp.rule


@pytest.mark.parametrize(
    ("position", "fragment"),
    [
        (pos(Leg("P", 100, E1, -1, 2.0)), "short puts"),
        (pos(Leg("C", 100, E1, -1, 2.0)), "short calls"),
        (pos(Leg("P", 100, E1, -1, 2.5), Leg("C", 100, E1, -1, 3.5)), "broker"),
    ],
)
def test_buying_power_refuses_undefined_risk(position, fragment):
    with pytest.raises(ConfigError, match=fragment):
        payoff.buying_power(position)


def test_leg_vols_from_premiums_round_trip_and_error():
    vols = (0.18, 0.25)
    legs = [Leg("P", 95, E1, -1, float(bsm_price(100, 95, 30 / 365, 0.03, 0.0, vols[0], False))),
            Leg("C", 110, E2, 1, float(bsm_price(100, 110, 60 / 365, 0.03, 0.0, vols[1], True)))]
    got = payoff.leg_vols_from_premiums(pos(*legs), 100.0, TODAY, 0.03, 0.0)
    assert got == pytest.approx(vols, abs=1e-8)
    with pytest.raises(Exception, match="no implied vol"):
        payoff.leg_vols_from_premiums(pos(Leg("C", 90, E1, 1, 1.0)), 100.0, TODAY)


# -- plot ---------------------------------------------------------------------------------------


def test_plot_writes_a_png_and_leaves_the_backend_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    out = payoff.plot_payoff(HAND[3][1], tmp_path / "sub" / "condor.png", 102.0, TODAY, 0.2, 0.03)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert matplotlib.get_backend() == backend
    cal = pos(Leg("C", 100, E1, -1, 2.0), Leg("C", 100, E2, 1, 3.0))
    assert payoff.plot_payoff(cal, tmp_path / "cal.png", 100.0, TODAY, [0.2, 0.22]).stat().st_size > 10_000


# -- real chain (shared data) -------------------------------------------------------------------

RATE, DIV = 0.0371, 0.0102  # recorded with the 2026-05-01 SPY snapshot (data README)


@pytest.fixture(scope="module")
def spy_chain(shared_data):
    from framework.options.chains import load_chain

    path = shared_data / "options" / "SPY_chain_2026-05-01.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return load_chain(path).with_greeks(RATE, DIV)


@pytest.mark.realdata
def test_spy_implied_distribution_is_sane(spy_chain):
    expiry = spy_chain.nearest_expiry(35)
    dist = payoff.implied_distribution(spy_chain, expiry, RATE, DIV)
    forward = spy_chain.spot * math.exp((RATE - DIV) * dist.t)
    assert 0.9 < dist.captured < 1.1
    assert dist.mean() == pytest.approx(forward, rel=5e-3)
    assert np.all(np.diff(dist.cdf(np.linspace(500, 900, 200))) >= 0)


@pytest.mark.realdata
@pytest.mark.parametrize(("name", "kwargs"), [
    ("bull_put", {"delta": 0.30, "width": 5}),
    ("iron_condor", {"delta": 0.20, "width": 10}),
    ("straddle", {}),
    ("butterfly", {"width": 10}),
])
def test_spy_chain_implied_pop_close_to_lognormal_at_atm_iv(spy_chain, name, kwargs):
    from framework.options.builders import StrategySpec, build, leg_vols

    expiry = spy_chain.nearest_expiry(35)
    position = build(StrategySpec(name, expiry, **kwargs), spy_chain)
    vols = leg_vols(position, spy_chain)
    implied = payoff.pop_implied(position, spy_chain, RATE, DIV, leg_vols=vols)
    atm = spy_chain.atm_iv(expiry, RATE, DIV, vol_source="mid")
    lognormal = payoff.pop_lognormal(position, spy_chain.spot, atm, spy_chain.snapshot_date, RATE,
                                     DIV, leg_vols=vols)
    assert 0.0 < implied < 1.0
    # the skew moves probability around (fatter left tail, higher median), but not far
    assert implied == pytest.approx(lognormal, abs=0.10)
