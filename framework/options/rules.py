"""The credit-spread rules of :mod:`framework.options.backtest`, applied to an option chain.

The backtest decides on its model market; a paper or live runner decides on a quoted
:class:`~framework.options.chains.OptionChain`. Both must apply the same rules, so they are
written here once more, on a chain, with the backtest's definitions (see
:data:`framework.options.backtest.ASSUMPTIONS`, keys ``expiry_choice``, ``strike_choice``,
``iv_rank``, ``sizing``, ``entries`` and ``exit_trigger_price``):

* :func:`pick_expiry`: the listed expiry with calendar DTE in ``[dte_min, dte_max]`` nearest the
  window's middle, the earlier one on a tie;
* :func:`build_entry`: short strike nearest ``|delta| == short_delta`` (the farther out of the
  money on a tie), long wing nearest ``short -/+ width`` beyond it (the wider on a tie), both
  sides for an iron condor; priced at the natural (sell at the bid, buy at the ask);
* :func:`entry_gate`: IV rank, ``max_open`` and ``entry_every_days``, in the backtest's order;
* :func:`exit_reason`: take profit, then stop, then DTE, with the backtest's inequalities;
* :func:`closing_debit`: the executable price to close (buy shorts at the ask, sell longs at
  the bid); :func:`size_contracts`: the backtest's sizing rule.

Everything is pure (no I/O). Deltas come from the chain's ``delta`` column when it has one
(:meth:`OptionChain.with_greeks`), else from Black-Scholes-Merton at the chain's ``iv`` column,
which for a synthetic chain is the surface vol the backtest uses: the same contracts are chosen
(``tests/framework/options/test_rules.py`` checks it against the backtest's trades).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd

from framework.errors import ConfigError, DataError
from framework.options.backtest import CreditSpreadSpec
from framework.options.bsm import bsm_greeks
from framework.options.chains import OptionChain
from framework.options.ivrank import iv_rank
from framework.options.legs import Leg, OptionPosition, as_date

__all__ = [
    "IV_TENOR_DAYS",
    "atm_iv_30",
    "build_entry",
    "closing_debit",
    "entry_credit",
    "entry_gate",
    "exit_reason",
    "iv_rank_today",
    "max_loss_per_contract",
    "pick_expiry",
    "sessions_since",
    "size_contracts",
    "spread_unit",
    "wing_width",
]

IV_TENOR_DAYS = 30  # the backtest ranks the model's 30-day ATM IV
_SIDES = {"bull_put": ("P",), "bear_call": ("C",), "iron_condor": ("P", "C")}


# -- expiry and strikes -----------------------------------------------------------------------
def pick_expiry(listed_expiries: Iterable[object], today: object,
                spec: CreditSpreadSpec) -> date | None:
    """The expiry to sell: calendar DTE in ``[dte_min, dte_max]``, nearest the middle.

    Parameters
    ----------
    listed_expiries : iterable of date-like
        Expiries the chain lists (any order, duplicates allowed).
    today : date-like
        The decision day (New York date).
    spec : CreditSpreadSpec

    Returns
    -------
    date or None
        The earlier expiry on a tie; None when no listed expiry falls in the window.
    """
    day = as_date(today, "today")
    middle = spec.dte_min + spec.dte_max
    window = sorted({as_date(e, "listed expiry") for e in listed_expiries
                     if spec.dte_min <= (as_date(e, "listed expiry") - day).days <= spec.dte_max})
    if not window:
        return None
    # doubled distances stay integers; min() keeps the first (earliest) on a tie
    return min(window, key=lambda e: abs(2 * (e - day).days - middle))


def _deltas(rows: pd.DataFrame, chain: OptionChain, rate: float | None,
            div: float | None) -> np.ndarray:
    """|delta| per row: the chain's column, else BSM at the chain's ``iv`` (NaN where none)."""
    if "delta" in rows.columns:
        return np.abs(rows["delta"].to_numpy(dtype=np.float64))
    rate = rate if rate is not None else chain.rate if chain.rate is not None else 0.0
    div = div if div is not None else chain.div if chain.div is not None else 0.0
    out = np.full(len(rows), np.nan)
    vol = rows["iv"].to_numpy(dtype=np.float64)
    t = rows["t"].to_numpy(dtype=np.float64)
    usable = np.isfinite(vol) & (vol > 0) & (t > 0)
    if usable.any() and math.isfinite(chain.spot) and chain.spot > 0:
        greeks = bsm_greeks(chain.spot, rows["strike"].to_numpy(dtype=np.float64)[usable],
                            t[usable], rate, div, vol[usable],
                            (rows["right"] == "C").to_numpy()[usable])
        out[usable] = np.abs(greeks.delta)
    return out


def _side(rows: pd.DataFrame, deltas: np.ndarray, right: str,
          spec: CreditSpreadSpec) -> tuple[pd.Series, pd.Series] | None:
    """(short row, long row) of one vertical, or None when the chain offers none."""
    # farther out of the money first, so that argmin's first-on-tie picks it (puts: low strikes
    # first; calls: high strikes first), exactly as the backtest orders its grid
    order = np.argsort(rows["strike"].to_numpy(), kind="stable")
    if right == "C":
        order = order[::-1]
    rows, deltas = rows.iloc[order], deltas[order]
    distance = np.abs(deltas - spec.short_delta)
    if not np.isfinite(distance).any():
        return None
    short = int(np.argmin(np.where(np.isfinite(distance), distance, np.inf)))
    if short == 0:
        return None  # no strike beyond the short one
    strikes = rows["strike"].to_numpy(dtype=np.float64)
    target = strikes[short] + (spec.width if right == "C" else -spec.width)
    ask = rows["ask"].to_numpy(dtype=np.float64)[:short]
    gap = np.where(np.isfinite(ask), np.abs(strikes[:short] - target), np.inf)
    if not np.isfinite(gap).any():
        return None
    wing = int(np.argmin(gap))  # the widest first: a tie goes to the wider wing
    return rows.iloc[short], rows.iloc[wing]


def build_entry(chain: OptionChain, today: object, spec: CreditSpreadSpec,
                rate: float | None = None, div: float | None = None) -> OptionPosition | None:
    """The one-lot credit spread (or iron condor) the rules open on ``chain``, else None.

    Parameters
    ----------
    chain : OptionChain
        Quotes at the decision time; deltas from its ``delta`` column when present, else BSM at
        its ``iv`` column.
    today : date-like
        The decision day (DTE is counted from it).
    spec : CreditSpreadSpec
    rate, div : float, optional
        Continuous rate and dividend yield for the BSM deltas; default the chain's, else 0.

    Returns
    -------
    OptionPosition or None
        Legs of quantity -1 (shorts, premium = bid) and +1 (wings, premium = ask): the natural
        price, as the backtest fills. None when no expiry is in the window, a side has no strike
        beyond its short one, a chosen contract is not quoted, or the credit is not positive or
        not below the wing width.
    """
    expiry = pick_expiry(chain.expiries(), today, spec)
    if expiry is None:
        return None
    frame = chain.frame.assign(t=chain.t_years().to_numpy())
    legs: list[Leg] = []
    for right in _SIDES[spec.kind]:
        rows = frame[(frame["expiry"] == expiry) & (frame["right"] == right)]
        picked = _side(rows, _deltas(rows, chain, rate, div), right, spec) if len(rows) else None
        if picked is None:
            return None
        short, wing = picked
        bid, ask = float(short["bid"]), float(wing["ask"])
        if not (math.isfinite(bid) and math.isfinite(ask)):
            return None
        legs += [Leg(right, float(short["strike"]), expiry, -1, bid),
                 Leg(right, float(wing["strike"]), expiry, 1, ask)]
    position = OptionPosition(chain.underlying, tuple(legs))
    credit = entry_credit(position)
    if credit <= 0 or max_loss_per_contract(position) <= 0:
        return None
    return position


# -- prices of a spread ------------------------------------------------------------------------
def spread_unit(position: OptionPosition) -> int:
    """Contracts per leg of ``position`` divided out: the number of spreads it holds."""
    if not position.legs:
        raise ConfigError("the position has no option legs; a credit spread needs some.")
    return math.gcd(*(abs(leg.quantity) for leg in position.legs))


def entry_credit(position: OptionPosition) -> float:
    """Credit per share of one spread from the legs' premiums (positive = received)."""
    unit = spread_unit(position)
    return float(sum(-leg.quantity / unit * leg.premium for leg in position.legs))


