"""Jitted simulation kernels (numpy + numba only; see ``reference.py`` for the slow twin).

:func:`run_nb` is one left-to-right pass over the bars. At each bar it

1. receives the targets decided at the previous close (``next_open``) or at this close
   (``close``) and turns new ones into pending targets;
2. values the account at the fill prices and sizes an order (in shares) for every pending target
   whose asset has a fill price;
3. caps each order by the bar's volume (participation); the rest stays for later bars;
4. **risk hook**: the risk layer (``framework.risk``) changes or drops the sized orders here,
   before anything fills;
5. fills the orders that only reduce positions, then the ones that add exposure, scaled by one
   common factor so gross exposure stays within ``max_leverage * equity`` after costs (with
   leverage 1 and no shorts: cash never goes below zero); each group in ascending signed value;
6. with the risk layer on: checks stops on the bar's high/low (exits fill at once);
7. marks positions at the close and records equity; with risk on, checks the breakers and the
   daily loss limit (a flatten they ask for fills at the next bar).

With ``risk[0][0, R_ENABLED] == 0`` none of the risk code runs, and results are bit for bit
those of the engine without a risk layer.

Every step is a small ``@njit`` helper so the rules can be read (and tested) one at a time.
Parameters travel in one float64 vector indexed by the ``P_*`` constants of ``_layout.py``,
built by ``core.py``; cost totals come back in a vector indexed by the ``T_*`` constants. The
cost and leverage rules of a fill live in ``_fills_nb.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from framework.engine._fills_nb import (
    adverse_fraction_nb,
    allot_exposure_nb,
    apply_fill_nb,
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
    F_ASSET,
    F_BAR,
    F_COMMISSION,
    F_IMPACT,
    F_PRICE,
    F_QTY,
    F_REASON,
    F_SLIPPAGE,
    N_DETAIL,
    N_FILL_INT,
    N_TOTALS,
    ORDER_DUST,
    P_ALLOW_SHORT,
    P_EVERY_BAR,
    P_FILL_CLOSE,
    P_IMPACT_COEF,
    P_IMPACT_WINDOW,
    P_INITIAL_CASH,
    P_MAX_PARTICIPATION,
    P_WHOLE_SHARES,
    T_BARS_IN_MARKET,
    T_COMMISSION,
    T_FILLS,
    T_IMPACT,
    T_IMPACT_SKIPPED,
    T_SLIPPAGE,
    T_TRADED_VALUE,
)
from framework.risk._exits_nb import (
    close_checks_nb,
    flatten_nb,
    mark_stopped_nb,
    rules_present_nb,
    stop_exit_nb,
    stops_active_nb,
    track_fill_nb,
    update_extremes_nb,
)
from framework.risk._layout import (
    G_BREAKER,
    G_EVENTS,
    G_FLATTEN,
    G_LOCK_SESSION,
    R_ENABLED,
    RULE_TIME_STOP,
    S_ENTRY_BAR,
    S_REASON,
)
from framework.risk._nb import (
    N_STAGES,
    filter_orders_nb,
    new_risk_state_nb,
    receive_risk_nb,
    record_event_nb,
    skip_decision_nb,
)


# ============================== order sizing =================================================
@njit(cache=True)
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


@njit(cache=True)
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


# ============================== per-bar stages ===============================================
@njit(cache=True)
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


@njit(cache=True)
def has_work_nb(pending, remaining):
    """True when some asset has a pending target or an unfilled order."""
    # an explicit loop: numba does not compile any() over a generator
    for j in range(pending.shape[0]):  # noqa: SIM110
        if not np.isnan(pending[j]) or remaining[j] != 0.0:
            return True
    return False


@njit(cache=True)
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


@njit(cache=True)
def size_pending_nb(prices, equity, positions, pending, remaining, params):
    """Size an order for every pending target whose asset has a fill price on this bar."""
    whole_shares = params[P_WHOLE_SHARES] != 0.0
    for j in range(positions.shape[0]):
        if np.isnan(pending[j]) or not np.isfinite(prices[j]):
            continue  # no price (not trading yet, halted): the target waits
        remaining[j] = size_order_nb(pending[j], equity, prices[j], positions[j], whole_shares)
        pending[j] = np.nan


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def execute_orders_nb(i, count, book, prices, close, volume_row, state, risk):
    """Fill this bar's orders: first those that only reduce positions, then those that add
    exposure, scaled together to fit the leverage rule; each group in ascending signed value
    (sells first). Records and totals the fills.

    ``book`` is ``(assets, orders, values, detail)``; ``state`` and ``risk`` are the tuples
    built in :func:`run_nb` (``risk`` also carries this bar's risk-table row and ATR row).
    Returns the bar's traded value.
    """
    positions, marks, account, params, totals, fills_int, fills_float = state[:7]
    risk_on, astate, gstate, atr_row = risk[0], risk[2], risk[3], risk[6]
    record = fills_int.shape[0] > 0
    assets, orders, values, detail = book
    prepare_orders_nb(i, count, book, close, volume_row, positions, params)
    sequence = np.argsort(values[:count], kind="mergesort")  # stable: ties keep asset order
    traded = 0.0
    for adding in (False, True):
        if adding:
            allot_exposure_nb(count, book, prices, account, params)
        for r in range(count):
            s = sequence[r]
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
            traded += shares * fill_price
            n_fills = int(totals[T_FILLS])
            totals[T_FILLS] += 1.0
            totals[T_COMMISSION] += fee
            totals[T_SLIPPAGE] += slip_cost
            totals[T_IMPACT] += impact_cost
            totals[T_TRADED_VALUE] += shares * fill_price
            if skipped:
                totals[T_IMPACT_SKIPPED] += 1.0
            if record:
                fill = (side * shares, fill_price, fee, slip_cost, impact_cost)
                record_fill_nb(fills_int, fills_float, n_fills, i, j, fill, reason)
    return traded


@njit(cache=True)
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


# ============================== the pass =====================================================
@njit(cache=True)
def trade_bar_nb(i, open_, close, volume, book, state, risk):
    """Size, cap and fill the orders of bar ``i``; return the bar's traded value.

    ``risk = (risk_on, rp, astate, gstate, events, locked, atr_row)`` (see :func:`run_nb`).
    """
    positions, marks, account, params = state[:4]
    pending, remaining = state[7:]
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


@njit(cache=True)
def stop_fills_nb(i, bar_data, state, risk):
    """Exit every position whose stop, take-profit or time stop triggers on bar ``i``.

    ``bar_data = (open_, high, low, close, volume)``. Exits fill at once at the trigger price
    (the open on a gap, else the level; the close for the time stop) with the cost model's
    slippage, impact and commission. Returns the traded value.
    """
    open_, high, low, close, volume = bar_data
    positions, marks, account, params, totals, fills_int, fills_float, pending, remaining = state
    _, rp, astate, gstate, events, _, _ = risk
    fill_close = params[P_FILL_CLOSE] != 0.0
    traded = 0.0
    for j in range(positions.shape[0]):
        position = positions[j]
        if position == 0.0:
            continue
        bar_prices = (open_[i, j], high[i, j], low[i, j], close[i, j])
        price, reason, rule = stop_exit_nb(i, j, position, bar_prices, fill_close, rp, astate)
        if not np.isfinite(price):
            continue
        shares = abs(position)
        side = -1.0 if position > 0.0 else 1.0
        sigma = np.nan
        if params[P_IMPACT_COEF] > 0.0:
            sigma = return_volatility_nb(close, i, j, int(params[P_IMPACT_WINDOW]))
        fill_price, fee, slip_cost, impact_cost, skipped = price_fill_nb(
            shares, side, price, volume[i, j], sigma, params
        )
        apply_fill_nb(j, side * shares, fill_price, fee, price, positions, account)
        track_fill_nb(j, position, positions[j], fill_price, fee, i, np.nan, astate, gstate)
        mark_stopped_nb(j, reason, astate)
        pending[j] = np.nan
        remaining[j] = 0.0
        detail = i - astate[S_ENTRY_BAR, j] if rule == RULE_TIME_STOP else fill_price
        record_event_nb(events, gstate, i, j, rule, position, positions[j], detail)
        traded += shares * fill_price
        n_fills = int(totals[T_FILLS])
        totals[T_FILLS] += 1.0
        totals[T_COMMISSION] += fee
        totals[T_SLIPPAGE] += slip_cost
        totals[T_IMPACT] += impact_cost
        totals[T_TRADED_VALUE] += shares * fill_price
        if skipped:
            totals[T_IMPACT_SKIPPED] += 1.0
        if fills_int.shape[0] > 0:
            fill = (side * shares, fill_price, fee, slip_cost, impact_cost)
            record_fill_nb(fills_int, fills_float, n_fills, i, j, fill, reason)
    return traded


@njit(cache=True)
def run_nb(prices, target, params, equity, per_bar, positions_out, fills, risk, risk_state, events):
    """Simulate one portfolio over all bars.

    Parameters
    ----------
    prices : tuple of (n, m) float64
        ``(open_, close, volume)``.
    target : (n, m) float64
    params : (N_PARAMS,) float64
    equity : (n,) float64, written
    per_bar : (3, n) float64, written when recording: cash, gross value, traded value
    positions_out : (n, m) float64, written when recording
    fills : tuple of (f, N_FILL_INT) int64 and (f, 5) float64 buffers
        Fill records are written while they fit; ``totals[T_FILLS]`` counts every fill, so a
        caller whose buffers were too small re-runs with larger ones (the run is
        deterministic). Zero rows turn recording off, including ``per_bar`` and
        ``positions_out`` (parameter grids).
    risk : tuple
        ``(table, regime_row, session, period_start, high, low, atr, groups)``: the risk
        parameter table ``(rows, N_RISK)`` (row 0 = base; ``table[0, R_ENABLED] == 0`` turns
        the layer off), the table row in force per bar (int64, from the regime labels), the
        session id per bar (int64, daily loss limit), 1 on the first bar of a rebalancing
        period, the bars' high/low (``(n, m)``), ATR (``(n, m)`` or ``(0, m)`` when unused)
        and the group of each asset (``(m,)`` int64, -1 none; ``(0,)`` for no groups).
    risk_state : tuple
        ``(astate (N_ASSET_STATE, m), gstate (N_GLOBAL_STATE,))``, read and written (see
        ``framework.risk.state``).
    events : tuple of (e, 3) int64 and (e, 3) float64 buffers
        Risk events, written while they fit; ``gstate[G_EVENTS]`` counts them all.

    Returns
    -------
    totals (N_TOTALS,) float64 and the final marks (m,) float64 (last known price per asset).

    Notes
    -----
    Arrays are allocated once and never rebound inside the bar loop: a rebound array costs
    reference counting on every bar, which dominates the quiet bars of a parameter grid.
    """
    open_, close, volume = prices
    n, m = close.shape
    fills_int, fills_float = fills
    record = fills_int.shape[0] > 0
    fill_close = params[P_FILL_CLOSE] != 0.0
    positions = np.zeros(m)
    marks = np.full(m, np.nan)
    last_target = np.full(m, np.nan)
    pending = np.full(m, np.nan)
    remaining = np.zeros(m)
    account = np.zeros(3)
    account[A_CASH] = params[P_INITIAL_CASH]
    totals = np.zeros(N_TOTALS)
    book = (np.empty(m, np.int64), np.empty(m), np.empty(m), np.empty((N_DETAIL, m)))
    # state: what the per-bar stages read and write, passed as one tuple
    state = (positions, marks, account, params, totals, fills_int, fills_float, pending, remaining)
    table = risk[0]
    risk_on = table[0, R_ENABLED] != 0.0
    every = params[P_EVERY_BAR] != 0.0
    astate, gstate = risk_state
    regime_row, high, low = risk[1], risk[4], risk[5]
    stops_any, checks_any = rules_present_nb(table)
    stages = np.empty((N_STAGES + 1, m if risk_on else 0))
    # the risk tuple trade_bar_nb receives when the layer is off (never read past [0])
    off_hook = (False, table[0], risk_state[0], risk_state[1], events, False, np.empty(0))
    busy = False
    for i in range(n):
        source = i if fill_close else i - 1
        if source >= 0 and not (
            risk_on and skip_decision_nb(target, source, risk[1], table, risk_state[1], every)
        ):
            if risk_on:
                scratch = (last_target, stages)
                accepted = receive_with_risk_nb(
                    target, source, close, state, risk, risk_state, scratch, events
                )
            else:
                accepted = receive_targets_nb(
                    target, source, params, last_target, pending, remaining
                )
            if accepted:
                busy = True  # some target was accepted
        traded = 0.0
        if risk_on:
            # quiet bars (nothing to fill, nothing held or no exit rule) skip the risk work
            due = stops_any and exit_due_nb(
                i,
                open_,
                high,
                low,
                close,
                positions,
                table,
                regime_row[max(source, 0)],
                astate,
                fill_close,
            )
            if busy or gstate[G_FLATTEN] != 0.0 or due:
                traded, busy = risk_bar_nb(
                    i, source, prices, book, state, busy, risk, risk_state, events
                )
        elif busy:
            traded = trade_bar_nb(i, open_, close, volume, book, state, off_hook)
            busy = has_work_nb(pending, remaining)
        equity_close, gross = mark_to_close_nb(close, i, marks, positions, account[A_CASH])
        equity[i] = equity_close
        if risk_on and stops_any and gross > 0.0:
            update_extremes_nb(i, risk[4], risk[5], positions, fill_close, risk_state[0])
        if risk_on and (checks_any or gstate[G_BREAKER] != 0.0):
            reason = close_checks_nb(i, equity_close, risk[2][i], table[risk[1][i]], gstate, events)
            if reason >= 0:
                gstate[G_FLATTEN] = reason
        if gross > 0.0:
            totals[T_BARS_IN_MARKET] += 1.0
        if record:
            per_bar[0, i] = account[A_CASH]
            per_bar[1, i] = gross
            per_bar[2, i] = traded
            positions_out[i] = positions
    return totals, marks


@njit(cache=True)
def exit_due_nb(i, open_, high, low, close, positions, table, row, astate, fill_close):
    """True when some open position's stop, take-profit or time stop triggers on bar ``i``: a
    cheap look (plain arrays, no tuples) before the full bar work of :func:`risk_bar_nb`."""
    rp = table[row]
    for j in range(positions.shape[0]):
        if positions[j] == 0.0:
            continue
        bar_prices = (open_[i, j], high[i, j], low[i, j], close[i, j])
        price, _, _ = stop_exit_nb(i, j, positions[j], bar_prices, fill_close, rp, astate)
        if np.isfinite(price):
            return True
    return False


@njit(cache=True)
def receive_with_risk_nb(target, source, close, state, risk, risk_state, scratch, events):
    """Decision-time risk rules on row ``source`` (sizing, caps, filters), then accept."""
    positions, marks, account, params = state[:4]
    pending, remaining = state[7:]
    last_target, stages = scratch
    equity = account[A_CASH]
    for j in range(positions.shape[0]):
        if positions[j] != 0.0:
            equity += positions[j] * marks[j]
    ctx = (close, risk[6], risk[7], risk[0][risk[1][source]], risk[3])
    flags = (params[P_EVERY_BAR] != 0.0, params[P_ALLOW_SHORT] != 0.0, equity)
    book = (last_target, pending, remaining, positions, marks, stages)
    return receive_risk_nb(target, source, ctx, flags, book, risk_state, events)


@njit(cache=True, inline="always")
def risk_bar_nb(i, source, prices, book, state, busy, risk, risk_state, events):
    """One bar with the risk layer on: a requested flatten, the orders (through the risk
    hook), then the stops. Returns ``(traded value, busy)``."""
    open_, close, volume = prices
    table, regime_row, session = risk[0], risk[1], risk[2]
    astate, gstate = risk_state
    positions, pending, remaining = state[0], state[7], state[8]
    if gstate[G_FLATTEN] != 0.0:
        if flatten_nb(int(gstate[G_FLATTEN]), positions, pending, remaining, astate) > 0:
            busy = True
        gstate[G_FLATTEN] = 0.0
    decision = max(source, 0)
    rp = table[regime_row[decision]]
    atr_row = risk[6][decision]
    locked = source >= 0 and gstate[G_LOCK_SESSION] == session[decision]
    hook = (True, rp, astate, gstate, events, locked, atr_row)
    traded = 0.0
    if busy:
        traded = trade_bar_nb(i, open_, close, volume, book, state, hook)
        busy = has_work_nb(pending, remaining)
    if stops_active_nb(rp):
        bar_data = (open_, risk[4], risk[5], close, volume)
        traded += stop_fills_nb(i, bar_data, state, hook)
    return traded, busy


@njit(cache=True, parallel=True)
def run_grid_nb(prices, targets, params, risk):
    """Simulate ``k`` independent single-asset portfolios, one per column of ``targets``.

    ``prices = (open_, close, volume)`` are ``(n, 1)``; ``targets`` is ``(n, k)`` in any memory
    order; ``risk`` as for :func:`run_nb` (every column starts from a fresh risk state).
    Each portfolio first copies its column into a contiguous buffer: numpy's transpose of a
    large grid costs as much as simulating it, and a strided view slows every bar.
    Returns ``equity (k, n)``, ``totals (k, N_TOTALS)`` and the risk event count per column.
    """
    n, k = targets.shape
    equity = np.empty((k, n))
    totals = np.empty((k, N_TOTALS))
    n_events = np.zeros(k)
    for c in prange(k):
        per_bar = np.empty((3, 1))
        positions_out = np.empty((1, 1))
        no_fills = (np.empty((0, N_FILL_INT), np.int64), np.empty((0, 5)))
        no_events = (np.empty((0, 3), np.int64), np.empty((0, 3)))
        risk_state = new_risk_state_nb(1, params[P_INITIAL_CASH])
        target = np.empty((n, 1))
        for i in range(n):
            target[i, 0] = targets[i, c]
        column_totals, _ = run_nb(
            prices,
            target,
            params,
            equity[c],
            per_bar,
            positions_out,
            no_fills,
            risk,
            risk_state,
            no_events,
        )
        totals[c] = column_totals
        n_events[c] = risk_state[1][G_EVENTS]
    return equity, totals, n_events
