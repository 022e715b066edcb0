"""Jitted order stages of one bar (numpy + numba only; slow twin in ``reference.py``).

Targets become pending targets (:func:`receive_targets_nb`), pending targets become sized,
volume-capped orders, and :func:`trade_bar_nb` fills them through the risk hook; at the close
:func:`mark_to_close_nb` values the account. The pass that calls them is ``_nb.py``; the cost
and leverage rules of a fill live in ``_fills_nb.py``. Helpers called on every traded bar
are ``inline="always"`` (a compiled call counts references on each array argument; see
``_fills_nb.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.engine._fills_nb import (
    adverse_fraction_nb,
    allot_exposure_nb,
    apply_fill_nb,
    book_fill_nb,
    price_fill_nb,
    return_volatility_nb,
)
from framework.engine._layout import (
    A_CASH,
    A_LONG,
    A_SHORT,
    D_CLOSING,
    D_FRACTION,
    D_OPENING,
    D_SHARES,
    D_SIGMA,
    ORDER_DUST,
    P_ALLOW_SHORT,
    P_EVERY_BAR,
    P_FILL_CLOSE,
    P_IMPACT_COEF,
    P_IMPACT_WINDOW,
    P_MAX_PARTICIPATION,
    P_WHOLE_SHARES,
)
from framework.risk._exits_nb import track_fill_nb
from framework.risk._layout import S_REASON
from framework.risk._nb import filter_orders_nb


# ============================== order sizing =================================================
@njit(cache=True, inline="always")
def size_order_nb(weight, equity, price, position, whole_shares):
    """Shares to trade so the position becomes ``weight`` of ``equity`` at ``price``.

    A wiped-out account (equity <= 0) can only flatten. An order below ``ORDER_DUST`` of the
    position is rounding noise from re-sizing an unchanged weight and is dropped (it would
    otherwise pay a minimum commission).
    """
    if not equity > 0.0:
        weight = 0.0
    order = weight * equity / price - position
    if abs(order) <= ORDER_DUST * abs(position):
        return 0.0
    if whole_shares:
        order = np.trunc(order)
    return order


@njit(cache=True, inline="always")
def cap_participation_nb(order, bar_volume, params):
    """The part of ``order`` that fits in ``max_participation`` of the bar's volume."""
    limit = params[P_MAX_PARTICIPATION]
    if np.isnan(limit) or not bar_volume > 0.0:
        return order
    room = limit * bar_volume
    if params[P_WHOLE_SHARES] != 0.0:
        room = np.floor(room)
    if abs(order) <= room:
        return order
    return room if order > 0.0 else -room


# ============================== targets and orders ===========================================
@njit(cache=True, inline="always")
def receive_targets_nb(target, source, params, last_target, pending, remaining):
    """Turn the targets of decision bar ``source`` into pending targets (NaN = no opinion).

    Returns how many targets were accepted.

    Per-bar helpers take the 2-D array and a row number: a row view per bar costs reference
    counting that dominates the quiet bars of a parameter grid.
    """
    every_bar = params[P_EVERY_BAR] != 0.0
    allow_short = params[P_ALLOW_SHORT] != 0.0
    received = 0
    for j in range(target.shape[1]):
        weight = target[source, j]
        if np.isnan(weight):
            continue
        if not allow_short and weight < 0.0:
            weight = 0.0
        if every_bar or weight != last_target[j]:
            # a new target supersedes whatever is left of the previous order
            pending[j] = weight
            remaining[j] = 0.0
            last_target[j] = weight
            received += 1
    return received


@njit(cache=True)
def count_new_targets_nb(target, params):
    """How many targets a pass would accept: each yields at most one fill unless the volume
    cap spreads it over several bars, so this sizes the fill buffers."""
    m = target.shape[1]
    last_target = np.full(m, np.nan)
    pending = np.full(m, np.nan)
    remaining = np.zeros(m)
    count = 0
    for i in range(target.shape[0]):
        count += receive_targets_nb(target, i, params, last_target, pending, remaining)
    return count


@njit(cache=True, inline="always")
def has_work_nb(pending, remaining):
    """True when some asset has a pending target or an unfilled order."""
    # an explicit loop: numba does not compile any() over a generator
    for j in range(pending.shape[0]):  # noqa: SIM110
        if not np.isnan(pending[j]) or remaining[j] != 0.0:
            return True
    return False


@njit(cache=True, inline="always")
def value_account_nb(prices, marks, positions, account):
    """Equity at the fill prices (last mark where an asset has none); sets long/short values."""
    equity = account[A_CASH]
    long_value = 0.0
    short_value = 0.0
    for j in range(positions.shape[0]):
        shares = positions[j]
        if shares == 0.0:
            continue
        price = prices[j] if np.isfinite(prices[j]) else marks[j]
        value = shares * price
        equity += value
        if shares > 0.0:
            long_value += value
        else:
            short_value -= value
    account[A_LONG] = long_value
    account[A_SHORT] = short_value
    return equity


@njit(cache=True, inline="always")
def size_pending_nb(prices, equity, positions, pending, remaining, params):
    """Size an order for every pending target whose asset has a fill price on this bar."""
    whole_shares = params[P_WHOLE_SHARES] != 0.0
    for j in range(positions.shape[0]):
        if np.isnan(pending[j]) or not np.isfinite(prices[j]):
            continue  # no price (not trading yet, halted): the target waits
        remaining[j] = size_order_nb(pending[j], equity, prices[j], positions[j], whole_shares)
        pending[j] = np.nan


