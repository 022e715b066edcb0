"""Build the common multi-leg option strategies as :class:`OptionPosition` objects.

Every builder takes a *market* first, either

* an :class:`~framework.options.chains.OptionChain` after ``chain.with_greeks(rate, div)``:
  strikes chosen by delta come from ``chain.select_by_delta`` (closest ``|delta|``), explicit
  strikes must be listed, wing strikes are the listed strike nearest ``anchor +- width`` on the
  far side of the anchor, and every premium is the quote mid ``(bid + ask) / 2``; the valuation
  date is the snapshot's New York date; or
* a :class:`ModelMarketSpec` (spot, one flat vol, valuation date, rate, dividend yield): any strike
  > 0 is allowed, strikes chosen by delta invert the BSM delta and are rounded to
  ``strike_step``, and premiums are :func:`framework.options.bsm.bsm_price` at the flat vol
  (ACT/365 calendar days to expiry). Use it for what-if analysis without quotes.

Anchors and widths (``width`` is in price units, > 0):

==================  ===============================================================  ==========
builder             legs (quantity q = 1 unit)                                        anchor
==================  ===============================================================  ==========
bull_put            -q P K, +q P K - w                                                short put
bear_call           -q C K, +q C K + w                                                short call
bull_call           +q C K - w, -q C K                                                short call
bear_put            +q P K + w, -q P K                                                short put
iron_condor         +q P Kp - w, -q P Kp, -q C Kc, +q C Kc + w                        shorts
iron_butterfly      +q P K - w, -q P K, -q C K, +q C K + w                            K (ATM)
butterfly           +q R K - w, -2q R K, +q R K + w  (R = right, call by default)      K (ATM)
calendar            -q R K front, +q R K back                                         K
diagonal            -q R K front, +q R K -+ w back (deeper in the money: - for calls)  K
straddle            q C K, q P K (q < 0 sells it)                                     K (ATM)
strangle            q P Kp, q C Kc (q < 0 sells it)                                   Kp, Kc
covered_call        +100q shares at spot, -q C K                                      K
protective_put      +100q shares at spot, +q P K                                      K
collar              +100q shares at spot, +q P Kp, -q C Kc                            Kp, Kc
==================  ===============================================================  ==========

An anchor is given either as a target ``|delta|`` or as a strike (not both); "ATM" anchors
default to the strike nearest the spot. :func:`build` dispatches on a strategy name with a
:class:`StrategySpec` (what ``fw options strategy`` uses).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import norm

from framework.errors import ConfigError, DataError, unknown_name_message
from framework.options.legs import Leg, OptionPosition, as_date

if TYPE_CHECKING:
    from framework.options.chains import OptionChain

DAYS_PER_YEAR = 365.0
MULTIPLIER = 100


@dataclass(frozen=True)
class ModelMarketSpec:
    """A market without quotes: strikes and premiums come from Black-Scholes-Merton.

    Parameters
    ----------
    spot : float
        Underlying price on ``as_of`` (> 0).
    vol : float
        Flat annualised vol for every strike and expiry (decimal, > 0).
    as_of : datetime.date
        Valuation (trade) date.
    rate, div : float
        Continuous risk-free rate and dividend yield (decimals).
    underlying : str
        Ticker used to label the position.
    strike_step : float
        Strike grid for strikes chosen by delta or at the money (e.g. 1.0, 5.0).
    """

    spot: float
    vol: float
    as_of: date
    rate: float = 0.0
    div: float = 0.0
    underlying: str = ""
    strike_step: float = 1.0

    def __post_init__(self) -> None:
        for name in ("spot", "vol", "strike_step"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"ModelMarketSpec {name} {value!r} must be a finite number > 0.")
        for name in ("rate", "div"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ConfigError(f"ModelMarketSpec {name} {value!r} must be a finite decimal (0.04 = 4%).")
        object.__setattr__(self, "as_of", as_date(self.as_of, "ModelMarketSpec as_of"))


Market = Any  # ModelMarketSpec or OptionChain (with greeks); checked by _quotes()


# ---------------------------------------------------------------------------------------------
# quote sources


class _ModelQuotes:
    """Strikes and premiums from BSM at a flat vol."""

    def __init__(self, spec: ModelMarketSpec) -> None:
        self.spec = spec
        self.underlying = spec.underlying
        self.spot = float(spec.spot)
        self.as_of = spec.as_of
        self.rate, self.div = float(spec.rate), float(spec.div)

    def expiry(self, value: object, what: str = "expiry") -> date:
        day = as_date(value, what)
        if day <= self.as_of:
            raise ConfigError(
                f"{what} {day.isoformat()} is not after the valuation date "
                f"{self.as_of.isoformat()}; pick a later expiry (or a positive --dte)."
            )
        return day

    def _t(self, expiry: date) -> float:
        return (expiry - self.as_of).days / DAYS_PER_YEAR

    def _round(self, strike: float) -> float:
        step = self.spec.strike_step
        return float(round(round(strike / step) * step, 10))

    def delta_strike(self, right: str, delta: float, expiry: date) -> float:
        t, vol = self._t(expiry), self.spec.vol
        scaled = abs(delta) * math.exp(self.div * t)
        if not 0 < scaled < 1:
            raise ConfigError(
                f"delta {delta!r} is out of reach for a {right} expiring {expiry.isoformat()}: "
                f"|delta| must be in (0, {math.exp(-self.div * t):.4f})."
            )
        d1 = norm.ppf(scaled) if right == "C" else -norm.ppf(scaled)
        drift = (self.rate - self.div + 0.5 * vol * vol) * t
        strike = self._round(self.spot * math.exp(-d1 * vol * math.sqrt(t) + drift))
        if strike <= 0:
            raise ConfigError(
                f"delta {delta!r} rounds to strike {strike:g}; use a smaller strike_step."
            )
        return strike

    def atm_strike(self, expiry: date) -> float:
        return max(self._round(self.spot), self.spec.strike_step)

    def listed(self, right: str, strike: float, expiry: date) -> float:
        value = float(strike)
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"strike {strike!r} must be a finite price > 0.")
        return value

    def wing(self, right: str, anchor: float, offset: float, expiry: date) -> float:
        target = anchor + offset
        if target <= 0:
            raise ConfigError(
                f"width {abs(offset):g} below strike {anchor:g} leaves no strike (it would be "
                f"{target:g}); use a width smaller than {anchor:g}."
            )
        return float(round(target, 10))

    def premium(self, right: str, strike: float, expiry: date) -> float:
        from framework.options.bsm import bsm_price

        price = bsm_price(self.spot, strike, self._t(expiry), self.rate, self.div, self.spec.vol,
                          right == "C")
        return float(price)

    def vol(self, right: str, strike: float, expiry: date) -> float:
        return float(self.spec.vol)


class _ChainQuotes:
    """Strikes and mid premiums from an option chain with greeks."""

    def __init__(self, chain: OptionChain) -> None:
        if not math.isfinite(chain.spot):
            raise DataError(
                f"the {chain.underlying} chain has no underlying_price; strategies need the spot."
            )
        self.chain = chain
        self.underlying = chain.underlying
        self.spot = float(chain.spot)
        self.as_of = chain.snapshot_date
        frame = chain.frame.assign(mid=chain.mid())
        self.frame = frame[np.isfinite(frame["mid"])]

    def expiry(self, value: object, what: str = "expiry") -> date:
        day = as_date(value, what)
        listed = self.chain.expiries()
        if day not in listed:
            shown = ", ".join(e.isoformat() for e in listed[:12]) + (" ..." if len(listed) > 12 else "")
            raise ConfigError(
                f"{what} {day.isoformat()} is not listed in the {self.underlying} chain; listed: "
                f"{shown}. Use --dte to pick the nearest."
            )
        return day

    def _rows(self, right: str, expiry: date):
        rows = self.frame[(self.frame["expiry"] == expiry) & (self.frame["right"] == right)]
        if rows.empty:
            raise DataError(
                f"the {self.underlying} chain has no quoted {right} contracts expiring "
                f"{expiry.isoformat()}; pick another expiry."
            )
        return rows

    def delta_strike(self, right: str, delta: float, expiry: date) -> float:
        if "delta" not in self.chain.frame.columns:
            raise ConfigError(
                "choosing strikes by delta needs chain greeks: pass chain.with_greeks(rate, div)."
            )
        if not 0 < abs(delta) < 1:
            raise ConfigError(f"delta {delta!r} must be within (0, 1) in absolute value.")
        row = self.chain.select_by_delta(right, abs(delta), expiry)
        return float(row["strike"])

    def atm_strike(self, expiry: date) -> float:
        calls = set(self._rows("C", expiry)["strike"])
        both = np.array(sorted(calls & set(self._rows("P", expiry)["strike"])))
        if both.size == 0:
            raise DataError(
                f"no strike expiring {expiry.isoformat()} has both a call and a put quote."
            )
        return float(both[np.argmin(np.abs(both - self.spot))])

    def listed(self, right: str, strike: float, expiry: date) -> float:
        strikes = self._rows(right, expiry)["strike"].to_numpy(dtype=float)
        value = float(strike)
        if np.any(np.isclose(strikes, value, rtol=0, atol=1e-6)):
            return value
        near = strikes[np.argsort(np.abs(strikes - value))[:4]]
        raise ConfigError(
            f"strike {strike!r} has no quoted {right} expiring {expiry.isoformat()} in the "
            f"{self.underlying} chain; nearest listed: {', '.join(f'{k:g}' for k in sorted(near))}."
        )

    def wing(self, right: str, anchor: float, offset: float, expiry: date) -> float:
        strikes = self._rows(right, expiry)["strike"].to_numpy(dtype=float)
        side = strikes[strikes > anchor] if offset > 0 else strikes[strikes < anchor]
        target = anchor + offset
        direction = "above" if offset > 0 else "below"
        if side.size == 0:
            raise ConfigError(
                f"width {abs(offset):g} leaves no strike: no quoted {right} {direction} {anchor:g} "
                f"expiring {expiry.isoformat()}."
            )
        best = float(side[np.argmin(np.abs(side - target))])
        if abs(best - target) > 0.5 * abs(offset) + 1e-9:
            raise ConfigError(
                f"width {abs(offset):g} leaves no strike near {target:g} ({right}, "
                f"{expiry.isoformat()}): the closest quoted {direction} {anchor:g} is {best:g}. "
                "Use a width that matches the listed strikes."
            )
        return best

    def _row(self, right: str, strike: float, expiry: date):
        rows = self._rows(right, expiry)
        hit = rows[np.isclose(rows["strike"].to_numpy(dtype=float), strike, rtol=0, atol=1e-6)]
        if hit.empty:
            raise DataError(
                f"no quote for {self.underlying} {right} {strike:g} expiring {expiry.isoformat()}."
            )
        return hit.iloc[0]

    def premium(self, right: str, strike: float, expiry: date) -> float:
        return float(self._row(right, strike, expiry)["mid"])

    def vol(self, right: str, strike: float, expiry: date) -> float:
        row = self._row(right, strike, expiry)
        value = float(row["model_iv"]) if "model_iv" in row.index else math.nan
        if not math.isfinite(value):
            raise DataError(
                f"{self.underlying} {right} {strike:g} {expiry.isoformat()} has no model IV "
                "(run chain.with_greeks(rate, div) first, or its mid has no IV)."
            )
        return value


def _quotes(market: Market) -> _ModelQuotes | _ChainQuotes:
    from framework.options.chains import OptionChain

    if isinstance(market, ModelMarketSpec):
        return _ModelQuotes(market)
    if isinstance(market, OptionChain):
        return _ChainQuotes(market)
    raise ConfigError(
        f"market is a {type(market).__name__}; expected an OptionChain (with greeks) or a "
        "ModelMarketSpec(spot, vol, as_of, ...)."
    )


def market_as_of(market: Market) -> date:
    """Valuation date of a market (snapshot date of a chain, ``as_of`` of a model)."""
    return _quotes(market).as_of


def market_spot(market: Market) -> float:
    """Underlying price of a market."""
    return _quotes(market).spot


def leg_vols(position: OptionPosition, market: Market) -> tuple[float, ...]:
    """Vol of each leg: the flat model vol, or each contract's ``model_iv`` in a chain."""
    quotes = _quotes(market)
    return tuple(quotes.vol(leg.right, leg.strike, leg.expiry) for leg in position.legs)