def wing_width(position: OptionPosition) -> float:
    """The widest distance between a short strike and its wing on the same right."""
    widths = []
    for right in ("P", "C"):
        strikes = [leg.strike for leg in position.legs if leg.right == right]
        if len(strikes) >= 2:
            widths.append(max(strikes) - min(strikes))
    if not widths:
        raise ConfigError(f"the position {[leg.describe() for leg in position.legs]} has no "
                          "vertical (two strikes of one right); it is not a credit spread.")
    return float(max(widths))


def max_loss_per_contract(position: OptionPosition, credit: float | None = None) -> float:
    """Dollars one spread can lose: ``(widest wing width - credit) x multiplier``.

    ``credit`` (per share) defaults to :func:`entry_credit` from the legs' premiums; pass the
    filled credit once known.
    """
    credit = entry_credit(position) if credit is None else float(credit)
    return (wing_width(position) - credit) * position.legs[0].multiplier


def closing_debit(position: OptionPosition, chain: OptionChain) -> float:
    """Executable debit per share of one spread to close it now (buy shorts at the ask, sell
    longs at the bid), as the backtest's exit rules compare it with the credit.

    Raises
    ------
    DataError
        A leg's contract is not in the chain, or the side it must trade on is not quoted.
    """
    unit = spread_unit(position)
    frame = chain.frame
    debit = 0.0
    for leg in position.legs:
        hit = frame[(frame["expiry"] == leg.expiry) & (frame["right"] == leg.right)
                    & np.isclose(frame["strike"].to_numpy(dtype=np.float64), leg.strike,
                                 rtol=0.0, atol=1e-6)]
        side = "ask" if leg.quantity < 0 else "bid"
        price = float(hit[side].iloc[0]) if len(hit) else math.nan
        if not math.isfinite(price):
            raise DataError(
                f"the {chain.underlying} chain at {chain.snapshot} has no {side} for "
                f"{leg.right} {leg.strike:g} {leg.expiry}; the spread cannot be priced to close "
                "(the exit check waits for the next quote).")
        debit -= leg.quantity / unit * price  # shorts add the ask, longs subtract the bid
    return float(debit)


