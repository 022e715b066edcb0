"""Payoff and risk analytics of multi-leg option positions.

Everything here is in dollars for the whole position (premium per share x quantity x multiplier)
and measures P&L against the entry: the premiums of the legs and the price paid for any shares.

Conventions
-----------
* Time to expiry is ACT/365 in calendar days between a valuation date ``as_of`` and the leg's
  expiry date: ``t = (expiry - as_of).days / 365`` (a leg on its expiry date is worth intrinsic).
* The *horizon* of the expiry analytics is the position's front (earliest) expiry. When every leg
  expires then, the P&L is piecewise linear in the underlying price and :func:`payoff_stats`
  is exact: the extremes are at the strikes (or unbounded, reported as ``inf``) and the
  breakevens are the roots of the linear pieces. When later legs remain (calendars, diagonals)
  they are valued by Black-Scholes-Merton at the given vol/rate/div; extremes and breakevens are
  then found on a fine price grid (breakevens refined by Brent's method), ``exact=False``.
* Whether a side is unbounded is structural: far above every strike the P&L moves by
  :attr:`OptionPosition.upside_slope` dollars per 1.00 (net long calls and shares); below the
  lowest strike the price is floored at 0, so the downside is always bounded.

Probability of profit (POP)
---------------------------
* :func:`pop_lognormal`: risk-neutral lognormal terminal price, ``ln S_T ~ N(ln S + (r - q -
  vol^2/2) T, vol^2 T)``, integrated exactly over the price intervals where the horizon P&L is
  positive.
* :func:`pop_implied`: the chain's implied distribution (Breeden-Litzenberger, see
  :func:`implied_distribution_from_calls`): the risk-neutral density is ``e^{rT} d2C/dK2``.
  Cleaning, in order:

  1. one call price per strike from the out-of-the-money side only: call mids at or above the
     forward, put mids turned into calls by put-call parity below it (deep in-the-money quotes
     are wide and stale); only two-sided quotes (bid > 0, ask >= bid); a strike without its
     out-of-the-money quote is dropped;
  2. the forward in that parity is implied by the quotes (median of ``K + (C - P) / e^{-rT}``
     over the 10 strikes nearest the spot quoted on both sides; ``S e^{(r-q)T}`` only when none
     is), so the two halves of the curve join without a step (American puts and a dividend
     estimate otherwise leave tens of cents, which the second difference turns into a spike);
  3. the curve is replaced by its lower convex hull (the largest convex function under the
     quotes; a call price must be convex in the strike), which drops quotes sitting above the
     chord of their neighbours instead of letting their noise make +/- probability pairs;
  4. the second difference on the (uneven) hull grid gives a butterfly price per strike; times
     ``e^{rT}`` it is that strike's probability mass; masses are clipped at 0 and normalised to
     sum to 1 (mass beyond the quoted strikes is lost and redistributed by the normalisation;
     :attr:`ImpliedDistribution.captured` says how much there was before).

  Each mass is spread evenly over its strike's half-way bin, so the CDF is piecewise linear.

Buying power (:func:`buying_power`)
-----------------------------------
Only defined-risk positions (:attr:`OptionPosition.is_defined_risk`) get a figure; others raise
:class:`ConfigError`, since their requirement depends on the broker's margin formula.

* Options only: the largest loss at the front expiry with any later legs valued at intrinsic
  (what an American option is worth at least). For verticals, condors and butterflies that is
  the exact max loss (width x multiplier - credit, or the debit); for calendars the debit; for
  diagonals the debit plus the strike difference when the long leg's strike is the worse one.
* With long shares (covered call, protective put, collar): a cash account pays the shares in
  full, so the requirement is ``shares x price - net option premium`` (credit received lowers it,
  debit paid raises it), or the max loss if that is larger (extra spreads alongside the stock).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.stats import norm

from framework.errors import ConfigError, DataError
from framework.options.bsm import bsm_greeks, bsm_price
from framework.options.legs import Leg, OptionPosition, as_date, uncovered_shorts

if TYPE_CHECKING:
    from framework.options.chains import OptionChain

DAYS_PER_YEAR = 365.0
_GRID_POINTS = 4001  # numeric (multi-expiry) analysis: 0..upper in this many steps, plus strikes


# ---------------------------------------------------------------------------------------------
# valuation


def years_between(as_of: date, expiry: date) -> float:
    """ACT/365 year fraction from ``as_of`` to ``expiry`` (calendar days / 365)."""
    return (expiry - as_of).days / DAYS_PER_YEAR


def _leg_vols(position: OptionPosition, vol: float | Sequence[float] | None) -> np.ndarray:
    """One vol per leg from a scalar or a per-leg sequence; validated (finite, > 0)."""
    n = len(position.legs)
    if vol is None:
        raise ConfigError(
            "a vol is needed to value legs before their expiry; pass vol= (annualised decimal, "
            "e.g. 0.2) or one vol per leg."
        )
    vols = np.atleast_1d(np.asarray(vol, dtype=float))
    if vols.size == 1:
        vols = np.full(n, float(vols[0]))
    if vols.shape != (n,):
        raise ConfigError(
            f"got {vols.size} vols for {n} legs; give one vol for all legs or one per leg."
        )
    bad = [float(v) for v in vols if not (math.isfinite(v) and v > 0)]
    if bad:
        raise ConfigError(f"vol {bad[0]!r} is invalid; vols are annualised decimals > 0 (0.2 = 20%).")
    return vols


def _check_as_of(position: OptionPosition, as_of: date) -> date:
    as_of = as_date(as_of, "valuation date")
    front = position.front_expiry
    if as_of > front:
        raise ConfigError(
            f"valuation date {as_of.isoformat()} is after the front expiry {front.isoformat()}; "
            "after it the position depends on where the underlying settled. Value it on or "
            "before the front expiry."
        )
    return as_of


def _prices(prices: object) -> np.ndarray:
    grid = np.asarray(prices, dtype=float)
    if grid.size and (not np.all(np.isfinite(grid)) or np.any(grid < 0)):
        raise ConfigError("underlying prices must be finite and >= 0.")
    return grid


def _intrinsic(call: bool, strike: float, prices: np.ndarray) -> np.ndarray:
    return np.maximum(prices - strike, 0.0) if call else np.maximum(strike - prices, 0.0)


def _entry_cost(position: OptionPosition) -> float:
    """Dollars paid to open (negative = received): debit of the options plus the shares."""
    return -position.net_premium + position.stock_cost


def _bsm_value(grid: np.ndarray, leg: Leg, t: float, vol: float, rate: float,
               div: float) -> np.ndarray:
    """BSM value of one leg over a price grid; at a price of 0 (outside BSM's domain) the call is
    worthless and the put worth its discounted strike."""
    zero = grid <= 0
    safe = np.where(zero, 1.0, grid)
    price = np.asarray(bsm_price(safe, leg.strike, t, rate, div, vol, leg.is_call), dtype=float)
    at_zero = 0.0 if leg.is_call else leg.strike * math.exp(-rate * t)
    return np.where(zero, at_zero, price)


def pnl_at(
    position: OptionPosition,
    prices: object,
    as_of: date,
    vol: float | Sequence[float] | None = None,
    rate: float = 0.0,
    div: float = 0.0,
) -> np.ndarray:
    """Mark-to-model P&L on ``as_of`` for each underlying price.

    Parameters
    ----------
    position : OptionPosition
    prices : array_like
        Underlying prices (>= 0).
    as_of : datetime.date
        Valuation date, on or before the front expiry.
    vol : float or sequence of float, optional
        BSM vol for every leg, or one per leg; needed for legs not yet expiring on ``as_of``.
    rate, div : float
        Continuous risk-free rate and dividend yield (decimals).

    Returns
    -------
    ndarray
        Dollars, same shape as ``prices``.
    """
    grid = _prices(prices)
    as_of = _check_as_of(position, as_of)
    alive = [years_between(as_of, leg.expiry) > 0 for leg in position.legs]
    vols = _leg_vols(position, vol) if any(alive) else np.zeros(len(position.legs))
    value = position.stock_shares * grid
    for leg, leg_vol, is_alive in zip(position.legs, vols, alive, strict=True):
        if is_alive:
            price = _bsm_value(grid, leg, years_between(as_of, leg.expiry), leg_vol, rate, div)
        else:
            price = _intrinsic(leg.is_call, leg.strike, grid)
        value = value + leg.quantity * leg.multiplier * price.reshape(grid.shape)
    return np.asarray(value - _entry_cost(position), dtype=float)


def expiry_pnl(position: OptionPosition, prices: object) -> np.ndarray:
    """P&L at expiry of a single-expiry position (piecewise linear in the price).

    Raises
    ------
    ConfigError
        When the legs expire on different dates: use :func:`horizon_pnl` with a vol.
    """
    if len(position.expiries) > 1:
        raise ConfigError(
            f"the legs expire on {len(position.expiries)} dates "
            f"({', '.join(e.isoformat() for e in position.expiries)}); the payoff at the front "
            "expiry needs a vol for the later legs: use horizon_pnl(position, prices, vol=...)."
        )
    grid = _prices(prices)
    value = position.stock_shares * grid
    for leg in position.legs:
        value = value + leg.quantity * leg.multiplier * _intrinsic(leg.is_call, leg.strike, grid)
    return np.asarray(value - _entry_cost(position), dtype=float)


def horizon_pnl(
    position: OptionPosition,
    prices: object,
    vol: float | Sequence[float] | None = None,
    rate: float = 0.0,
    div: float = 0.0,
) -> np.ndarray:
    """P&L at the front expiry; later legs valued by BSM (``vol`` needed only for them)."""
    if len(position.expiries) == 1:
        return expiry_pnl(position, prices)
    return pnl_at(position, prices, position.front_expiry, vol, rate, div)


def pnl_surface(
    position: OptionPosition,
    prices: object,
    dates: Sequence[date],
    vol: float | Sequence[float] | None = None,
    rate: float = 0.0,
    div: float = 0.0,
) -> pd.DataFrame:
    """P&L over time and price: rows are valuation dates, columns underlying prices.

    Each row is :func:`pnl_at` for that date (dates after the front expiry are refused).
    """
    grid = np.atleast_1d(_prices(prices))
    rows = {as_date(d, "valuation date"): pnl_at(position, grid, d, vol, rate, div) for d in dates}
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=grid)
    frame.index.name = "as_of"
    frame.columns.name = "price"
    return frame


# ---------------------------------------------------------------------------------------------
# max profit / max loss / breakevens


@dataclass(frozen=True)
class PayoffStats:
    """Extremes and breakevens of the P&L at the front expiry.

    Attributes
    ----------
    max_profit : float
        Largest P&L in dollars (``inf`` when unbounded).
    max_loss : float
        Largest loss as a positive number of dollars (``inf`` when unbounded; negative only if
        every outcome is a profit).
    breakevens : tuple of float
        Prices where the P&L crosses zero, ascending. Where it is zero over a whole interval both
        ends are listed.
    horizon : datetime.date
        The front expiry the figures refer to.
    exact : bool
        True for single-expiry positions (closed form), False when found on a grid.
    """

    max_profit: float
    max_loss: float
    breakevens: tuple[float, ...]
    horizon: date
    exact: bool


def _linear_stats(position: OptionPosition) -> tuple[float, float, list[float]]:
    """Exact extremes and roots of a piecewise-linear expiry P&L (kinks at the strikes)."""
    nodes = np.array([0.0, *position.strikes])
    values = expiry_pnl(position, nodes)
    slope = position.upside_slope
    scale = max(1.0, float(np.max(np.abs(values))))
    tol = 1e-9 * scale
    values = np.where(np.abs(values) <= tol, 0.0, values)  # float noise at a kink is a real zero
    hi = math.inf if slope > 0 else float(values.max())
    lo = -math.inf if slope < 0 else float(values.min())
    roots: list[float] = []
    for j in range(len(nodes)):
        if values[j] == 0.0 and nodes[j] > 0:
            roots.append(float(nodes[j]))
        if j + 1 < len(nodes) and values[j] * values[j + 1] < 0:
            a, b, fa, fb = nodes[j], nodes[j + 1], values[j], values[j + 1]
            roots.append(float(a - fa * (b - a) / (fb - fa)))
    if values[-1] != 0.0 and slope != 0 and -values[-1] / slope > 0:
        roots.append(float(nodes[-1] - values[-1] / slope))
    return hi, lo, roots


def _default_upper(position: OptionPosition) -> float:
    strikes = position.strikes or (position.stock_price,)
    return 3.0 * max(strikes)


def _numeric_stats(position, vol, rate, div, upper) -> tuple[float, float, list[float]]:
    """Grid extremes and Brent-refined roots of the front-expiry P&L (later legs by BSM)."""
    grid = np.union1d(np.linspace(0.0, upper, _GRID_POINTS), np.array(position.strikes))
    values = horizon_pnl(position, grid, vol, rate, div)
    slope = position.upside_slope
    hi = math.inf if slope > 0 else float(values.max())
    lo = -math.inf if slope < 0 else float(values.min())

    def f(x: float) -> float:
        return float(horizon_pnl(position, np.array([x]), vol, rate, div)[0])

    roots: list[float] = [float(x) for x, v in zip(grid, values, strict=True) if v == 0.0 and x > 0]
    for j in np.nonzero(values[:-1] * values[1:] < 0)[0]:
        roots.append(float(brentq(f, grid[j], grid[j + 1], xtol=1e-10)))
    return hi, lo, roots


def payoff_stats(
    position: OptionPosition,
    vol: float | Sequence[float] | None = None,
    rate: float = 0.0,
    div: float = 0.0,
    upper: float | None = None,
) -> PayoffStats:
    """Max profit, max loss and breakevens of the P&L at the front expiry.

    Parameters
    ----------
    position : OptionPosition
    vol, rate, div : float
        Used only when legs outlive the front expiry (calendars, diagonals).
    upper : float, optional
        Highest price searched for multi-expiry positions (default 3x the highest strike).

    Returns
    -------
    PayoffStats
    """
    if not position.legs:
        raise ConfigError("a stock-only position has no option payoff to analyse; add a leg.")
    if len(position.expiries) == 1:
        hi, lo, roots = _linear_stats(position)
        exact = True
    else:
        top = _default_upper(position) if upper is None else float(upper)
        if not (math.isfinite(top) and top > max(position.strikes)):
            raise ConfigError(f"upper {upper!r} must exceed the highest strike {max(position.strikes):g}.")
        hi, lo, roots = _numeric_stats(position, vol, rate, div, top)
        exact = False
    deduped: list[float] = []
    for root in sorted(roots):
        if not deduped or root - deduped[-1] > 1e-9 * max(1.0, root):
            deduped.append(root)
    return PayoffStats(
        max_profit=hi, max_loss=-lo, breakevens=tuple(deduped), horizon=position.front_expiry,
        exact=exact,
    )


# ---------------------------------------------------------------------------------------------
# probability of profit


def _profit_intervals(position, breakevens, vol, rate, div) -> list[tuple[float, float]]:
    """Price intervals ``[a, b)`` where the horizon P&L is > 0 (sign tested inside each)."""
    edges = [0.0, *breakevens, math.inf]
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        probe = 0.5 * (a + b) if math.isfinite(b) else (2.0 * a + 1.0 if a > 0 else 1.0)
        if b - a <= 0:
            continue
        if float(horizon_pnl(position, np.array([probe]), vol, rate, div)[0]) > 0:
            out.append((a, b))
    return out


def lognormal_cdf(x: object, spot: float, vol: float, t: float, rate: float = 0.0,
                  div: float = 0.0) -> np.ndarray:
    """Risk-neutral lognormal ``P(S_T <= x)`` (0 at x = 0, 1 at x = inf)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        z = (np.log(x / spot) - (rate - div - 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    return norm.cdf(z)


def pop_lognormal(
    position: OptionPosition,
    spot: float,
    vol: float,
    as_of: date,
    rate: float = 0.0,
    div: float = 0.0,
    leg_vols: float | Sequence[float] | None = None,
) -> float:
    """Probability that the P&L at the front expiry is positive, lognormal terminal price.

    Parameters
    ----------
    position : OptionPosition
    spot : float
        Underlying price on ``as_of``.
    vol : float
        Annualised vol of the terminal distribution.
    as_of : datetime.date
        Today; must be before the front expiry.
    rate, div : float
        Risk-neutral drift ``rate - div``.
    leg_vols : float or sequence, optional
        Vols valuing legs that outlive the front expiry (default ``vol``).
    """
    spot = float(spot)
    if not (math.isfinite(spot) and spot > 0):
        raise ConfigError(f"spot {spot!r} must be a positive price.")
    if not (math.isfinite(vol) and vol > 0):
        raise ConfigError(f"vol {vol!r} must be an annualised decimal > 0 (0.2 = 20%).")
    as_of = _check_as_of(position, as_of)
    t = years_between(as_of, position.front_expiry)
    if t <= 0:
        raise ConfigError(
            f"as_of {as_of.isoformat()} is the front expiry: nothing is left to chance; value "
            "the position with expiry_pnl instead."
        )
    pricing_vol = vol if leg_vols is None else leg_vols
    stats = payoff_stats(position, pricing_vol, rate, div)
    total = 0.0
    for a, b in _profit_intervals(position, stats.breakevens, pricing_vol, rate, div):
        total += float(lognormal_cdf(b, spot, vol, t, rate, div) - lognormal_cdf(a, spot, vol, t, rate, div))
    return float(min(max(total, 0.0), 1.0))


@dataclass(frozen=True)
class ImpliedDistribution:
    """Risk-neutral distribution of the price at one expiry, implied by option prices.

    Attributes
    ----------
    strikes : ndarray
        Strikes carrying probability mass (the interior of the cleaned call curve).
    mass : ndarray
        Probability at each strike (>= 0, sums to 1).
    edges : ndarray
        Bin edges (len = len(strikes) + 1): each mass is spread evenly over its bin.
    captured : float
        Sum of the masses before clipping and normalisation: near 1 when the quoted strikes
        cover the distribution; much lower means the normalisation is doing the work.
    t : float
        Years to the expiry.
    """

    strikes: np.ndarray
    mass: np.ndarray
    edges: np.ndarray
    captured: float
    t: float

    def cdf(self, x: object) -> np.ndarray:
        """``P(S_T <= x)``: piecewise linear across the bins, 0 below and 1 above them."""
        cum = np.concatenate([[0.0], np.cumsum(self.mass)])
        return np.interp(np.asarray(x, dtype=float), self.edges, cum, left=0.0, right=1.0)

    def mean(self) -> float:
        """Mean terminal price (bin centres weighted by mass)."""
        return float(np.sum(self.mass * 0.5 * (self.edges[:-1] + self.edges[1:])))


def _convex_decreasing(strikes: np.ndarray, calls: np.ndarray) -> np.ndarray:
    """Mask of the lower convex hull's vertices up to its lowest price (strikes ascending).

    The hull is the largest convex function under the points; cutting it at its minimum keeps
    the decreasing part, since a call price can only fall as the strike rises.
    """
    hull: list[int] = []
    for i in range(len(strikes)):
        while len(hull) >= 2:
            o, a = hull[-2], hull[-1]
            cross = ((strikes[a] - strikes[o]) * (calls[i] - calls[o])
                     - (calls[a] - calls[o]) * (strikes[i] - strikes[o]))
            if cross > 0:  # a strict left turn keeps a convex corner at ``a``
                break
            hull.pop()
        hull.append(i)
    lowest = int(np.argmin(calls[hull]))
    keep = np.zeros(len(strikes), dtype=bool)
    keep[hull[: lowest + 1]] = True
    return keep


def implied_distribution_from_calls(strikes: object, calls: object, t: float,
                                    rate: float = 0.0) -> ImpliedDistribution:
    """Breeden-Litzenberger masses from call prices on a strike grid (may be uneven).

    Parameters
    ----------
    strikes : array_like
        Strikes (any order; duplicates not allowed).
    calls : array_like
        Call prices (per share) at those strikes, same length; NaN entries are dropped.
    t : float
        Years to expiry (> 0).
    rate : float
        Continuous rate; the masses are ``e^{rT}`` times the butterfly prices.

    Returns
    -------
    ImpliedDistribution

    Notes
    -----
    The prices are first reduced to the vertices of their lower convex hull (up to the lowest
    price), so every mass is >= 0 before the normalisation; see the module docstring.
    """
    k = np.asarray(strikes, dtype=float)
    c = np.asarray(calls, dtype=float)
    if k.shape != c.shape or k.ndim != 1:
        raise DataError(f"strikes and call prices must be 1-D and the same length; got {k.shape} and {c.shape}.")
    if not (math.isfinite(t) and t > 0):
        raise DataError(f"t {t!r} must be > 0 years to build an implied distribution.")
    ok = np.isfinite(k) & np.isfinite(c) & (c >= 0)
    order = np.argsort(k[ok])
    k, c = k[ok][order], c[ok][order]
    if np.any(np.diff(k) <= 0):
        raise DataError("strikes repeat; give one call price per strike.")
    keep = _convex_decreasing(k, c)
    k, c = k[keep], c[keep]
    if len(k) < 4:
        raise DataError(
            f"only {len(k)} usable strikes after cleaning; an implied distribution needs at least "
            "4 strikes with two-sided quotes."
        )
    slopes = np.diff(c) / np.diff(k)
    raw = math.exp(rate * t) * np.diff(slopes)  # butterfly price per interior strike, forward-valued
    captured = float(raw.sum())
    mass = np.clip(raw, 0.0, None)
    if mass.sum() <= 0:
        raise DataError("the call prices imply no positive probability anywhere (not convex).")
    mass = mass / mass.sum()
    interior = k[1:-1]
    edges = np.concatenate([[k[0]], 0.5 * (k[1:-2] + k[2:-1]), [k[-1]]])
    return ImpliedDistribution(strikes=interior, mass=mass, edges=edges, captured=captured, t=float(t))


def _side_mids(rows: pd.DataFrame, right: str) -> pd.Series:
    """Mid quotes of one right indexed by strike; only two-sided quotes (bid > 0, ask >= bid)."""
    side = rows[(rows["right"] == right) & (rows["bid"] > 0) & (rows["ask"] >= rows["bid"])]
    mids = pd.Series(0.5 * (side["bid"] + side["ask"]).to_numpy(), index=side["strike"].to_numpy())
    return mids[~mids.index.duplicated()]


def _parity_forward(calls: pd.Series, puts: pd.Series, spot: float, discount: float,
                    fallback: float, n_nearest: int = 10) -> float:
    """Forward implied by put-call parity ``C - P = D (F - K)``: median over the strikes nearest
    the spot quoted on both sides; ``fallback`` when no strike has both."""
    both = calls.index.intersection(puts.index)
    if both.empty:
        return fallback
    nearest = both[np.argsort(np.abs(both.to_numpy() - spot))[:n_nearest]]
    implied = nearest.to_numpy() + (calls[nearest].to_numpy() - puts[nearest].to_numpy()) / discount
    return float(np.median(implied))


def implied_distribution(chain: OptionChain, expiry: date, rate: float = 0.0,
                         div: float = 0.0) -> ImpliedDistribution:
    """Implied distribution of one expiry of a chain (see the module docstring for cleaning).

    Parameters
    ----------
    chain : framework.options.chains.OptionChain
    expiry : datetime.date
        An expiry listed in the chain.
    rate, div : float
        Used for the forward and for put-call parity.
    """
    expiry = as_date(expiry, "expiry")
    frame = chain.frame
    in_expiry = (frame["expiry"] == expiry).to_numpy()
    if not in_expiry.any():
        listed = ", ".join(e.isoformat() for e in chain.expiries()[:12])
        raise DataError(f"expiry {expiry.isoformat()} is not in the chain; listed expiries: {listed}.")
    spot = float(chain.spot)
    if not (math.isfinite(spot) and spot > 0):
        raise DataError(f"the {chain.underlying} chain has no underlying_price; the implied "
                        "distribution needs the spot for put-call parity.")
    t = float(chain.t_years()[in_expiry].iloc[0])
    rows = frame[in_expiry]
    calls, puts = _side_mids(rows, "C"), _side_mids(rows, "P")
    discount = math.exp(-rate * t)
    forward = _parity_forward(calls, puts, spot, discount, spot * math.exp((rate - div) * t))
    from_puts = puts + discount * (forward - puts.index.to_numpy())
    strikes = np.union1d(calls.index.to_numpy(), puts.index.to_numpy())
    curve = []
    for strike in strikes:
        otm = calls if strike >= forward else from_puts
        curve.append(otm.get(strike, np.nan))
    return implied_distribution_from_calls(strikes, np.array(curve, dtype=float), t, rate)


def pop_implied(
    position: OptionPosition,
    chain: OptionChain,
    rate: float = 0.0,
    div: float = 0.0,
    leg_vols: float | Sequence[float] | None = None,
) -> float:
    """Probability of profit at the front expiry under the chain's implied distribution.

    ``leg_vols`` values legs that outlive the front expiry (calendars, diagonals).
    """
    dist = implied_distribution(chain, position.front_expiry, rate, div)
    stats = payoff_stats(position, leg_vols, rate, div)
    total = 0.0
    for a, b in _profit_intervals(position, stats.breakevens, leg_vols, rate, div):
        total += float(dist.cdf(b) - dist.cdf(a))
    return float(min(max(total, 0.0), 1.0))


# ---------------------------------------------------------------------------------------------
# greeks, implied leg vols, buying power


@dataclass(frozen=True)
class PositionGreeks:
    """Greeks of the whole position: sum of leg greeks x quantity x multiplier (+ shares' delta).

    Units follow :mod:`framework.options.bsm`: delta and gamma per 1.00 of the underlying (delta
    in share equivalents), theta dollars per calendar day, vega dollars per vol point, rho
    dollars per rate point.
    """

    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


def position_greeks(
    position: OptionPosition,
    spot: float,
    as_of: date,
    vol: float | Sequence[float],
    rate: float = 0.0,
    div: float = 0.0,
) -> PositionGreeks:
    """Aggregate BSM greeks on ``as_of`` at price ``spot`` (vol scalar or one per leg)."""
    as_of = _check_as_of(position, as_of)
    vols = _leg_vols(position, vol) if position.legs else np.zeros(0)
    totals = dict.fromkeys(("delta", "gamma", "theta", "vega", "rho"), 0.0)
    for leg, leg_vol in zip(position.legs, vols, strict=True):
        g = bsm_greeks(float(spot), leg.strike, years_between(as_of, leg.expiry), rate, div,
                       leg_vol, leg.is_call)
        for name in totals:
            totals[name] += float(np.asarray(getattr(g, name))) * leg.quantity * leg.multiplier
    totals["delta"] += position.stock_shares
    return PositionGreeks(**totals)


def leg_vols_from_premiums(position: OptionPosition, spot: float, as_of: date,
                           rate: float = 0.0, div: float = 0.0) -> tuple[float, ...]:
    """Implied vol of each leg's premium (European BSM) on ``as_of``.

    Raises
    ------
    DataError
        When a premium has no implied vol (below intrinsic, zero, ...), naming the leg.
    """
    from framework.options.iv import implied_vol

    as_of = _check_as_of(position, as_of)
    out = []
    for leg in position.legs:
        res = implied_vol(leg.premium, float(spot), leg.strike, years_between(as_of, leg.expiry),
                          rate, div, leg.is_call)
        value = float(np.asarray(res.vol).reshape(-1)[0])
        if not math.isfinite(value):
            reason = str(np.asarray(res.reason).reshape(-1)[0])
            raise DataError(
                f"leg {leg.describe()} has no implied vol at spot {spot:g} ({reason}); give the "
                "vol explicitly."
            )
        out.append(value)
    return tuple(out)


@dataclass(frozen=True)
class BuyingPower:
    """Capital a defined-risk position ties up, in dollars, and the rule that gave it."""

    amount: float
    rule: str


def buying_power(position: OptionPosition) -> BuyingPower:
    """Buying-power requirement of a defined-risk position (rules in the module docstring).

    Raises
    ------
    ConfigError
        For undefined-risk positions (naked short calls or puts, short stock), naming what is
        uncovered.
    """
    problems = uncovered_shorts(position)
    if problems:
        raise ConfigError(
            "buying power is only computed for defined-risk positions; this one has "
            + "; ".join(problems)
            + ". Its requirement depends on the broker's margin formula: buy options to cover "
            "the shorts (e.g. turn a naked put into a put spread) or ask the broker."
        )
    floor_loss = _intrinsic_floor_loss(position) if position.legs else 0.0
    if position.stock_shares > 0:
        cash = position.stock_cost - position.net_premium
        amount = max(cash, floor_loss)
        rule = ("shares paid in full minus net option credit (cash account)" if amount == cash
                else "max loss (exceeds the cost of the shares)")
        return BuyingPower(amount=float(amount), rule=rule)
    if len(position.expiries) > 1:
        rule = "max loss at the front expiry with later legs at intrinsic value"
    else:
        rule = "max loss at expiry"
    return BuyingPower(amount=float(max(floor_loss, 0.0)), rule=rule)


def _intrinsic_floor_loss(position: OptionPosition) -> float:
    """Max loss at the front expiry when every leg is valued at intrinsic (exact, piecewise linear)."""
    flat = OptionPosition(
        position.underlying,
        tuple(Leg(leg.right, leg.strike, position.front_expiry, leg.quantity, leg.premium,
                  leg.multiplier) for leg in position.legs),
        position.stock_shares, position.stock_price,
    )
    return _linear_stats(flat)[1] * -1.0


# ---------------------------------------------------------------------------------------------
# plot


def price_grid(position: OptionPosition, spot: float, vol: float | None = None, t: float | None = None,
               n: int = 401) -> np.ndarray:
    """Prices to plot: spot and strikes with room around them (3 sd when vol and t are given)."""
    anchors = [float(spot), *position.strikes]
    lo, hi = min(anchors), max(anchors)
    if vol is not None and t is not None and t > 0:
        spread = math.exp(3.0 * vol * math.sqrt(t))
        lo, hi = min(lo, spot / spread), max(hi, spot * spread)
    pad = 0.1 * (hi - lo) + 0.02 * spot
    grid = np.linspace(max(lo - pad, 0.0), hi + pad, n)
    return np.union1d(grid, np.array(position.strikes))


def plot_payoff(
    position: OptionPosition,
    path: str | Path,
    spot: float,
    as_of: date,
    vol: float | Sequence[float],
    rate: float = 0.0,
    div: float = 0.0,
    title: str | None = None,
) -> Path:
    """Write a PNG of the P&L at the front expiry and today's P&L, breakevens marked.

    Uses matplotlib's Agg canvas directly (no pyplot), so it never needs a display and never
    changes the global backend.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    as_of = _check_as_of(position, as_of)
    vols = _leg_vols(position, vol)
    t_front = years_between(as_of, position.front_expiry)
    grid = price_grid(position, spot, float(np.mean(vols)), t_front)
    at_horizon = horizon_pnl(position, grid, vols, rate, div)
    today = pnl_at(position, grid, as_of, vols, rate, div)
    stats = payoff_stats(position, vols, rate, div)

    fig = Figure(figsize=(9, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.fill_between(grid, at_horizon, 0, where=at_horizon >= 0, color="tab:green", alpha=0.15,
                    interpolate=True)
    ax.fill_between(grid, at_horizon, 0, where=at_horizon < 0, color="tab:red", alpha=0.15,
                    interpolate=True)
    ax.plot(grid, at_horizon, color="tab:blue", linewidth=2,
            label=f"at expiry {position.front_expiry.isoformat()}")
    ax.plot(grid, today, color="tab:orange", linestyle="--", label=f"today {as_of.isoformat()}")
    ax.axvline(spot, color="gray", linestyle=":", label=f"spot {spot:g}")
    for be in stats.breakevens:
        if grid[0] <= be <= grid[-1]:
            ax.axvline(be, color="tab:purple", linewidth=0.9)
            ax.annotate(f"BE {be:.2f}", (be, 0), textcoords="offset points", xytext=(3, 6),
                        color="tab:purple", fontsize=8)
    ax.set_xlabel(f"{position.underlying or 'underlying'} price")
    ax.set_ylabel("P&L ($)")
    ax.set_title(title or f"{position.underlying} payoff")
    ax.legend(loc="best", fontsize=8)
    ax.grid(True, alpha=0.3)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
