"""Legs and positions: validation messages, cash conventions, defined-risk coverage."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from framework.errors import ConfigError
from framework.options.legs import Leg, OptionPosition, uncovered_shorts

E1 = date(2026, 6, 18)
E2 = date(2026, 7, 17)


def test_leg_normalises_inputs():
    leg = Leg("p", 95, datetime(2026, 6, 18, 16, 0), -2.0, 1.25)
    assert leg.right == "P"
    assert leg.strike == 95.0 and isinstance(leg.strike, float)
    assert leg.expiry == E1 and type(leg.expiry) is date
    assert leg.quantity == -2 and isinstance(leg.quantity, int)
    assert leg.multiplier == 100
    assert Leg("C", 100, "2026-06-18", 1, 2.0).expiry == E1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"right": "X"}, "'X'"),
        ({"strike": 0}, "strike 0"),
        ({"strike": float("nan")}, "strike nan"),
        ({"quantity": 0}, "quantity 0"),
        ({"quantity": 1.5}, "1.5"),
        ({"premium": -0.5}, "premium -0.5"),
        ({"multiplier": 0}, "multiplier 0"),
        ({"expiry": "18/06/2026"}, "'18/06/2026'"),
        ({"expiry": 20260618}, "20260618"),
    ],
)
def test_leg_errors_name_the_bad_value(kwargs, fragment):
    base = {"right": "C", "strike": 100.0, "expiry": E1, "quantity": 1, "premium": 2.0}
    with pytest.raises(ConfigError) as info:
        Leg(**{**base, **kwargs})
    assert fragment in str(info.value)


def test_cash_flow_and_net_premium_credit_positive():
    short = Leg("P", 100, E1, -1, 2.0)
    long_ = Leg("P", 95, E1, 1, 0.5)
    assert short.cash_flow == 200.0
    assert long_.cash_flow == -50.0
    pos = OptionPosition("SPY", [short, long_])
    assert pos.net_premium == pytest.approx(150.0)
    assert isinstance(pos.legs, tuple)
    assert pos.strikes == (95.0, 100.0)
    assert pos.front_expiry == E1


def test_position_validation():
    with pytest.raises(ConfigError, match="at least one leg"):
        OptionPosition("SPY", ())
    with pytest.raises(ConfigError, match="stock_price nan"):
        OptionPosition("SPY", (), stock_shares=100)
    with pytest.raises(ConfigError, match="leg 0 is a tuple"):
        OptionPosition("SPY", [("C", 100, E1, 1, 2.0)])
    pos = OptionPosition("SPY", (), stock_shares=100, stock_price=50.0)
    assert pos.stock_cost == 5000.0
    with pytest.raises(ConfigError, match="no expiry"):
        _ = pos.front_expiry


@pytest.mark.parametrize(
    ("legs", "shares", "defined"),
    [
        ([Leg("P", 100, E1, -1, 2), Leg("P", 95, E1, 1, 1)], 0, True),  # bull put
        ([Leg("C", 100, E1, -1, 2), Leg("C", 110, E1, 1, 1)], 0, True),  # bear call
        ([Leg("C", 100, E1, 1, 2), Leg("C", 110, E1, -1, 1)], 0, True),  # bull call (debit)
        ([Leg("P", 100, E1, -1, 2)], 0, False),  # naked put: undefined, like brokers say
        ([Leg("C", 100, E1, -1, 2)], 0, False),  # naked call
        ([Leg("C", 100, E1, -1, 2)], 100, True),  # covered call
        ([Leg("C", 100, E1, -2, 2)], 100, False),  # half-covered
        ([Leg("C", 100, E1, 1, 2), Leg("C", 105, E1, -2, 1)], 0, False),  # ratio spread
        ([Leg("C", 100, E1, -1, 2), Leg("C", 100, E2, 1, 3)], 0, True),  # calendar
        ([Leg("C", 100, E1, 1, 2), Leg("C", 100, E2, -1, 3)], 0, False),  # reverse calendar
        ([Leg("P", 95, E1, 1, 1), Leg("C", 105, E1, -1, 1)], 100, True),  # collar
        ([Leg("P", 100, E1, 1, 2), Leg("C", 100, E1, 1, 2)], 0, True),  # long straddle
    ],
)
def test_defined_risk_by_coverage(legs, shares, defined):
    pos = OptionPosition("X", legs, shares, 100.0 if shares else math.nan)
    assert pos.is_defined_risk is defined
    assert (uncovered_shorts(pos) == []) is defined


def test_short_stock_is_never_covered():
    pos = OptionPosition("X", [Leg("P", 95, E1, 1, 1)], -100, 100.0)
    problems = uncovered_shorts(pos)
    assert any("short stock" in p for p in problems)


def test_upside_slope_counts_calls_and_shares():
    pos = OptionPosition("X", [Leg("C", 100, E1, -1, 2), Leg("P", 90, E1, 1, 1)], 100, 100.0)
    assert pos.upside_slope == 0.0
    assert OptionPosition("X", [Leg("C", 100, E1, 2, 2)]).upside_slope == 200.0


def test_describe_is_readable():
    assert Leg("P", 95, E1, -1, 1.2).describe() == "-1 P 95 2026-06-18 @ 1.20"