# -- decisions --------------------------------------------------------------------------------
def exit_reason(credit: float, closing_debit: float, dte: int,
                spec: CreditSpreadSpec) -> str | None:
    """Why a spread opened for ``credit`` closes now, or None to hold it.

    Exactly the backtest's rules, in its order: ``"take_profit"`` when debit <= (1 -
    take_profit) x credit; ``"stop"`` when debit - credit >= stop_multiple x credit; ``"dte"``
    when calendar DTE <= exit_dte. Prices per share of one spread.
    """
    if spec.take_profit is not None and closing_debit <= (1.0 - spec.take_profit) * credit:
        return "take_profit"
    if spec.stop_multiple is not None and closing_debit - credit >= spec.stop_multiple * credit:
        return "stop"
    if dte <= spec.exit_dte:
        return "dte"
    return None


def entry_gate(iv_rank: float | None, open_count: int, sessions_since_entry: int | None,
               spec: CreditSpreadSpec) -> tuple[bool, str]:
    """Whether a new position may be opened today, and why not.

    Parameters
    ----------
    iv_rank : float or None
        Today's IV rank in [0, 1]; None or NaN while undefined (passes only with the gate off,
        ``iv_rank_min == 0``).
    open_count : int
        Positions open now (pending openings included).
    sessions_since_entry : int or None
        Sessions since the last entry (1 = the session after it); None before any entry.
    spec : CreditSpreadSpec

    Returns
    -------
    (bool, str)
        ``(True, "ok")``, or False with the first failing rule in the backtest's order.
    """
    rank = math.nan if iv_rank is None else float(iv_rank)
    if not (spec.iv_rank_min == 0.0 or rank >= spec.iv_rank_min):
        shown = "undefined" if math.isnan(rank) else f"{rank:.3f}"
        return False, f"iv_rank {shown} below iv_rank_min {spec.iv_rank_min:g}"
    if open_count >= spec.max_open:
        return False, f"{open_count} positions open (max_open {spec.max_open})"
    if sessions_since_entry is not None and sessions_since_entry < spec.entry_every_days:
        return False, (f"{sessions_since_entry} sessions since the last entry (entry_every_days "
                       f"{spec.entry_every_days})")
    return True, "ok"