# ---------------------------------------------------------------------------------------------
# helpers


def _anchor(q, right: str, expiry: date, delta: float | None, strike: float | None,
            what: str, atm_default: bool = False) -> float:
    """The anchor strike from exactly one of ``delta`` / ``strike`` (or ATM when allowed)."""
    if delta is not None and strike is not None:
        raise ConfigError(f"give the {what} as a delta or as a strike, not both "
                          f"(got delta {delta!r} and strike {strike!r}).")
    if strike is not None:
        return q.listed(right, strike, expiry)
    if delta is not None:
        return q.delta_strike(right, delta, expiry)
    if atm_default:
        return q.atm_strike(expiry)
    raise ConfigError(f"the {what} needs a target delta (e.g. 0.30) or a strike; got neither.")


def _width(width: float | None) -> float:
    if width is None:
        raise ConfigError("this strategy needs a width (> 0, in price units, e.g. 5).")
    value = float(width)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"width {width!r} must be a finite price distance > 0.")
    return value


def _units(quantity: object, signed: bool = False) -> int:
    value = float(quantity)  # type: ignore[arg-type]
    if not math.isfinite(value) or value != int(value) or value == 0 or (value < 0 and not signed):
        expected = "a non-zero whole number (negative sells)" if signed else "a whole number >= 1"
        raise ConfigError(f"quantity {quantity!r} must be {expected}.")
    return int(value)