@njit(cache=True, inline="always")
def collect_orders_nb(prices, volume_row, remaining, params, assets, orders, values):
    """List this bar's orders (volume-capped); return how many. The uncapped rest stays."""
    count = 0
    for j in range(remaining.shape[0]):
        if remaining[j] == 0.0 or not np.isfinite(prices[j]):
            continue
        order = cap_participation_nb(remaining[j], volume_row[j], params)
        if order == 0.0:
            continue
        remaining[j] -= order
        assets[count] = j
        orders[count] = order
        values[count] = order * prices[j]
        count += 1
    return count


# ============================== one bar's fills ==============================================
@njit(cache=True, inline="always")
def prepare_orders_nb(i, count, book, close, volume_row, positions, params):
    """Per order: impact volatility, adverse fraction at full size, closing and adding shares."""
    assets, orders, _, detail = book
    window = int(params[P_IMPACT_WINDOW])
    for s in range(count):
        j = assets[s]
        shares = abs(orders[s])
        sigma = np.nan
        if params[P_IMPACT_COEF] > 0.0:
            sigma = return_volatility_nb(close, i, j, window)
        fraction, _, _ = adverse_fraction_nb(shares, volume_row[j], sigma, params)
        closing = 0.0
        if positions[j] * orders[s] < 0.0:
            closing = min(shares, abs(positions[j]))
        detail[D_SIGMA, s] = sigma
        detail[D_FRACTION, s] = fraction
        detail[D_CLOSING, s] = closing
        detail[D_OPENING, s] = shares - closing


@njit(cache=True, inline="always")
def execute_orders_nb(i, count, book, prices, close, volume_row, state, risk):
    """Fill this bar's orders: first those that only reduce positions, then those that add
    exposure, scaled together to fit the leverage rule; each group in ascending signed value
    (sells first). Records and totals the fills.

    ``book`` is ``(assets, orders, values, detail)``; ``state`` and ``risk`` are the tuples
    built in :func:`run_nb` (``risk`` also carries this bar's risk-table row and ATR row).
    Returns the bar's traded value.
    """
    positions, marks, account, params, totals, fills_int, fills_float = (
        state[0],
        state[1],
        state[2],
        state[3],
        state[4],
        state[5],
        state[6],
    )
    risk_on, astate, gstate, atr_row = risk[0], risk[2], risk[3], risk[6]
    assets, orders, values, detail = book
    prepare_orders_nb(i, count, book, close, volume_row, positions, params)
    # fill order: ascending signed value, stable (ties keep asset order); one order (the
    # common case of a grid) needs no sort and no allocation
    sequence = np.argsort(values[:count], kind="mergesort") if count > 1 else assets[:0]
    traded = 0.0
    for adding in (False, True):
        if adding:
            allot_exposure_nb(count, book, prices, account, params)
        for r in range(count):
            s = sequence[r] if count > 1 else r
            if (detail[D_OPENING, s] > 0.0) != adding:
                continue
            shares = detail[D_SHARES, s] if adding else abs(orders[s])
            if not shares > 0.0:
                continue
            j = assets[s]
            side = 1.0 if orders[s] > 0.0 else -1.0
            fill_price, fee, slip_cost, impact_cost, skipped = price_fill_nb(
                shares, side, prices[j], volume_row[j], detail[D_SIGMA, s], params
            )
            old = positions[j]
            apply_fill_nb(j, side * shares, fill_price, fee, prices[j], positions, account)
            reason = 0
            if risk_on:
                reason = int(astate[S_REASON, j])
                track_fill_nb(j, old, positions[j], fill_price, fee, i, atr_row[j], astate, gstate)
            if np.isnan(marks[j]):
                marks[j] = prices[j]  # filled before its first close: mark at the fill bar's price
            fill = (side * shares, fill_price, fee, slip_cost, impact_cost, skipped)
            traded += book_fill_nb(totals, (fills_int, fills_float), i, j, fill, reason)
    return traded


@njit(cache=True, inline="always")
def trade_bar_nb(i, open_, close, volume, book, state, risk):
    """Size, cap and fill the orders of bar ``i``; return the bar's traded value.

    ``risk = (risk_on, rp, astate, gstate, events, locked, atr_row)`` (see :func:`run_nb`).
    """
    # single items, not slices: a sliced tuple copies (and reference-counts) every member
    positions, marks, account, params = state[0], state[1], state[2], state[3]
    pending, remaining = state[7], state[8]
    assets, orders, values, _ = book
    prices = close[i] if params[P_FILL_CLOSE] != 0.0 else open_[i]
    equity_now = value_account_nb(prices, marks, positions, account)
    size_pending_nb(prices, equity_now, positions, pending, remaining, params)
    count = collect_orders_nb(prices, volume[i], remaining, params, assets, orders, values)
    if risk[0] and count > 0:
        # RISK HOOK: the risk layer rescales or drops orders[:count] before any fill
        rules = (risk[1], risk[3], risk[2], risk[5])
        count = filter_orders_nb(i, count, book, prices, equity_now, positions, rules, risk[4])
    if count == 0:
        return 0.0
    return execute_orders_nb(i, count, book, prices, close, volume[i], state, risk)


@njit(cache=True, inline="always")
def mark_to_close_nb(close, i, marks, positions, cash):
    """Equity and gross position value at close ``i`` (a missing close keeps the last mark)."""
    equity = cash
    gross = 0.0
    for j in range(positions.shape[0]):
        if np.isfinite(close[i, j]):
            marks[j] = close[i, j]
        if positions[j] != 0.0:
            value = positions[j] * marks[j]
            equity += value
            gross += abs(value)
    return equity, gross