def size_contracts(spec: CreditSpreadSpec, equity: float, per_contract: float,
                   open_max_loss: float = 0.0) -> int:
    """The backtest's sizing: ``floor(risk_per_trade x equity / max loss per contract)``.

    When that is 0, one contract if its max loss is within twice the budget; then cut so the
    max loss of all open positions and the new one stays within equity.
    """
    if not (math.isfinite(per_contract) and per_contract > 0):
        raise ConfigError(f"max loss per contract {per_contract!r} must be a positive number of "
                          "dollars; build_entry never returns such a spread.")
    budget = spec.risk_per_trade * equity
    contracts = math.floor(budget / per_contract)
    if contracts == 0 and per_contract <= 2.0 * budget:
        contracts = 1
    room = equity - open_max_loss
    return max(0, min(contracts, math.floor(room / per_contract)))


# -- IV rank and the session count ----------------------------------------------------------
def atm_iv_30(chain: OptionChain, today: object, rate: float | None = None,
              div: float | None = None) -> float:
    """ATM implied vol of the expiry nearest 30 calendar days (the IV the rank is taken of).

    Uses the chain's ``iv`` column (Alpaca's implied vol; the surface vol on a synthetic chain).

    Raises
    ------
    DataError
        No expiry with usable vols around the forward.
    """
    day = as_date(today, "today")
    expiry = min(chain.expiries(), key=lambda e: (abs((e - day).days - IV_TENOR_DAYS), e))
    return chain.atm_iv(expiry, rate=rate, div=div, vol_source="source")


def iv_rank_today(history: pd.Series, today: object, iv: float, window: int) -> float:
    """IV rank of ``iv`` on ``today`` over ``history`` (dated, decimals) with it appended.

    A value already dated ``today`` is replaced; later dates are ignored (no look-ahead).
    NaN during the warm-up or over a flat window, as :func:`framework.options.ivrank.iv_rank`.
    """
    stamp = pd.Timestamp(as_date(today, "today"))
    index = pd.DatetimeIndex(history.index)
    if index.tz is not None:
        index = index.tz_convert("America/New_York").tz_localize(None)
    past = pd.Series(history.to_numpy(dtype=np.float64), index=index.normalize()).sort_index()
    past = past[past.index < stamp]
    values = np.append(past.to_numpy(dtype=np.float64), float(iv))
    return float(np.asarray(iv_rank(values, window))[-1])


def sessions_since(last_entry: object | None, today: object, sessions: pd.DatetimeIndex) -> int | None:
    """Sessions from ``last_entry`` to ``today`` (``today`` counted, ``last_entry`` not); None
    without a previous entry. ``sessions`` are the exchange's session dates (naive)."""
    if last_entry is None:
        return None
    start = pd.Timestamp(as_date(last_entry, "last entry"))
    end = pd.Timestamp(as_date(today, "today"))
    return int(sessions.searchsorted(end, side="right") - sessions.searchsorted(start, side="right"))
