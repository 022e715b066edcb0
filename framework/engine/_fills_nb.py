"""Jitted cost and leverage rules for one bar's fills (numpy + numba only).

Slow twin: ``reference.py``. See ``framework.costs`` for the cost model and
:func:`allot_exposure_nb` for the leverage rule.

Helpers on the per-fill path are ``inline="always"``: each call of a compiled helper counts
references on its array arguments, which made a traded bar cost ~1.4 us; inlined, ~0.9 us.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.engine._layout import (
    A_CASH,
    A_LONG,
    A_SHORT,
    BISECTION_STEPS,
    D_CLOSING,
    D_FRACTION,
    D_OPENING,
    D_SHARES,
    F_ASSET,
    F_BAR,
    F_COMMISSION,
    F_IMPACT,
    F_PRICE,
    F_QTY,
    F_REASON,
    F_SLIPPAGE,
    P_COMMISSION_CAP,
    P_COMMISSION_RATE,
    P_IMPACT_COEF,
    P_MAX_LEVERAGE,
    P_MIN_COMMISSION,
    P_PER_SHARE,
    P_SLIPPAGE,
    P_WHOLE_SHARES,
    T_COMMISSION,
    T_FILLS,
    T_IMPACT,
    T_IMPACT_SKIPPED,
    T_SLIPPAGE,
    T_TRADED_VALUE,
)


# ============================== cost helpers =================================================
@njit(cache=True, inline="always")
def commission_nb(shares, fill_price, params):
    """Commission of one fill of ``shares`` (> 0) at ``fill_price``, in currency."""
    value = shares * fill_price
    fee = shares * params[P_PER_SHARE] + value * params[P_COMMISSION_RATE]
    if fee < params[P_MIN_COMMISSION]:
        fee = params[P_MIN_COMMISSION]
    cap = params[P_COMMISSION_CAP]
    if not np.isnan(cap) and fee > value * cap:
        fee = value * cap
    return fee


@njit(cache=True)
def return_volatility_nb(close, i, j, window):
    """Sample std of the close-to-close returns of asset ``j`` over bars ``i-window .. i-1``.

    Only bars before ``i`` are used, so the value is known before bar ``i`` opens. Returns whose
    either close is missing are skipped; NaN when fewer than two remain.
    """
    start = max(1, i - window)
    count = 0
    total = 0.0
    for k in range(start, i):
        prev, now = close[k - 1, j], close[k, j]
        if np.isfinite(prev) and np.isfinite(now):
            total += now / prev - 1.0
            count += 1
    if count < 2:
        return np.nan
    mean = total / count
    squares = 0.0
    for k in range(start, i):
        prev, now = close[k - 1, j], close[k, j]
        if np.isfinite(prev) and np.isfinite(now):
            dev = (now / prev - 1.0) - mean
            squares += dev * dev
    return np.sqrt(squares / (count - 1))


@njit(cache=True, inline="always")
def adverse_fraction_nb(shares, bar_volume, sigma, params):
    """Slippage plus square-root impact as a fraction of price.

    Returns ``(total fraction, impact fraction, impact skipped)``; impact is skipped (and the
    fill counted) when the bar has no volume or the volatility is unknown.
    """
    slip = params[P_SLIPPAGE]
    coef = params[P_IMPACT_COEF]
    if coef == 0.0:
        return slip, 0.0, False
    if not bar_volume > 0.0 or np.isnan(sigma):
        return slip, 0.0, True
    impact = coef * sigma * np.sqrt(shares / bar_volume)
    # never move a sell price below zero
    if impact > 1.0 - slip:
        impact = 1.0 - slip
    return slip + impact, impact, False


# ============================== leverage rule and fills ======================================
@njit(cache=True, inline="always")
def scaled_shares_nb(closing, opening, scale, whole_shares):
    """Shares of an order whose exposure-adding part is scaled by ``scale`` in [0, 1]."""
    extra = scale * opening
    if whole_shares:
        extra = np.floor(extra)
    return closing + extra


@njit(cache=True, inline="always")
def exposure_cost_nb(shares, closing, side, price, fraction, params):
    """What one fill of ``shares`` uses of the leverage budget (see :func:`allot_exposure_nb`)."""
    if not shares > 0.0:
        return 0.0
    lev = params[P_MAX_LEVERAGE]
    unit = price / lev + price * fraction
    fee = commission_nb(shares, price * (1.0 + side * fraction), params)
    return shares * unit + fee - 2.0 * closing * price / lev


@njit(cache=True, inline="always")
def exposure_total_nb(scale, count, book, prices, params):
    """Budget used by all exposure-adding orders when their adding parts are scaled."""
    assets, orders, _, detail = book
    whole_shares = params[P_WHOLE_SHARES] != 0.0
    total = 0.0
    for s in range(count):
        opening = detail[D_OPENING, s]
        if not opening > 0.0:
            continue
        closing = detail[D_CLOSING, s]
        shares = abs(orders[s])
        if scale != 1.0:
            shares = scaled_shares_nb(closing, opening, scale, whole_shares)
        side = 1.0 if orders[s] > 0.0 else -1.0
        j = assets[s]
        total += exposure_cost_nb(shares, closing, side, prices[j], detail[D_FRACTION, s], params)
    return total


@njit(cache=True, inline="always")
def max_shares_nb(budget, unit, fill_price, params):
    """Largest ``q >= 0`` with ``q * unit + commission(q) <= budget`` (one order, exact).

    The commission is ``min(max(a * q, minimum), cap * fill_price * q)``, so the cost is
    increasing and piecewise linear in ``q``: the inverse of a max of lines is the min of their
    inverses and vice versa.
    """
    if not budget > 0.0:
        return 0.0
    per_share = params[P_PER_SHARE] + fill_price * params[P_COMMISSION_RATE]
    shares = min(budget / (unit + per_share), (budget - params[P_MIN_COMMISSION]) / unit)
    cap = params[P_COMMISSION_CAP]
    if not np.isnan(cap):
        shares = max(shares, budget / (unit + cap * fill_price))
    return max(shares, 0.0)


@njit(cache=True)
def exposure_scale_nb(count, book, prices, budget, params):
    """Largest common factor in [0, 1] for the adding parts of several orders (bisection)."""
    if not exposure_total_nb(0.0, count, book, prices, params) <= budget:
        return 0.0
    low, high = 0.0, 1.0
    for _ in range(BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if exposure_total_nb(middle, count, book, prices, params) <= budget:
            low = middle
        else:
            high = middle
    return low


@njit(cache=True, inline="always")
def allot_exposure_nb(count, book, prices, account, params):
    """Set ``detail[D_SHARES]`` for the orders that add exposure (the leverage rule).

    After the fills, gross exposure must stay within ``max_leverage * equity`` (with leverage 1
    and no shorts: cash stays >= 0 after costs). An order of ``q`` shares of which ``c`` close
    an existing position changes gross by ``(q - 2c) * price`` and equity by ``-(q * price *
    fraction + commission)``; dividing the constraint by the leverage, the orders together
    must satisfy ``sum(q * unit + commission - 2 c * price / lev) <= budget``. When they do
    not, all adding parts shrink by one common factor, so no order is favoured: solved exactly
    for a single order, by bisection (the cost increases with the factor) for several.
    Closing parts are never cut. Slippage and impact are priced at the full order size, an
    upper bound, so the fills stay within the budget.
    """
    assets, orders, _, detail = book
    whole_shares = params[P_WHOLE_SHARES] != 0.0
    lev = params[P_MAX_LEVERAGE]
    budget = (
        account[A_CASH] + account[A_LONG] * (1.0 - 1.0 / lev) - account[A_SHORT] * (1.0 + 1.0 / lev)
    )
    adding = 0
    last = -1
    for s in range(count):
        if detail[D_OPENING, s] > 0.0:
            adding += 1
            last = s
    if adding == 0:
        return
    if exposure_total_nb(1.0, count, book, prices, params) <= budget:
        for s in range(count):
            detail[D_SHARES, s] = abs(orders[s])
        return
    if adding == 1:
        closing = detail[D_CLOSING, last]
        price = prices[assets[last]]
        fraction = detail[D_FRACTION, last]
        side = 1.0 if orders[last] > 0.0 else -1.0
        unit = price / lev + price * fraction
        most = max_shares_nb(
            budget + 2.0 * closing * price / lev, unit, price * (1.0 + side * fraction), params
        )
        if whole_shares:
            most = np.floor(most)
        detail[D_SHARES, last] = max(closing, min(abs(orders[last]), most))
        return
    scale = exposure_scale_nb(count, book, prices, budget, params)
    for s in range(count):
        detail[D_SHARES, s] = scaled_shares_nb(
            detail[D_CLOSING, s], detail[D_OPENING, s], scale, whole_shares
        )


@njit(cache=True, inline="always")
def price_fill_nb(shares, side, price, bar_volume, sigma, params):
    """Price one fill: ``(fill price, commission, slippage cost, impact cost, impact skipped)``."""
    fraction, impact, skipped = adverse_fraction_nb(shares, bar_volume, sigma, params)
    fill_price = price * (1.0 + side * fraction)
    fee = commission_nb(shares, fill_price, params)
    return (
        fill_price,
        fee,
        shares * price * params[P_SLIPPAGE],
        shares * price * impact,
        skipped,
    )


@njit(cache=True, inline="always")
def apply_fill_nb(j, filled, fill_price, fee, price, positions, account):
    """Move cash and shares for one fill; keep the long/short values (at ``price``) current."""
    old = positions[j]
    new = old + filled
    account[A_CASH] -= filled * fill_price + fee
    account[A_LONG] += (max(new, 0.0) - max(old, 0.0)) * price
    account[A_SHORT] += (max(-new, 0.0) - max(-old, 0.0)) * price
    positions[j] = new


# ============================== fill records =================================================
@njit(cache=True, inline="always")
def book_fill_nb(totals, fills, i, j, fill, reason):
    """Count one fill in ``totals`` and record it when recording is on; return its value.

    ``fill = (signed shares, fill price, commission, slippage cost, impact cost, skipped)``;
    ``fills = (fills_int, fills_float)`` (zero rows: no recording).
    """
    qty, fill_price, fee, slip_cost, impact_cost, skipped = fill
    value = abs(qty) * fill_price
    n_fills = int(totals[T_FILLS])
    totals[T_FILLS] += 1.0
    totals[T_COMMISSION] += fee
    totals[T_SLIPPAGE] += slip_cost
    totals[T_IMPACT] += impact_cost
    totals[T_TRADED_VALUE] += value
    if skipped:
        totals[T_IMPACT_SKIPPED] += 1.0
    fills_int, fills_float = fills
    if fills_int.shape[0] > 0:
        record_fill_nb(fills_int, fills_float, n_fills, i, j, fill[:5], reason)
    return value


@njit(cache=True, inline="always")
def record_fill_nb(fills_int, fills_float, row, i, j, fill, reason):
    """Write one fill into the buffers when it fits (the caller re-runs with room otherwise)."""
    if row >= fills_int.shape[0]:
        return
    qty, price, fee, slip_cost, impact_cost = fill
    fills_int[row, F_BAR] = i
    fills_int[row, F_ASSET] = j
    fills_int[row, F_REASON] = reason
    fills_float[row, F_QTY] = qty
    fills_float[row, F_PRICE] = price
    fills_float[row, F_COMMISSION] = fee
    fills_float[row, F_SLIPPAGE] = slip_cost
    fills_float[row, F_IMPACT] = impact_cost
