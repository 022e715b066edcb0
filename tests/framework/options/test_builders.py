"""Strategy builders: hand-computed tables on a hand-quoted chain, model markets, errors."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError
from framework.options import builders as B
from framework.options.bsm import bsm_greeks, bsm_price
from framework.options.chains import OptionChain
from framework.options.payoff import buying_power, payoff_stats

TODAY = date(2026, 5, 1)
E1 = TODAY + timedelta(days=30)
E2 = TODAY + timedelta(days=60)
SNAPSHOT = pd.Timestamp("2026-05-01 20:00", tz="UTC")  # 16:00 New York

# hand-chosen mids (bid/ask = mid -+ 0.05) so every table below can be checked by hand
MIDS = {
    (E1, "C"): {90: 10.60, 95: 6.40, 100: 3.20, 105: 1.30, 110: 0.45},
    (E1, "P"): {90: 0.30, 95: 1.00, 100: 2.70, 105: 5.90, 110: 10.10},
    (E2, "C"): {95: 7.60, 100: 4.60, 105: 2.40},
    (E2, "P"): {95: 2.00, 100: 4.00, 105: 6.90},
}


def chain_from_rows(rows, spot=100.0) -> OptionChain:
    frame = pd.DataFrame(
        [
            {"underlying": "X", "snapshot": SNAPSHOT, "underlying_price": spot, "expiry": e,
             "right": r, "strike": float(k), "bid": bid, "ask": ask, "last": np.nan,
             "volume": np.nan, "open_interest": np.nan, "iv": np.nan,
             "contract": f"X{e:%y%m%d}{r}{int(k * 1000):08d}"}
            for e, r, k, bid, ask in rows
        ]
    )
    return OptionChain(frame)


@pytest.fixture(scope="module")
def hand_chain() -> OptionChain:
    rows = [(e, r, k, round(m - 0.05, 2), round(m + 0.05, 2))
            for (e, r), strikes in MIDS.items() for k, m in strikes.items()]
    return chain_from_rows(rows).with_greeks(0.03, 0.0)


@pytest.fixture(scope="module")
def bsm_chain() -> OptionChain:
    """Flat 20% vol, strikes 70..130 step 1: deltas are known exactly."""
    rows = []
    for expiry in (E1, E2):
        t = (expiry - TODAY).days / 365
        for k in range(70, 131):
            for right in ("C", "P"):
                price = float(bsm_price(100.0, k, t, 0.03, 0.0, 0.2, right == "C"))
                rows.append((expiry, right, k, round(max(price - 0.005, 0.0), 4), round(price + 0.005, 4)))
    return chain_from_rows(rows).with_greeks(0.03, 0.0)


# -- hand tables -------------------------------------------------------------------------------

HAND = [
    # spec, legs (qty, right, strike, expiry), max profit, max loss, breakevens, buying power
    (B.StrategySpec("bull_put", E1, strike=100, width=5),
     [(-1, "P", 100, E1), (1, "P", 95, E1)], 170, 330, (98.30,), 330),
    (B.StrategySpec("bear_call", E1, strike=100, width=5),
     [(-1, "C", 100, E1), (1, "C", 105, E1)], 190, 310, (101.90,), 310),
    (B.StrategySpec("bull_call", E1, strike=105, width=5),
     [(1, "C", 100, E1), (-1, "C", 105, E1)], 310, 190, (101.90,), 190),
    (B.StrategySpec("bear_put", E1, strike=95, width=5),
     [(1, "P", 100, E1), (-1, "P", 95, E1)], 330, 170, (98.30,), 170),
    (B.StrategySpec("iron_condor", E1, strike=95, call_strike=105, width=5),
     [(1, "P", 90, E1), (-1, "P", 95, E1), (-1, "C", 105, E1), (1, "C", 110, E1)],
     155, 345, (93.45, 106.55), 345),
    (B.StrategySpec("iron_butterfly", E1, width=5),
     [(1, "P", 95, E1), (-1, "P", 100, E1), (-1, "C", 100, E1), (1, "C", 105, E1)],
     360, 140, (96.40, 103.60), 140),
    (B.StrategySpec("butterfly", E1, width=5),
     [(1, "C", 95, E1), (-2, "C", 100, E1), (1, "C", 105, E1)], 370, 130, (96.30, 103.70), 130),
    (B.StrategySpec("butterfly", E1, width=5, right="P", strike=100),
     [(1, "P", 95, E1), (-2, "P", 100, E1), (1, "P", 105, E1)], 350, 150, (96.50, 103.50), 150),
    (B.StrategySpec("straddle", E1),
     [(1, "P", 100, E1), (1, "C", 100, E1)], math.inf, 590, (94.10, 105.90), 590),
    (B.StrategySpec("straddle", E1, quantity=-1),
     [(-1, "P", 100, E1), (-1, "C", 100, E1)], 590, math.inf, (94.10, 105.90), None),
    (B.StrategySpec("strangle", E1, strike=95, call_strike=105),
     [(1, "P", 95, E1), (1, "C", 105, E1)], math.inf, 230, (92.70, 107.30), 230),
    (B.StrategySpec("covered_call", E1, strike=105),
     [(-1, "C", 105, E1)], 630, 9870, (98.70,), 9870),
    (B.StrategySpec("protective_put", E1, strike=95),
     [(1, "P", 95, E1)], math.inf, 600, (101.00,), 10100),
    (B.StrategySpec("collar", E1, strike=95, call_strike=105),
     [(1, "P", 95, E1), (-1, "C", 105, E1)], 530, 470, (99.70,), 9970),
    (B.StrategySpec("bull_put", E1, strike=100, width=5, quantity=2),
     [(-2, "P", 100, E1), (2, "P", 95, E1)], 340, 660, (98.30,), 660),
]


@pytest.mark.parametrize(("spec", "legs", "hi", "lo", "bes", "bp"), HAND,
                         ids=[f"{h[0].name}-{i}" for i, h in enumerate(HAND)])
def test_hand_computed_tables(hand_chain, spec, legs, hi, lo, bes, bp):
    position = B.build(spec, hand_chain)
    assert [(leg.quantity, leg.right, leg.strike, leg.expiry) for leg in position.legs] == legs
    for leg in position.legs:  # premiums are the quote mids
        assert leg.premium == pytest.approx(MIDS[(leg.expiry, leg.right)][int(leg.strike)])
    stats = payoff_stats(position)
    assert stats.max_profit == pytest.approx(hi)
    assert stats.max_loss == pytest.approx(lo)
    assert stats.breakevens == pytest.approx(bes)
    if bp is None:
        with pytest.raises(ConfigError, match="defined-risk"):
            buying_power(position)
    else:
        assert buying_power(position).amount == pytest.approx(bp)


@pytest.mark.parametrize(
    ("spec", "legs", "debit"),
    [
        (B.StrategySpec("calendar", E1, back_expiry=E2, strike=100),
         [(-1, "C", 100, E1), (1, "C", 100, E2)], 140),
        (B.StrategySpec("calendar", E1, back_expiry=E2, strike=95, right="P"),
         [(-1, "P", 95, E1), (1, "P", 95, E2)], 100),
        (B.StrategySpec("diagonal", E1, back_expiry=E2, strike=100, width=5),
         [(-1, "C", 100, E1), (1, "C", 95, E2)], 440),
        (B.StrategySpec("diagonal", E1, back_expiry=E2, strike=100, width=5, right="P"),
         [(-1, "P", 100, E1), (1, "P", 105, E2)], 420),
    ],
)
def test_time_spreads(hand_chain, spec, legs, debit):
    position = B.build(spec, hand_chain)
    assert [(leg.quantity, leg.right, leg.strike, leg.expiry) for leg in position.legs] == legs
    assert -position.net_premium == pytest.approx(debit)
    assert position.is_defined_risk
    assert buying_power(position).amount == pytest.approx(debit)
    # at rate 0 and no dividend European calls and puts are worth at least intrinsic, so the
    # loss at the front expiry cannot exceed the debit
    stats = payoff_stats(position, 0.2, 0.0, 0.0)
    assert not stats.exact and stats.max_loss <= debit + 1e-6


# -- chain selection by delta ---------------------------------------------------------------------


def test_chain_delta_selection_and_leg_vols(bsm_chain):
    position = B.bull_put(bsm_chain, E1, width=5, short_delta=0.30)
    short, long_ = position.legs
    strikes = np.arange(70.0, 131.0)
    deltas = np.abs(bsm_greeks(100.0, strikes, 30 / 365, 0.03, 0.0, 0.2, False).delta)
    assert short.strike == strikes[np.argmin(np.abs(deltas - 0.30))]  # the closest |delta|
    assert long_.strike == short.strike - 5
    assert B.leg_vols(position, bsm_chain) == pytest.approx((0.2, 0.2), abs=2e-3)
    # the model market at the same vol lands on the same strike or its neighbour
    model = B.ModelMarketSpec(100.0, 0.2, TODAY, 0.03, 0.0)
    assert abs(B.bull_put(model, E1, width=5, short_delta=0.30).legs[0].strike - short.strike) <= 1


def test_iron_condor_call_delta_defaults_to_short_delta(bsm_chain):
    condor = B.iron_condor(bsm_chain, E1, width=5, short_delta=0.16)
    put_delta = float(bsm_greeks(100.0, condor.legs[1].strike, 30 / 365, 0.03, 0.0, 0.2, False).delta)
    call_delta = float(bsm_greeks(100.0, condor.legs[2].strike, 30 / 365, 0.03, 0.0, 0.2, True).delta)
    # 1-point strikes move a 16-delta option's delta by ~0.04, so the closest is within 0.025
    assert abs(abs(put_delta) - 0.16) < 0.025 and abs(call_delta - 0.16) < 0.025
    wider = B.iron_condor(bsm_chain, E1, width=5, short_delta=0.16, call_delta=0.10)
    assert wider.legs[2].strike > condor.legs[2].strike


def test_expiry_for_dte(bsm_chain):
    assert B.expiry_for_dte(bsm_chain, 40) == E1
    assert B.expiry_for_dte(bsm_chain, 50) == E2
    assert B.expiry_for_dte(B.ModelMarketSpec(100.0, 0.2, TODAY), 17) == TODAY + timedelta(days=17)
    with pytest.raises(ConfigError, match="dte -3"):
        B.expiry_for_dte(bsm_chain, -3)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda c: B.bull_put(c, E1, width=5, short_strike=90), "width 5 leaves no strike"),
        (lambda c: B.bear_call(c, E1, width=5, short_strike=110), "width 5 leaves no strike"),
        (lambda c: B.bull_put(c, E1, width=2, short_strike=100), "no strike near 98"),
        (lambda c: B.bull_put(c, E1, width=5, short_strike=101), "strike 101 has no quoted"),
        (lambda c: B.bull_put(c, E1, width=5), "needs a target delta"),
        (lambda c: B.bull_put(c, E1, width=5, short_strike=100, short_delta=0.3), "not both"),
        (lambda c: B.bull_put(c, E1, width=-5, short_strike=100), "width -5"),
        (lambda c: B.bull_put(c, E1, width=5, short_strike=100, quantity=0), "quantity 0"),
        (lambda c: B.bull_put(c, date(2026, 6, 1), width=5, short_strike=100), "not listed"),
        (lambda c: B.calendar(c, E1, E2, strike=90), "strike 90.0 has no quoted"),
        (lambda c: B.calendar(c, E2, E1, strike=100), "must be after the front"),
        (lambda c: B.iron_condor(c, E1, width=5, put_strike=105, call_strike=100), "not below"),
        (lambda c: B.butterfly(c, E1, width=5, right="X"), "right 'X'"),
        (lambda c: B.build(B.StrategySpec("bull_putt", E1), c), "Did you mean 'bull_put'"),
        (lambda c: B.build(B.StrategySpec("straddle", E1, width=5), c), "does not use width"),
        (lambda c: B.build(B.StrategySpec("calendar", E1, strike=100), c), "needs a back expiry"),
        (lambda c: B.build(B.StrategySpec("straddle", E1, back_expiry=E2), c), "one expiry"),
        (lambda c: B.bull_put("SPY", E1, width=5, short_strike=100), "market is a str"),
    ],
)
def test_errors_are_clear(hand_chain, call, fragment):
    with pytest.raises(ConfigError) as info:
        call(hand_chain)
    assert fragment in str(info.value)


def test_delta_needs_chain_greeks():
    raw = chain_from_rows([(E1, "P", 100, 2.6, 2.8), (E1, "P", 95, 0.9, 1.1)])
    with pytest.raises(ConfigError, match="with_greeks"):
        B.bull_put(raw, E1, width=5, short_delta=0.3)
    # explicit strikes work without greeks
    assert B.bull_put(raw, E1, width=5, short_strike=100).net_premium == pytest.approx(170)


def test_model_market_errors():
    model = B.ModelMarketSpec(100.0, 0.2, TODAY)
    with pytest.raises(ConfigError, match="leaves no strike"):
        B.bull_put(model, E1, width=5, short_strike=3)
    with pytest.raises(ConfigError, match="not after the valuation date"):
        B.straddle(model, TODAY)
    with pytest.raises(ConfigError, match="out of reach"):
        B.covered_call(model, E1, short_delta=1.0)
    with pytest.raises(ConfigError, match="vol -0.2"):
        B.ModelMarketSpec(100.0, -0.2, TODAY)


# -- model market ------------------------------------------------------------------------------


def test_model_premiums_are_bsm_prices_and_stock_is_bought_at_spot():
    model = B.ModelMarketSpec(250.0, 0.3, TODAY, 0.04, 0.01, underlying="abc", strike_step=5.0)
    collar = B.collar(model, E2, put_delta=0.25, call_delta=0.30)
    t = 60 / 365
    for leg in collar.legs:
        assert leg.strike % 5 == 0
        assert leg.premium == pytest.approx(float(bsm_price(250.0, leg.strike, t, 0.04, 0.01, 0.3, leg.is_call)))
    assert collar.stock_shares == 100 and collar.stock_price == 250.0
    assert collar.underlying == "abc"
    assert B.leg_vols(collar, model) == (0.3, 0.3)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spot=st.floats(20, 2000), vol=st.floats(0.08, 0.9), delta=st.floats(0.08, 0.45),
       width_frac=st.floats(0.01, 0.1), days=st.integers(7, 120))
def test_credit_spread_formulas_hold_for_any_model_market(spot, vol, delta, width_frac, days):
    model = B.ModelMarketSpec(spot, vol, TODAY, 0.03, 0.005, strike_step=0.01)
    width = round(spot * width_frac, 2)
    expiry = TODAY + timedelta(days=days)
    spread = B.bull_put(model, expiry, width=width, short_delta=delta)
    short, long_ = spread.legs
    # the strike chosen by delta has that delta up to the 0.01 strike rounding: the target
    # lies between the deltas half a step either side
    t = days / 365
    below, above = np.abs(bsm_greeks(spot, short.strike + np.array([-0.005, 0.005]), t, 0.03,
                                     0.005, vol, False).delta)
    assert below - 1e-9 <= delta <= above + 1e-9
    credit = spread.net_premium
    stats = payoff_stats(spread)
    assert stats.max_profit == pytest.approx(credit, abs=1e-6)
    assert stats.max_loss == pytest.approx(100 * (short.strike - long_.strike) - credit, abs=1e-6)
    if credit > 1e-6:
        assert stats.breakevens == pytest.approx((short.strike - credit / 100,), abs=1e-6)
    condor = B.iron_condor(model, expiry, width=width, short_delta=delta)
    cstats = payoff_stats(condor)
    assert cstats.max_profit == pytest.approx(condor.net_premium, abs=1e-6)
    assert cstats.max_loss == pytest.approx(100 * width - condor.net_premium, abs=1e-4)


# -- real chain ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_spy_bull_put_by_delta(shared_data):
    from framework.options.chains import load_chain

    path = shared_data / "options" / "SPY_chain_2026-05-01.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} not found")
    chain = load_chain(path).with_greeks(0.0371, 0.0102)
    expiry = next(e for e in chain.expiries() if 30 <= (e - chain.snapshot_date).days <= 45)
    spread = B.bull_put(chain, expiry, width=5, short_delta=0.30)
    frame = chain.frame.assign(mid=chain.mid())
    for leg in spread.legs:
        row = frame[(frame["expiry"] == expiry) & (frame["right"] == "P") & (frame["strike"] == leg.strike)].iloc[0]
        assert leg.premium == pytest.approx(row["mid"])
        if leg.quantity < 0:
            assert abs(abs(row["delta"]) - 0.30) < 0.03
    assert spread.legs[0].strike - spread.legs[1].strike == 5
    assert 0 < spread.net_premium < 500
