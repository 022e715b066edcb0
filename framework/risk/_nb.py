"""Jitted risk rules (numpy + numba only; slow twin in ``reference.py``).

Each rule is a small function over explicit state arrays, so the engine's bar loop and the live
runner call the same compiled code:

- decision time (a target row becomes pending targets): sizing, exposure caps, rebalancing
  filters, re-entry block after a stop, breaker/halt gating (:func:`receive_risk_nb`);
- order time (the engine's risk hook, sized orders before any fill): breaker and daily-loss
  "reductions only", minimum trade value, maximum trades per bar (:func:`filter_orders_nb`);
- intrabar (after the open fill): stops and take-profit on the bar's high/low, time stop at the
  close, and at the close: drawdown and consecutive-loss breakers, daily loss limit (both in
  ``_exits_nb.py``).

Parameters come from one row of the risk table (see ``_layout.py``); NaN switches a rule off.
The rules the engine runs on every traded bar are ``inline="always"``: a compiled call counts
references on each array argument, which dominated the cost of a traded bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.risk._layout import (
    BREAKER_ACTIVE,
    BREAKER_HALTED,
    E_AFTER,
    E_ASSET,
    E_BAR,
    E_BEFORE,
    E_DETAIL,
    E_RULE,
    G_BREAKER,
    G_EVENTS,
    G_LAST_EQUITY,
    G_LOCK_SESSION,
    G_LOSSES,
    G_PEAK,
    G_QUIET,
    G_SESSION,
    G_SESSION_EQUITY,
    G_SUM_LOSS,
    G_SUM_WIN,
    G_WINS,
    N_ASSET_STATE,
    N_GLOBAL_STATE,
    R_ATR_RISK_MULT,
    R_CALENDAR,
    R_CASH_BUFFER,
    R_DRIFT,
    R_KELLY_MIN_TRADES,
    R_KELLY_PAYOFF,
    R_KELLY_WIN_RATE,
    R_MAX_GROSS,
    R_MAX_GROUP,
    R_MAX_NET,
    R_MAX_POSITION,
    R_MAX_POSITIONS,
    R_MAX_TRADES,
    R_MIN_TRADE_VALUE,
    R_PERIODS_PER_YEAR,
    R_RISK_PER_TRADE,
    R_SIZING,
    R_SIZING_CAP,
    R_SIZING_FRACTION,
    R_TARGET_VOL,
    R_VOL_WINDOW,
    RULE_BREAKER_BLOCK,
    RULE_CALENDAR,
    RULE_DAILY_BLOCK,
    RULE_DRIFT,
    RULE_MAX_TRADES,
    RULE_MIN_TRADE,
    RULE_SIZING,
    S_ENTRY_PRICE,
    S_LAST_RAW,
    S_REASON,
    S_STOP_RAW,
    S_STOPPED,
    SIZING_ATR,
    SIZING_FIXED,
    SIZING_KELLY,
    SIZING_NONE,
    SIZING_VOL,
)

# stage rows of the decision scratch array: which rule produced each intermediate weight
N_STAGES = 7  # effective, sized, position cap, group cap, count cap, net cap, gross cap


# ============================== state =======================================================
@njit(cache=True)
def new_risk_state_nb(m, initial_equity):
    """Fresh ``(astate, gstate)`` for ``m`` assets (see ``framework.risk.state``)."""
    astate = np.zeros((N_ASSET_STATE, m))
    astate[S_ENTRY_PRICE] = np.nan
    astate[S_LAST_RAW] = np.nan
    astate[S_STOP_RAW] = np.nan
    gstate = np.zeros(N_GLOBAL_STATE)
    gstate[G_PEAK] = initial_equity
    gstate[G_LAST_EQUITY] = initial_equity
    gstate[G_SESSION] = -1.0
    gstate[G_SESSION_EQUITY] = initial_equity
    gstate[G_LOCK_SESSION] = -1.0
    return astate, gstate


# ============================== events =======================================================
@njit(cache=True)
def record_event_nb(events, gstate, bar, asset, rule, before, after, detail):
    """Count one event and write it while the buffers have room (the caller re-runs if not)."""
    ev_int, ev_float = events
    row = int(gstate[G_EVENTS])
    gstate[G_EVENTS] += 1.0
    if row >= ev_int.shape[0]:
        return
    ev_int[row, E_BAR] = bar
    ev_int[row, E_ASSET] = asset
    ev_int[row, E_RULE] = rule
    ev_float[row, E_BEFORE] = before
    ev_float[row, E_AFTER] = after
    ev_float[row, E_DETAIL] = detail


# ============================== sizing =======================================================
@njit(cache=True)
def realized_volatility_nb(close, source, j, window, periods_per_year):
    """Annualized sample std of close-to-close returns over the ``window`` returns ending at
    bar ``source`` (causal: closes <= ``source`` only); NaN with fewer than two."""
    count = 0
    total = 0.0
    for k in range(max(1, source - window + 1), source + 1):
        prev, now = close[k - 1, j], close[k, j]
        if np.isfinite(prev) and np.isfinite(now):
            total += now / prev - 1.0
            count += 1
    if count < 2:
        return np.nan
    mean = total / count
    squares = 0.0
    for k in range(max(1, source - window + 1), source + 1):
        prev, now = close[k - 1, j], close[k, j]
        if np.isfinite(prev) and np.isfinite(now):
            dev = (now / prev - 1.0) - mean
            squares += dev * dev
    return np.sqrt(squares / (count - 1)) * np.sqrt(periods_per_year)


@njit(cache=True)
def kelly_fraction_nb(rp, gstate):
    """Kelly fraction ``p - (1 - p) / b`` from the declared edge or the closed-trade record;
    NaN until ``kelly_min_trades`` trades have closed (rolling case)."""
    p = rp[R_KELLY_WIN_RATE]
    b = rp[R_KELLY_PAYOFF]
    if np.isnan(p) or np.isnan(b):
        wins, losses = gstate[G_WINS], gstate[G_LOSSES]
        if wins + losses < rp[R_KELLY_MIN_TRADES] or wins == 0.0 or losses == 0.0:
            return np.nan
        p = wins / (wins + losses)
        b = (gstate[G_SUM_WIN] / wins) / (gstate[G_SUM_LOSS] / losses)
    return max(p - (1.0 - p) / b, 0.0)


@njit(cache=True)
def size_weight_nb(weight, source, j, close, atr, rp, gstate):
    """The sizing rule applied to one target weight (0 stays 0; the sign is kept)."""
    kind = int(rp[R_SIZING])
    if kind == SIZING_NONE or weight == 0.0:
        return weight
    side = 1.0 if weight > 0.0 else -1.0
    cap = rp[R_SIZING_CAP]
    if kind == SIZING_FIXED:
        return weight * rp[R_SIZING_FRACTION]
    if kind == SIZING_VOL:
        vol = realized_volatility_nb(
            close, source, j, int(rp[R_VOL_WINDOW]), rp[R_PERIODS_PER_YEAR]
        )
        if not vol > 0.0:
            return 0.0  # no volatility history yet: no position
        return side * min(cap, rp[R_TARGET_VOL] / vol)
    if kind == SIZING_KELLY:
        f = kelly_fraction_nb(rp, gstate)
        if np.isnan(f):
            return weight  # not enough closed trades yet: the strategy's own weight
        return side * min(cap, abs(weight) * rp[R_SIZING_FRACTION] * f)
    if kind == SIZING_ATR:
        a = atr[source, j]
        price = close[source, j]
        if not (a > 0.0 and price > 0.0):
            return 0.0
        return side * min(cap, rp[R_RISK_PER_TRADE] * price / (rp[R_ATR_RISK_MULT] * a))
    return weight


# ============================== exposure caps ================================================
@njit(cache=True)
def cap_position_nb(w, limit):
    """Clip every weight to ``[-limit, limit]``."""
    if np.isnan(limit):
        return
    for j in range(w.shape[0]):
        if w[j] > limit:
            w[j] = limit
        elif w[j] < -limit:
            w[j] = -limit


@njit(cache=True)
def cap_groups_nb(w, groups, limit):
    """Scale the weights of every group whose gross exceeds ``limit`` (group -1: no group)."""
    if np.isnan(limit) or groups.shape[0] == 0:
        return
    n_groups = 0
    for j in range(groups.shape[0]):
        n_groups = max(n_groups, groups[j] + 1)
    for g in range(n_groups):
        gross = 0.0
        for j in range(w.shape[0]):
            if groups[j] == g:
                gross += abs(w[j])
        if gross > limit:
            scale = limit / gross
            for j in range(w.shape[0]):
                if groups[j] == g:
                    w[j] *= scale


@njit(cache=True)
def cap_count_nb(w, limit):
    """Keep the ``limit`` largest |weights| (ties: lower asset index first); zero the rest."""
    if np.isnan(limit):
        return
    keep = int(limit)
    order = np.argsort(-np.abs(w), kind="mergesort")
    for r in range(keep, w.shape[0]):
        w[order[r]] = 0.0


@njit(cache=True)
def cap_net_nb(w, limit):
    """Scale the side that makes ``|sum(w)|`` exceed ``limit`` so the net equals the limit."""
    if np.isnan(limit):
        return
    longs = 0.0
    shorts = 0.0
    for j in range(w.shape[0]):
        if w[j] > 0.0:
            longs += w[j]
        else:
            shorts -= w[j]
    net = longs - shorts
    if net > limit:
        scale = (limit + shorts) / longs
        for j in range(w.shape[0]):
            if w[j] > 0.0:
                w[j] *= scale
    elif -net > limit:
        scale = (limit + longs) / shorts
        for j in range(w.shape[0]):
            if w[j] < 0.0:
                w[j] *= scale


@njit(cache=True)
def gross_limit_nb(rp):
    """The tighter of ``max_gross`` and ``1 - cash_buffer`` (NaN: no limit)."""
    limit = rp[R_MAX_GROSS]
    buffer = rp[R_CASH_BUFFER]
    if buffer > 0.0 and (np.isnan(limit) or 1.0 - buffer < limit):
        limit = 1.0 - buffer
    return limit


@njit(cache=True)
def cap_gross_nb(w, limit):
    """Scale all weights so ``sum(|w|) <= limit``."""
    if np.isnan(limit):
        return
    gross = 0.0
    for j in range(w.shape[0]):
        gross += abs(w[j])
    if gross > limit:
        scale = limit / gross
        for j in range(w.shape[0]):
            w[j] *= scale


@njit(cache=True, inline="always")
def decide_row_nb(row, held, source, close, atr, groups, rp, gstate, stages):
    """Sizing then caps for one target row; ``stages[k]`` keeps each rule's output.

    ``row`` are the raw targets (NaN = no opinion: the ``held`` target counts in the caps), the
    final weights are ``stages[N_STAGES - 1]``. The caps run from the narrowest to the widest,
    so a later cap never undoes an earlier one (they only scale weights down).
    """
    m = row.shape[0]
    for j in range(m):
        raw = row[j]
        stages[0, j] = held[j] if np.isnan(raw) else raw
        if np.isnan(stages[0, j]):
            stages[0, j] = 0.0
        stages[1, j] = stages[0, j]
        if not np.isnan(raw):
            stages[1, j] = size_weight_nb(raw, source, j, close, atr, rp, gstate)
    stages[2] = stages[1]
    cap_position_nb(stages[2], rp[R_MAX_POSITION])
    stages[3] = stages[2]
    cap_groups_nb(stages[3], groups, rp[R_MAX_GROUP])
    stages[4] = stages[3]
    cap_count_nb(stages[4], rp[R_MAX_POSITIONS])
    stages[5] = stages[4]
    cap_net_nb(stages[5], rp[R_MAX_NET])
    stages[6] = stages[5]
    cap_gross_nb(stages[6], gross_limit_nb(rp))


@njit(cache=True)
def rebalance_allowed_nb(weight, current, period_start, rp):
    """Rebalancing trigger: exits always pass; otherwise the first bar of a calendar period
    and/or a drift of the current weight from the target beyond the threshold."""
    calendar = rp[R_CALENDAR] != 0.0
    drift = rp[R_DRIFT]
    if weight == 0.0 or (not calendar and np.isnan(drift)):
        return True
    if calendar and period_start:
        return True
    return not np.isnan(drift) and abs(current - weight) > drift


@njit(cache=True, inline="always")
def receive_risk_nb(target, source, ctx, flags, book, risk_state, events):
    """Decision-time rules for target row ``source``: the risk twin of the engine's
    ``receive_targets_nb``. Returns how many targets were accepted.

    ``ctx = (close, atr, groups, rp, period_start)``; ``flags = (every_bar, allow_short,
    equity)``; ``book = (last_target, pending, remaining, positions, marks, stages)``;
    ``risk_state = (astate, gstate)``.
    """
    close, atr, groups, rp, period_start = ctx
    every_bar, allow_short, equity = flags
    last_target, pending, remaining, positions, marks, stages = book
    astate, gstate = risk_state
    gstate[G_QUIET] = 0.0
    if gstate[G_BREAKER] == BREAKER_HALTED:
        return 0  # halted: everything flat, targets ignored until the breaker resumes
    m = target.shape[1]
    row = stages[N_STAGES]  # scratch row for the raw targets
    for j in range(m):
        raw = target[source, j]
        if not allow_short and raw < 0.0:
            raw = 0.0
        row[j] = raw
    decide_row_nb(row, last_target, source, close, atr, groups, rp, gstate, stages)
    received = 0
    held_back = 0
    for j in range(m):
        raw = row[j]
        weight = stages[N_STAGES - 1, j]
        if np.isnan(raw) and weight == stages[0, j]:
            continue  # no opinion and no cap binding: keep holding
        changed_raw = not np.isnan(raw) and raw != astate[S_LAST_RAW, j]
        if not np.isnan(raw):
            astate[S_LAST_RAW, j] = raw
        force = False
        if astate[S_STOPPED, j] != 0.0:
            if np.isnan(raw) or raw == astate[S_STOP_RAW, j]:
                continue  # exited by a risk rule: stay flat until the strategy changes its mind
            astate[S_STOPPED, j] = 0.0
            force = True  # the position is flat whatever the last target was
        if not (every_bar or force or weight != last_target[j]):
            continue
        current = 0.0
        if positions[j] != 0.0 and equity > 0.0:
            current = positions[j] * marks[j] / equity
        if not rebalance_allowed_nb(weight, current, period_start[source] != 0, rp):
            held_back += 1
            if changed_raw:
                rule = RULE_CALENDAR if np.isnan(rp[R_DRIFT]) else RULE_DRIFT
                record_event_nb(
                    events, gstate, source, j, rule, last_target[j], weight, abs(current - weight)
                )
            continue
        for k in range(1, N_STAGES):
            if stages[k, j] != stages[k - 1, j]:
                record_event_nb(
                    events,
                    gstate,
                    source,
                    j,
                    RULE_SIZING + k - 1,
                    stages[k - 1, j],
                    stages[k, j],
                    0.0,
                )
        pending[j] = weight
        remaining[j] = 0.0
        last_target[j] = weight
        astate[S_REASON, j] = 0.0
        received += 1
    if received == 0 and held_back == 0:
        gstate[G_QUIET] = 1.0
    return received


@njit(cache=True, inline="always")
def skip_decision_nb(target, source, regime_row, table, gstate, every_bar):
    """True when deciding on row ``source`` cannot change anything: the previous decision
    accepted and held back nothing, the raw row and the regime are those of the previous bar,
    the sizing does not move with the data (none / fixed fraction) and targets are not
    re-sized every bar. Saves the per-bar rule work of quiet stretches (parameter grids)."""
    if every_bar or source < 1 or gstate[G_QUIET] == 0.0:
        return False
    if regime_row[source] != regime_row[source - 1]:
        return False
    if table[regime_row[source], R_SIZING] > SIZING_FIXED:
        return False
    for j in range(target.shape[1]):
        now, before = target[source, j], target[source - 1, j]
        if now != before and not (np.isnan(now) and np.isnan(before)):
            return False
    return True


# ============================== order-time rules =============================================
@njit(cache=True)
def reduce_only_nb(order, position):
    """The part of ``order`` that only reduces ``|position|`` (never flips it)."""
    if position * order >= 0.0:
        return 0.0
    if abs(order) > abs(position):
        return -position
    return order


@njit(cache=True, inline="always")
def filter_orders_nb(bar, count, book, prices, equity, positions, rules, events):
    """The engine's risk hook: change or drop sized orders before any fill; returns the new
    count (``book = (assets, orders, values, detail)`` compacted in place).

    ``rules = (rp, gstate, astate, locked)``: reductions only while a breaker is tripped or
    the daily loss limit locks the session; then the minimum trade value (exits to zero pass);
    then the ``max_trades`` largest orders by value.
    """
    assets, orders, values, _ = book
    rp, gstate, astate, locked = rules
    tripped = gstate[G_BREAKER] != BREAKER_ACTIVE
    min_value = rp[R_MIN_TRADE_VALUE]
    kept = 0
    for s in range(count):
        j = assets[s]
        order = orders[s]
        if tripped or locked:
            cut = reduce_only_nb(order, positions[j])
            if cut != order:
                rule = RULE_BREAKER_BLOCK if tripped else RULE_DAILY_BLOCK
                record_event_nb(events, gstate, bar, j, rule, order, cut, 0.0)
                order = cut
        is_exit = positions[j] + order == 0.0
        if order != 0.0 and min_value > 0.0 and not is_exit and abs(order * prices[j]) < min_value:
            record_event_nb(
                events, gstate, bar, j, RULE_MIN_TRADE, order, 0.0, abs(order * prices[j])
            )
            order = 0.0
        if order == 0.0:
            continue
        assets[kept] = j
        orders[kept] = order
        values[kept] = order * prices[j]
        kept += 1
    limit = rp[R_MAX_TRADES]
    if np.isnan(limit) or kept <= int(limit):
        return kept
    order_by = np.argsort(-np.abs(values[:kept]), kind="mergesort")
    keep = np.zeros(kept, np.bool_)
    for r in range(int(limit)):
        keep[order_by[r]] = True
    out = 0
    for s in range(kept):
        if keep[s]:
            assets[out] = assets[s]
            orders[out] = orders[s]
            values[out] = values[s]
            out += 1
        else:
            record_event_nb(
                events, gstate, bar, assets[s], RULE_MAX_TRADES, orders[s], 0.0, abs(values[s])
            )
    return out
