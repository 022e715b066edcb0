"""The jitted simulation pass (numpy + numba only; see ``reference.py`` for the slow twin).

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
those of the engine without a risk layer. Steps 1-5 are the order stages of ``_orders_nb.py``;
this module strings them together, adds the stops and runs parameter grids
(:func:`run_grid_nb`). Parameters travel in one float64 vector indexed by the ``P_*``
constants of ``_layout.py``, built by ``core.py``; cost totals come back in a vector indexed by
the ``T_*`` constants.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from framework.engine._fills_nb import (
    apply_fill_nb,
    book_fill_nb,
    price_fill_nb,
    return_volatility_nb,
)
from framework.engine._layout import (
    A_CASH,
    N_DETAIL,
    N_FILL_INT,
    N_TOTALS,
    P_ALLOW_SHORT,
    P_EVERY_BAR,
    P_FILL_CLOSE,
    P_IMPACT_COEF,
    P_IMPACT_WINDOW,
    P_INITIAL_CASH,
    T_BARS_IN_MARKET,
)
from framework.engine._orders_nb import (
    has_work_nb,
    mark_to_close_nb,
    receive_targets_nb,
    trade_bar_nb,
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
    G_QUIET,
    R_ENABLED,
    R_SIZING,
    RULE_TIME_STOP,
    S_ENTRY_BAR,
    SIZING_FIXED,
)
from framework.risk._nb import (
    N_STAGES,
    new_risk_state_nb,
    receive_risk_nb,
    record_event_nb,
    skip_decision_nb,
)

# columns per block of a grid: each block's targets are copied row by row, so a C-ordered
# (n, k) array is read a cache line at a time instead of one strided element per bar
GRID_BLOCK = 32


# ============================== the pass =====================================================
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
    Most bars of a parameter grid are quiet: no target changes, nothing pending, no exit rule
    can fire. :func:`run_nb` recognizes them with a few scalar reads, and only the other
    bars pay for the decision and order machinery (:func:`busy_bar_nb`), so a quiet bar costs
    little more than its mark to the close. Arrays are allocated once and never rebound
    inside the bar loop (a rebound array costs reference counting on every bar).
    """
    open_, close, volume = prices
    n, m = close.shape
    record = fills[0].shape[0] > 0
    fill_close = params[P_FILL_CLOSE] != 0.0
    every = params[P_EVERY_BAR] != 0.0
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
    state = (positions, marks, account, params, totals, fills[0], fills[1], pending, remaining)
    table, regime_row, gstate = risk[0], risk[1], risk_state[1]
    risk_on = table[0, R_ENABLED] != 0.0
    stops_any, checks_any = rules_present_nb(table)
    scratch = (last_target, np.empty((N_STAGES + 1, m if risk_on else 0)))
    changed = row_changes_nb(target)
    busy = False  # some target is pending or some order is unfilled
    holding = False  # some position is open
    for i in range(n):
        source = i if fill_close else i - 1
        # a quiet bar: nothing pending, the decision stage would accept nothing (see
        # row_changes_nb, skip_decision_nb) and no exit rule can fire. Checked with plain
        # reads: a helper call per bar with branches costs reference counting on its arrays
        quiet = not busy and (source < 0 or not (every or changed[source]))
        if quiet and risk_on and source >= 0:
            quiet = (
                gstate[G_QUIET] != 0.0
                and regime_row[source] == regime_row[source - 1]
                and table[regime_row[source], R_SIZING] <= SIZING_FIXED
            )
        if quiet and risk_on:
            quiet = gstate[G_FLATTEN] == 0.0 and not (stops_any and holding)
        traded = 0.0
        if not quiet:
            traded, busy = busy_bar_nb(
                i, source, prices, target, book, state, busy, scratch, risk, risk_state, events
            )
            holding = has_position_nb(positions)
        equity_close, gross = mark_to_close_nb(close, i, marks, positions, account[A_CASH])
        equity[i] = equity_close
        if risk_on and ((stops_any and gross > 0.0) or checks_any or gstate[G_BREAKER] != 0.0):
            flags = (fill_close, stops_any, checks_any)
            close_risk_nb(i, equity_close, gross, positions, flags, risk, risk_state, events)
        if gross > 0.0:
            totals[T_BARS_IN_MARKET] += 1.0
        if record:
            per_bar[0, i] = account[A_CASH]
            per_bar[1, i] = gross
            per_bar[2, i] = traded
            positions_out[i] = positions
    return totals, marks


@njit(cache=True)
def row_changes_nb(target):
    """``changed[s]``: row ``s`` of ``target`` differs from row ``s - 1`` (NaN equals NaN;
    row 0 always counts as changed).

    A bar whose decision row repeats the previous one accepts nothing new (the previous row
    already set every non-NaN ``last_target``), so :func:`run_nb` can skip its decision stage
    when nothing is pending (risk on: only when ``skip_decision_nb``'s other conditions hold).
    """
    n, m = target.shape
    changed = np.zeros(n, np.bool_)
    if n > 0:
        changed[0] = True
    for s in range(1, n):
        for j in range(m):
            now, before = target[s, j], target[s - 1, j]
            if now != before and not (np.isnan(now) and np.isnan(before)):
                changed[s] = True
                break
    return changed


@njit(cache=True)
def has_position_nb(positions):
    """True when some position is open."""
    for j in range(positions.shape[0]):  # noqa: SIM110 (numba: no any() over a generator)
        if positions[j] != 0.0:
            return True
    return False