def _leg(q, right: str, strike: float, expiry: date, quantity: int) -> Leg:
    return Leg(right, strike, expiry, quantity, q.premium(right, strike, expiry), MULTIPLIER)


def _position(q, legs: list[Leg], shares: int = 0) -> OptionPosition:
    price = q.spot if shares else math.nan
    return OptionPosition(q.underlying, tuple(legs), shares, price)


# ---------------------------------------------------------------------------------------------
# verticals


def bull_put(market: Market, expiry: object, *, width: float, short_delta: float | None = None,
             short_strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """Bull put credit spread: sell a put at the anchor, buy one ``width`` lower."""
    q, n, w = _quotes(market), _units(quantity), _width(width)
    day = q.expiry(expiry)
    k = _anchor(q, "P", day, short_delta, short_strike, "short put")
    low = q.wing("P", k, -w, day)
    return _position(q, [_leg(q, "P", k, day, -n), _leg(q, "P", low, day, n)])


def bear_call(market: Market, expiry: object, *, width: float, short_delta: float | None = None,
              short_strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """Bear call credit spread: sell a call at the anchor, buy one ``width`` higher."""
    q, n, w = _quotes(market), _units(quantity), _width(width)
    day = q.expiry(expiry)
    k = _anchor(q, "C", day, short_delta, short_strike, "short call")
    high = q.wing("C", k, w, day)
    return _position(q, [_leg(q, "C", k, day, -n), _leg(q, "C", high, day, n)])


def bull_call(market: Market, expiry: object, *, width: float, short_delta: float | None = None,
              short_strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """Bull call debit spread: buy a call ``width`` below the short call (the anchor)."""
    q, n, w = _quotes(market), _units(quantity), _width(width)
    day = q.expiry(expiry)
    k = _anchor(q, "C", day, short_delta, short_strike, "short call")
    low = q.wing("C", k, -w, day)
    return _position(q, [_leg(q, "C", low, day, n), _leg(q, "C", k, day, -n)])


def bear_put(market: Market, expiry: object, *, width: float, short_delta: float | None = None,
             short_strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """Bear put debit spread: buy a put ``width`` above the short put (the anchor)."""
    q, n, w = _quotes(market), _units(quantity), _width(width)
    day = q.expiry(expiry)
    k = _anchor(q, "P", day, short_delta, short_strike, "short put")
    high = q.wing("P", k, w, day)
    return _position(q, [_leg(q, "P", high, day, n), _leg(q, "P", k, day, -n)])


# ---------------------------------------------------------------------------------------------
# four-leg and butterflies


def iron_condor(market: Market, expiry: object, *, width: float, short_delta: float | None = None,
                call_delta: float | None = None, put_strike: float | None = None,
                call_strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """Short iron condor: a bull put spread below and a bear call spread above.

    ``short_delta`` sets both short strikes unless ``call_delta`` (or ``call_strike``) sets the
    call side; ``put_strike`` / ``call_strike`` give the short strikes directly.
    """
    q, n, w = _quotes(market), _units(quantity), _width(width)
    day = q.expiry(expiry)
    kp = _anchor(q, "P", day, short_delta if put_strike is None else None, put_strike, "short put")
    c_delta = call_delta if call_delta is not None else (short_delta if call_strike is None else None)
    kc = _anchor(q, "C", day, c_delta, call_strike, "short call")
    if kp >= kc:
        raise ConfigError(
            f"short put {kp:g} is not below short call {kc:g}; an iron condor needs the put "
            "strike under the call strike (use a smaller delta, or an iron butterfly)."
        )
    legs = [
        _leg(q, "P", q.wing("P", kp, -w, day), day, n),
        _leg(q, "P", kp, day, -n),
        _leg(q, "C", kc, day, -n),
        _leg(q, "C", q.wing("C", kc, w, day), day, n),
    ]
    return _position(q, legs)


def iron_butterfly(market: Market, expiry: object, *, width: float, strike: float | None = None,
                   quantity: int = 1) -> OptionPosition:
    """Short iron butterfly: sell the straddle at ``strike`` (default ATM), buy wings +- width."""
    q, n, w = _quotes(market), _units(quantity), _width(width)
    day = q.expiry(expiry)
    k = q.listed("C", strike, day) if strike is not None else q.atm_strike(day)
    q.listed("P", k, day)
    legs = [
        _leg(q, "P", q.wing("P", k, -w, day), day, n),
        _leg(q, "P", k, day, -n),
        _leg(q, "C", k, day, -n),
        _leg(q, "C", q.wing("C", k, w, day), day, n),
    ]
    return _position(q, legs)


def butterfly(market: Market, expiry: object, *, width: float, strike: float | None = None,
              short_delta: float | None = None, right: str = "C", quantity: int = 1) -> OptionPosition:
    """Long butterfly: buy ``K - w``, sell two ``K``, buy ``K + w`` (one right; K default ATM)."""
    q, n, w = _quotes(market), _units(quantity), _width(width)
    r = _right(right)
    day = q.expiry(expiry)
    k = _anchor(q, r, day, short_delta, strike, "body", atm_default=True)
    legs = [
        _leg(q, r, q.wing(r, k, -w, day), day, n),
        _leg(q, r, k, day, -2 * n),
        _leg(q, r, q.wing(r, k, w, day), day, n),
    ]
    return _position(q, legs)


# ---------------------------------------------------------------------------------------------
# time spreads


def _two_expiries(q, front: object, back: object) -> tuple[date, date]:
    f, b = q.expiry(front, "front expiry"), q.expiry(back, "back expiry")
    if b <= f:
        raise ConfigError(
            f"back expiry {b.isoformat()} must be after the front expiry {f.isoformat()}."
        )
    return f, b


def calendar(market: Market, front_expiry: object, back_expiry: object, *,
             strike: float | None = None, short_delta: float | None = None, right: str = "C",
             quantity: int = 1) -> OptionPosition:
    """Long calendar: sell the front-month option, buy the back month at the same strike."""
    q, n, r = _quotes(market), _units(quantity), _right(right)
    front, back = _two_expiries(q, front_expiry, back_expiry)
    k = _anchor(q, r, front, short_delta, strike, "strike", atm_default=True)
    k_back = q.listed(r, k, back)
    return _position(q, [_leg(q, r, k, front, -n), _leg(q, r, k_back, back, n)])


def diagonal(market: Market, front_expiry: object, back_expiry: object, *, width: float,
             strike: float | None = None, short_delta: float | None = None, right: str = "C",
             quantity: int = 1) -> OptionPosition:
    """Long diagonal: sell the front month at K, buy the back month ``width`` deeper in the money
    (K - w for calls, K + w for puts)."""
    q, n, r, w = _quotes(market), _units(quantity), _right(right), _width(width)
    front, back = _two_expiries(q, front_expiry, back_expiry)
    k = _anchor(q, r, front, short_delta, strike, "short strike", atm_default=True)
    k_long = q.wing(r, k, -w if r == "C" else w, back)
    return _position(q, [_leg(q, r, k, front, -n), _leg(q, r, k_long, back, n)])


# ---------------------------------------------------------------------------------------------
# volatility


def straddle(market: Market, expiry: object, *, strike: float | None = None,
             quantity: int = 1) -> OptionPosition:
    """Straddle at ``strike`` (default ATM); ``quantity`` > 0 buys, < 0 sells."""
    q, n = _quotes(market), _units(quantity, signed=True)
    day = q.expiry(expiry)
    k = q.listed("C", strike, day) if strike is not None else q.atm_strike(day)
    q.listed("P", k, day)
    return _position(q, [_leg(q, "P", k, day, n), _leg(q, "C", k, day, n)])


def strangle(market: Market, expiry: object, *, delta: float | None = None,
             put_strike: float | None = None, call_strike: float | None = None,
             quantity: int = 1) -> OptionPosition:
    """Strangle: an out-of-the-money put and call; ``quantity`` > 0 buys, < 0 sells."""
    q, n = _quotes(market), _units(quantity, signed=True)
    day = q.expiry(expiry)
    kp = _anchor(q, "P", day, delta if put_strike is None else None, put_strike, "put")
    kc = _anchor(q, "C", day, delta if call_strike is None else None, call_strike, "call")
    if kp > kc:
        raise ConfigError(f"strangle put strike {kp:g} is above its call strike {kc:g}.")
    return _position(q, [_leg(q, "P", kp, day, n), _leg(q, "C", kc, day, n)])


# ---------------------------------------------------------------------------------------------
# with stock


def covered_call(market: Market, expiry: object, *, short_delta: float | None = None,
                 strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """100 shares per contract bought at the spot, one call sold per 100 shares."""
    q, n = _quotes(market), _units(quantity)
    day = q.expiry(expiry)
    k = _anchor(q, "C", day, short_delta, strike, "short call")
    return _position(q, [_leg(q, "C", k, day, -n)], shares=n * MULTIPLIER)


def protective_put(market: Market, expiry: object, *, delta: float | None = None,
                   strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """100 shares per contract bought at the spot, one put bought per 100 shares."""
    q, n = _quotes(market), _units(quantity)
    day = q.expiry(expiry)
    k = _anchor(q, "P", day, delta, strike, "put")
    return _position(q, [_leg(q, "P", k, day, n)], shares=n * MULTIPLIER)


def collar(market: Market, expiry: object, *, put_delta: float | None = None,
           call_delta: float | None = None, put_strike: float | None = None,
           call_strike: float | None = None, quantity: int = 1) -> OptionPosition:
    """Shares bought at the spot, a put bought below and a call sold above (per 100 shares).

    ``call_delta`` defaults to ``put_delta`` when neither call input is given.
    """
    q, n = _quotes(market), _units(quantity)
    day = q.expiry(expiry)
    kp = _anchor(q, "P", day, put_delta, put_strike, "put")
    c_delta = call_delta if call_delta is not None or call_strike is not None else put_delta
    kc = _anchor(q, "C", day, c_delta, call_strike, "call")
    if kp >= kc:
        raise ConfigError(f"collar put strike {kp:g} must be below its call strike {kc:g}.")
    legs = [_leg(q, "P", kp, day, n), _leg(q, "C", kc, day, -n)]
    return _position(q, legs, shares=n * MULTIPLIER)


def _right(right: object) -> str:
    code = str(right).strip().upper()[:1] if isinstance(right, str) else ""
    if code not in ("C", "P") or str(right).strip().upper() not in ("C", "P", "CALL", "PUT"):
        raise ConfigError(f"right {right!r} must be 'C' (call) or 'P' (put).")
    return code


# ---------------------------------------------------------------------------------------------
# dispatch by name


@dataclass(frozen=True)
class StrategySpec:
    """A strategy request by name, as the CLI receives it.

    Parameters
    ----------
    name : str
        One of :data:`STRATEGIES`.
    expiry : datetime.date
        (Front) expiry.
    back_expiry : datetime.date, optional
        Back expiry of calendars and diagonals.
    delta : float, optional
        Anchor |delta| (short legs; puts of strangles and collars; body of butterflies).
    call_delta : float, optional
        Call-side |delta| of iron condors and collars when it differs from ``delta``.
    strike : float, optional
        Anchor strike (the put strike of condors, strangles and collars).
    call_strike : float, optional
        Call strike of condors, strangles and collars.
    width : float, optional
        Wing width in price units.
    right : {"C", "P"}
        Right of butterflies, calendars and diagonals.
    quantity : int
        Units of the strategy (signed for straddles and strangles).
    """

    name: str
    expiry: date
    back_expiry: date | None = None
    delta: float | None = None
    call_delta: float | None = None
    strike: float | None = None
    call_strike: float | None = None
    width: float | None = None
    right: str = "C"
    quantity: int = 1


# name -> (builder, {spec field: builder keyword}); "expiry"/"back_expiry" are positional
_VERTICAL = {"delta": "short_delta", "strike": "short_strike", "width": "width", "quantity": "quantity"}
_CONDOR = {"delta": "short_delta", "call_delta": "call_delta", "strike": "put_strike",
           "call_strike": "call_strike", "width": "width", "quantity": "quantity"}
_SPREAD_TIME = {"strike": "strike", "delta": "short_delta", "right": "right", "quantity": "quantity"}
_BUILDERS: dict[str, tuple[Callable[..., OptionPosition], dict[str, str]]] = {
    "bull_put": (bull_put, _VERTICAL),
    "bear_call": (bear_call, _VERTICAL),
    "bull_call": (bull_call, _VERTICAL),
    "bear_put": (bear_put, _VERTICAL),
    "iron_condor": (iron_condor, _CONDOR),
    "iron_butterfly": (iron_butterfly, {"strike": "strike", "width": "width", "quantity": "quantity"}),
    "butterfly": (butterfly, {**_SPREAD_TIME, "width": "width"}),
    "calendar": (calendar, _SPREAD_TIME),
    "diagonal": (diagonal, {**_SPREAD_TIME, "width": "width"}),
    "straddle": (straddle, {"strike": "strike", "quantity": "quantity"}),
    "strangle": (strangle, {"delta": "delta", "strike": "put_strike", "call_strike": "call_strike",
                            "quantity": "quantity"}),
    "covered_call": (covered_call, {"delta": "short_delta", "strike": "strike", "quantity": "quantity"}),
    "protective_put": (protective_put, {"delta": "delta", "strike": "strike", "quantity": "quantity"}),
    "collar": (collar, {"delta": "put_delta", "call_delta": "call_delta", "strike": "put_strike",
                        "call_strike": "call_strike", "quantity": "quantity"}),
}
STRATEGIES: tuple[str, ...] = tuple(_BUILDERS)
TWO_EXPIRY = frozenset({"calendar", "diagonal"})


def build(spec: StrategySpec, market: Market) -> OptionPosition:
    """Build the strategy ``spec.name`` in ``market``.

    Raises
    ------
    ConfigError
        Unknown name, a field the strategy does not use (e.g. a width for a straddle), a missing
        back expiry for calendars/diagonals, or any builder error.
    """
    name = spec.name.strip().lower().replace("-", "_")
    if name not in _BUILDERS:
        raise ConfigError(unknown_name_message("strategy", spec.name, STRATEGIES))
    builder, mapping = _BUILDERS[name]
    defaults = {f.name: f.default for f in fields(StrategySpec)}
    unused = [
        key for key in ("delta", "call_delta", "strike", "call_strike", "width", "right", "quantity")
        if key not in mapping and getattr(spec, key) != defaults[key]
    ]
    if unused:
        raise ConfigError(
            f"{name} does not use {', '.join(unused)}; it takes {', '.join(sorted(mapping))}."
        )
    kwargs = {kw: getattr(spec, key) for key, kw in mapping.items()
              if getattr(spec, key) is not None}
    if name in TWO_EXPIRY:
        if spec.back_expiry is None:
            raise ConfigError(f"{name} needs a back expiry (later than the front expiry).")
        return builder(market, spec.expiry, spec.back_expiry, **kwargs)
    if spec.back_expiry is not None:
        raise ConfigError(f"{name} has one expiry; drop the back expiry.")
    return builder(market, spec.expiry, **kwargs)


def expiry_for_dte(market: Market, dte: int) -> date:
    """The expiry ``dte`` calendar days out: the nearest listed one in a chain, exact in a model."""
    from framework.options.chains import OptionChain

    if isinstance(dte, bool) or not isinstance(dte, int | np.integer) or dte < 0:
        raise ConfigError(f"dte {dte!r} must be a whole number of calendar days >= 0.")
    if isinstance(market, OptionChain):
        return market.nearest_expiry(int(dte))
    return _quotes(market).as_of + timedelta(days=int(dte))
