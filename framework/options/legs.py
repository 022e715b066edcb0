"""Option legs and multi-leg positions.

A :class:`Leg` is one option line of a trade (right, strike, expiry, signed quantity in contracts,
the premium per share that was paid or received, contract multiplier). An
:class:`OptionPosition` groups legs on one underlying, optionally with shares of the underlying
(covered calls, protective puts, collars).

Sign conventions (all of ``framework.options`` follows them):

* ``quantity`` > 0 is long (bought), < 0 is short (sold), in contracts;
* ``premium`` is the per-share price of one option, always >= 0; its cash sign follows from the
  quantity: buying pays it, selling receives it;
* :attr:`OptionPosition.net_premium` is in dollars with a credit positive (money received).

Defined risk (:attr:`OptionPosition.is_defined_risk`) is decided by *coverage*, not by the shape
of the payoff: at every point in time until the last expiry, each short call must be covered by
a long call alive at least as long, or by 100 long shares per contract, and each short put by a
long put alive at least as long. A naked short put therefore counts as undefined risk (as brokers
classify it) even though its loss stops at the strike; a covered call or a collar is defined risk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime

from framework.errors import ConfigError

RIGHTS = ("C", "P")


def as_date(value: object, what: str) -> date:
    """Coerce ``value`` (date, datetime, pandas Timestamp, ISO string) to a ``date``."""
    if isinstance(value, datetime):  # datetime and pandas.Timestamp subclass date: drop the time
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise ConfigError(
                f"{what} {value!r} is not a date; write it as YYYY-MM-DD (e.g. 2026-06-18)."
            ) from exc
    raise ConfigError(
        f"{what} {value!r} is a {type(value).__name__}; expected a datetime.date or an ISO "
        "string YYYY-MM-DD."
    )


def _finite(value: object, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} {value!r} is not a number.") from exc
    if not math.isfinite(number):
        raise ConfigError(f"{what} {value!r} must be a finite number.")
    return number


def _whole(value: object, what: str) -> int:
    number = _finite(value, what)
    if number != int(number):
        raise ConfigError(
            f"{what} {value!r} must be a whole number (options trade in whole contracts)."
        )
    return int(number)


@dataclass(frozen=True)
class Leg:
    """One option line of a position.

    Parameters
    ----------
    right : {"C", "P"}
        Call or put (lower case accepted and upper-cased).
    strike : float
        Strike price, > 0.
    expiry : datetime.date
        Expiration date (a datetime or ISO string is converted).
    quantity : int
        Contracts, + long / - short; never 0.
    premium : float
        Price per share paid (long) or received (short), >= 0.
    multiplier : int
        Shares per contract, default 100.
    """

    right: str
    strike: float
    expiry: date
    quantity: int
    premium: float
    multiplier: int = 100

    def __post_init__(self) -> None:
        right = str(self.right).upper()
        if right not in RIGHTS:
            raise ConfigError(
                f"leg right {self.right!r} is not an option right; expected 'C' (call) or 'P' (put)."
            )
        strike = _finite(self.strike, "leg strike")
        if strike <= 0:
            raise ConfigError(f"leg strike {self.strike!r} must be > 0.")
        quantity = _whole(self.quantity, "leg quantity")
        if quantity == 0:
            raise ConfigError(
                "leg quantity 0 is not a position; use + for long and - for short contracts."
            )
        premium = _finite(self.premium, "leg premium")
        if premium < 0:
            raise ConfigError(
                f"leg premium {self.premium!r} is negative; give the per-share price (>= 0) and "
                "put the direction in the sign of quantity."
            )
        multiplier = _whole(self.multiplier, "leg multiplier")
        if multiplier <= 0:
            raise ConfigError(f"leg multiplier {self.multiplier!r} must be a positive integer.")
        # frozen: normalised values go in through object.__setattr__
        object.__setattr__(self, "right", right)
        object.__setattr__(self, "strike", strike)
        object.__setattr__(self, "expiry", as_date(self.expiry, "leg expiry"))
        object.__setattr__(self, "quantity", quantity)
        object.__setattr__(self, "premium", premium)
        object.__setattr__(self, "multiplier", multiplier)

    @property
    def is_call(self) -> bool:
        """True for a call, False for a put."""
        return self.right == "C"

    @property
    def is_long(self) -> bool:
        """True when the leg was bought."""
        return self.quantity > 0

    @property
    def cash_flow(self) -> float:
        """Dollars received at the trade (credit positive): ``-quantity * premium * multiplier``."""
        return -self.quantity * self.premium * self.multiplier

    def describe(self) -> str:
        """``"-1 P 95 2026-06-18 @ 1.20"``: a one-line label for tables and plots."""
        side = f"{self.quantity:+d}"
        return f"{side} {self.right} {self.strike:g} {self.expiry.isoformat()} @ {self.premium:.2f}"


@dataclass(frozen=True)
class OptionPosition:
    """Option legs on one underlying, plus optional shares of the underlying.

    Parameters
    ----------
    underlying : str
        Ticker, e.g. ``"SPY"`` (may be empty for a purely hypothetical position).
    legs : tuple of Leg
        The option legs (a list is converted to a tuple).
    stock_shares : int
        Shares of the underlying held with the options (+ long, - short), default 0.
    stock_price : float
        Price paid per share; required (finite, > 0) when ``stock_shares`` is not 0.
    """

    underlying: str
    legs: tuple[Leg, ...] = field(default_factory=tuple)
    stock_shares: int = 0
    stock_price: float = math.nan

    def __post_init__(self) -> None:
        legs = tuple(self.legs)
        for i, leg in enumerate(legs):
            if not isinstance(leg, Leg):
                raise ConfigError(
                    f"position leg {i} is a {type(leg).__name__}; expected a Leg "
                    "(framework.options.legs.Leg)."
                )
        shares = _whole(self.stock_shares, "stock_shares")
        if not legs and shares == 0:
            raise ConfigError("a position needs at least one leg or some stock; got neither.")
        price = float(self.stock_price)
        if shares != 0 and (not math.isfinite(price) or price <= 0):
            raise ConfigError(
                f"stock_price {self.stock_price!r} is invalid for {shares} shares; give the price "
                "paid per share (> 0)."
            )
        object.__setattr__(self, "underlying", str(self.underlying))
        object.__setattr__(self, "legs", legs)
        object.__setattr__(self, "stock_shares", shares)
        object.__setattr__(self, "stock_price", price)

    @property
    def expiries(self) -> tuple[date, ...]:
        """Distinct leg expiries, earliest first."""
        return tuple(sorted({leg.expiry for leg in self.legs}))

    @property
    def front_expiry(self) -> date:
        """The earliest expiry: the horizon of payoff and probability analytics."""
        if not self.legs:
            raise ConfigError("a stock-only position has no expiry; add an option leg.")
        return self.expiries[0]

    @property
    def strikes(self) -> tuple[float, ...]:
        """Distinct strikes, ascending."""
        return tuple(sorted({leg.strike for leg in self.legs}))

    @property
    def net_premium(self) -> float:
        """Option premium in dollars at the trade, credit positive (stock excluded)."""
        return float(sum(leg.cash_flow for leg in self.legs))

    @property
    def stock_cost(self) -> float:
        """Dollars paid for the shares (negative for a short sale); 0 without stock."""
        return self.stock_shares * self.stock_price if self.stock_shares else 0.0

    @property
    def is_defined_risk(self) -> bool:
        """True when every short option is covered (see the module docstring for the rule)."""
        return not uncovered_shorts(self)

    @property
    def upside_slope(self) -> float:
        """Dollars of expiry P&L per 1.00 rise of the underlying far above every strike."""
        calls = sum(leg.quantity * leg.multiplier for leg in self.legs if leg.is_call)
        return float(calls + self.stock_shares)


def uncovered_shorts(position: OptionPosition) -> list[str]:
    """Describe each way the position's shorts are not covered; empty when defined risk.

    For every leg expiry ``E`` the legs still alive just before ``E`` (expiry >= E) are checked:
    long calls (in shares, plus long stock) must match short calls, long puts must match short
    puts. Short stock is never covered.
    """
    problems: list[str] = []
    if position.stock_shares < 0:
        problems.append(f"short stock ({position.stock_shares} shares) has unlimited upside risk")
    for expiry in position.expiries:
        alive = [leg for leg in position.legs if leg.expiry >= expiry]
        for right, cover in (("C", max(position.stock_shares, 0)), ("P", 0)):
            short = sum(-lg.quantity * lg.multiplier for lg in alive if lg.right == right and lg.quantity < 0)
            long_ = sum(lg.quantity * lg.multiplier for lg in alive if lg.right == right and lg.quantity > 0)
            if short > long_ + cover:
                kind = "calls" if right == "C" else "puts"
                covered_by = "long calls or shares" if right == "C" else "long puts"
                message = (f"{short} short {kind} (in shares) alive until {expiry.isoformat()} but only "
                           f"{long_ + cover} covered by {covered_by}")
                if message not in problems:
                    problems.append(message)
    return problems