@njit(cache=True)
def busy_bar_nb(i, source, prices, target, book, state, busy, scratch, risk, risk_state, events):
    """The decision and order stages of bar ``i``: receive row ``source``, then trade (risk
    off) or the risk bar (flatten, orders through the hook, stops). Returns ``(traded value,
    busy)``; ``scratch = (last_target, stages)``."""
    open_, close, volume = prices
    params, pending, remaining = state[3], state[7], state[8]
    table = risk[0]
    risk_on = table[0, R_ENABLED] != 0.0
    astate, gstate = risk_state
    every = params[P_EVERY_BAR] != 0.0
    if source >= 0 and not (
        risk_on and skip_decision_nb(target, source, risk[1], table, gstate, every)
    ):
        if risk_on:
            accepted = receive_with_risk_nb(
                target, source, close, state, risk, risk_state, scratch, events
            )
        else:
            accepted = receive_targets_nb(target, source, params, scratch[0], pending, remaining)
        if accepted:
            busy = True  # some target was accepted
    if not risk_on:
        if not busy:
            return 0.0, busy
        # the risk tuple trade_bar_nb receives when the layer is off (never read past [0]; a
        # placeholder row instead of a fresh empty array: no allocation per traded bar)
        off_hook = (False, table[0], astate, gstate, events, False, scratch[0])
        traded = trade_bar_nb(i, open_, close, volume, book, state, off_hook)
        return traded, has_work_nb(pending, remaining)
    fill_close = params[P_FILL_CLOSE] != 0.0
    # quiet bars (nothing to fill, nothing held or no exit rule) skip the risk work
    due = rules_present_nb(table)[0] and exit_due_nb(
        i,
        open_,
        risk[4],
        risk[5],
        close,
        state[0],
        table,
        risk[1][max(source, 0)],
        astate,
        fill_close,
    )
    if busy or gstate[G_FLATTEN] != 0.0 or due:
        return risk_bar_nb(i, source, prices, book, state, busy, risk, risk_state, events)
    return 0.0, busy


@njit(cache=True)
def close_risk_nb(i, equity_close, gross, positions, flags, risk, risk_state, events):
    """Risk work at the close of bar ``i``: trailing references, breakers, daily loss limit.
    ``flags = (fill_close, stops_any, checks_any)``."""
    fill_close, stops_any, checks_any = flags
    astate, gstate = risk_state
    if stops_any and gross > 0.0:
        update_extremes_nb(i, risk[4], risk[5], positions, fill_close, astate)
    if checks_any or gstate[G_BREAKER] != 0.0:
        rp = risk[0][risk[1][i]]
        reason = close_checks_nb(i, equity_close, risk[2][i], rp, gstate, events)
        if reason >= 0:
            gstate[G_FLATTEN] = reason


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
        fill = (side * shares, fill_price, fee, slip_cost, impact_cost, skipped)
        traded += book_fill_nb(totals, (fills_int, fills_float), i, j, fill, reason)
    return traded


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


@njit(cache=True, inline="always")
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
    The columns run in blocks of ``GRID_BLOCK``: a block first copies its columns row by row
    into contiguous buffers (numpy's transpose of a large grid costs as much as simulating it,
    a column read one strided element per bar misses the cache on every bar, and a strided
    view slows every bar). Returns ``equity (k, n)``, ``totals (k, N_TOTALS)`` and the risk
    event count per column.
    """
    n, k = targets.shape
    equity = np.empty((k, n))
    totals = np.empty((k, N_TOTALS))
    n_events = np.zeros(k)
    n_blocks = (k + GRID_BLOCK - 1) // GRID_BLOCK
    for b in prange(n_blocks):
        first = b * GRID_BLOCK
        width = min(GRID_BLOCK, k - first)
        block = np.empty((width, n))
        for i in range(n):
            for w in range(width):
                block[w, i] = targets[i, first + w]
        # block-local copies of the shared inputs: every helper call counts references on its
        # arrays, and two threads counting on the same array fight over its cache line
        local_prices = (prices[0].copy(), prices[1].copy(), prices[2].copy())
        local_params = params.copy()
        local_risk = copy_risk_nb(risk)
        for w in range(width):
            c = first + w
            totals[c], n_events[c] = run_column_nb(
                local_prices, block[w], local_params, equity[c], local_risk
            )
    return equity, totals, n_events


@njit(cache=True)
def copy_risk_nb(risk):
    """A copy of the risk inputs tuple (see :func:`run_nb`)."""
    return (
        risk[0].copy(),
        risk[1].copy(),
        risk[2].copy(),
        risk[3].copy(),
        risk[4].copy(),
        risk[5].copy(),
        risk[6].copy(),
        risk[7].copy(),
    )


@njit(cache=True)
def run_column_nb(prices, column, params, equity, risk):
    """One grid portfolio: ``column`` (n,) contiguous targets, ``equity`` (n,) written.
    Returns its totals and risk event count."""
    n = column.shape[0]
    per_bar = np.empty((3, 1))
    positions_out = np.empty((1, 1))
    no_fills = (np.empty((0, N_FILL_INT), np.int64), np.empty((0, 5)))
    no_events = (np.empty((0, 3), np.int64), np.empty((0, 3)))
    risk_state = new_risk_state_nb(1, params[P_INITIAL_CASH])
    target = column.reshape((n, 1))
    column_totals, _ = run_nb(
        prices,
        target,
        params,
        equity,
        per_bar,
        positions_out,
        no_fills,
        risk,
        risk_state,
        no_events,
    )
    return column_totals, risk_state[1][G_EVENTS]
