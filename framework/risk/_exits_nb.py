"""Jitted exit and loss rules of the risk layer (numpy + numba only; slow twin in
``reference.py``): stops, take-profit and time stop on one bar, the round-trip bookkeeping
of fills, and the breakers and daily loss limit checked at each close.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from framework.risk._layout import (
    BREAKER_ACTIVE,
    BREAKER_HALTED,
    G_BREAKER,
    G_BREAKER_UNTIL,
    G_CONSECUTIVE,
    G_LAST_EQUITY,
    G_LOCK_SESSION,
    G_LOSSES,
    G_PEAK,
    G_SESSION,
    G_SESSION_EQUITY,
    G_SUM_LOSS,
    G_SUM_WIN,
    G_WINS,
    R_ATR_MULT,
    R_COOLDOWN,
    R_DAILY_FLATTEN,
    R_DAILY_LOSS,
    R_DRAWDOWN_ACTION,
    R_LOSSES_ACTION,
    R_MAX_DRAWDOWN,
    R_MAX_LOSSES,
    R_STOP_KIND,
    R_STOP_PCT,
    R_TAKE_PROFIT,
    R_TIME_STOP,
    REASON_ATR_STOP,
    REASON_BREAKER,
    REASON_DAILY_LOSS,
    REASON_STOP_LOSS,
    REASON_TAKE_PROFIT,
    REASON_TIME_STOP,
    REASON_TRAILING_STOP,
    RULE_ATR_STOP,
    RULE_BREAKER_RESUME,
    RULE_DAILY_LOSS,
    RULE_DRAWDOWN_BREAKER,
    RULE_LOSSES_BREAKER,
    RULE_STOP_LOSS,
    RULE_TAKE_PROFIT,
    RULE_TIME_STOP,
    RULE_TRAILING_STOP,
    S_ENTRY_ATR,
    S_ENTRY_BAR,
    S_ENTRY_PRICE,
    S_EXTREME,
    S_LAST_RAW,
    S_REASON,
    S_STOP_RAW,
    S_STOPPED,
    S_TRADE_CASH,
    STOP_ATR,
    STOP_FIXED,
    STOP_NONE,
    STOP_TRAILING,
)
from framework.risk._nb import record_event_nb


# ============================== stops ========================================================
@njit(cache=True)
def stop_level_nb(j, side, rp, astate):
    """``(stop price, reason, rule)`` of the open position in asset ``j``; NaN when none."""
    kind = int(rp[R_STOP_KIND])
    entry = astate[S_ENTRY_PRICE, j]
    if kind == STOP_FIXED:
        return entry * (1.0 - side * rp[R_STOP_PCT]), REASON_STOP_LOSS, RULE_STOP_LOSS
    if kind == STOP_TRAILING:
        level = astate[S_EXTREME, j] * (1.0 - side * rp[R_STOP_PCT])
        return level, REASON_TRAILING_STOP, RULE_TRAILING_STOP
    if kind == STOP_ATR:
        level = entry - side * rp[R_ATR_MULT] * astate[S_ENTRY_ATR, j]
        return level, REASON_ATR_STOP, RULE_ATR_STOP
    return np.nan, -1, -1


@njit(cache=True)
def stop_exit_nb(i, j, position, bar_prices, fill_close, rp, astate):
    """Whether the position in asset ``j`` exits on bar ``i``: ``(price, reason, rule)``,
    price NaN when it does not.

    ``bar_prices = (open, high, low, close)`` of the asset on bar ``i``. A position held into
    the bar that gaps through its stop (or take-profit) exits at the open; otherwise a touch of
    the level by the low (high for shorts) exits at the level. Stop before take-profit when a
    bar touches both (the conservative order). The time stop exits at the close. A position
    entered at this bar's close (``fill="close"``) is not checked on its entry bar.
    """
    open_, high, low, close = bar_prices
    entry_bar = astate[S_ENTRY_BAR, j]
    if fill_close and entry_bar >= i:
        return np.nan, -1, -1
    held_before = entry_bar < i
    side = 1.0 if position > 0.0 else -1.0
    worst = low if side > 0.0 else high
    best = high if side > 0.0 else low
    level, reason, rule = stop_level_nb(j, side, rp, astate)
    if np.isfinite(level):
        if held_before and side * (open_ - level) <= 0.0:
            return open_, reason, rule
        if side * (worst - level) <= 0.0:
            return level, reason, rule
    tp = rp[R_TAKE_PROFIT]
    if not np.isnan(tp):
        level = astate[S_ENTRY_PRICE, j] * (1.0 + side * tp)
        if held_before and side * (open_ - level) >= 0.0:
            return open_, REASON_TAKE_PROFIT, RULE_TAKE_PROFIT
        if side * (best - level) >= 0.0:
            return level, REASON_TAKE_PROFIT, RULE_TAKE_PROFIT
    limit = rp[R_TIME_STOP]
    if not np.isnan(limit) and i - entry_bar >= limit and np.isfinite(close):
        return close, REASON_TIME_STOP, RULE_TIME_STOP
    return np.nan, -1, -1


@njit(cache=True, inline="always")
def stops_active_nb(rp):
    """True when some exit rule (stop, take-profit, time stop) is on."""
    return (
        int(rp[R_STOP_KIND]) != STOP_NONE
        or not np.isnan(rp[R_TAKE_PROFIT])
        or not np.isnan(rp[R_TIME_STOP])
    )


@njit(cache=True)
def rules_present_nb(table):
    """``(exit rules, close checks)``: whether any row of the risk table has a stop,
    take-profit or time stop, and a breaker or daily loss limit (else the engine skips them)."""
    stops = False
    checks = False
    for r in range(table.shape[0]):
        rp = table[r]
        stops = stops or stops_active_nb(rp)
        checks = checks or not (
            np.isnan(rp[R_MAX_DRAWDOWN])
            and np.isnan(rp[R_MAX_LOSSES])
            and np.isnan(rp[R_DAILY_LOSS])
        )
    return stops, checks


@njit(cache=True, inline="always")
def update_extremes_nb(i, high, low, positions, fill_close, astate):
    """Raise the trailing reference of long positions to the bar's high (shorts: the low).

    Done after the bar's stop check: the high's time within the bar is unknown, so it only
    moves the stop from the next bar on (vectorbt instead updates it before checking the low).
    """
    for j in range(positions.shape[0]):
        if positions[j] == 0.0 or (fill_close and astate[S_ENTRY_BAR, j] >= i):
            continue
        if positions[j] > 0.0:
            if high[i, j] > astate[S_EXTREME, j]:
                astate[S_EXTREME, j] = high[i, j]
        elif low[i, j] < astate[S_EXTREME, j]:
            astate[S_EXTREME, j] = low[i, j]


# ============================== fills bookkeeping ============================================
@njit(cache=True)
def track_fill_nb(j, old, new, fill_price, fee, bar, atr_value, astate, gstate):
    """Update the entry price, trailing reference and round-trip P&L of asset ``j`` after a
    fill moved its position from ``old`` to ``new`` shares. A round trip closes when the
    position returns to zero or flips; its P&L feeds the consecutive-loss count and the
    Kelly statistics."""
    flow = -(new - old) * fill_price - fee
    if old == 0.0:
        _open_nb(j, new, fill_price, bar, atr_value, flow, astate)
        return
    if new == 0.0 or new * old < 0.0:
        realized = astate[S_TRADE_CASH, j] + flow + new * fill_price
        if realized < 0.0:
            gstate[G_LOSSES] += 1.0
            gstate[G_SUM_LOSS] -= realized
            gstate[G_CONSECUTIVE] += 1.0
        else:
            gstate[G_WINS] += 1.0
            gstate[G_SUM_WIN] += realized
            gstate[G_CONSECUTIVE] = 0.0
        if new == 0.0:
            astate[S_ENTRY_PRICE, j] = np.nan
            astate[S_TRADE_CASH, j] = 0.0
        else:
            _open_nb(j, new, fill_price, bar, atr_value, -new * fill_price, astate)
        return
    if abs(new) > abs(old):
        added = abs(new) - abs(old)
        astate[S_ENTRY_PRICE, j] = (astate[S_ENTRY_PRICE, j] * abs(old) + fill_price * added) / abs(
            new
        )
    astate[S_TRADE_CASH, j] += flow


@njit(cache=True)
def _open_nb(j, new, fill_price, bar, atr_value, cash, astate):
    astate[S_ENTRY_PRICE, j] = fill_price
    astate[S_ENTRY_BAR, j] = bar
    astate[S_EXTREME, j] = fill_price
    astate[S_ENTRY_ATR, j] = atr_value
    astate[S_TRADE_CASH, j] = cash


# ============================== close checks =================================================
@njit(cache=True, inline="always")
def close_checks_nb(i, equity, session, rp, gstate, events):
    """Breakers and the daily loss limit at the close of bar ``i``.

    Returns the exit reason of a requested flatten (``REASON_BREAKER`` /
    ``REASON_DAILY_LOSS``) or -1. A tripped breaker resumes after ``cooldown`` bars with its
    peak reset to the current equity and the loss count cleared.
    """
    if session != gstate[G_SESSION]:
        gstate[G_SESSION] = session
        gstate[G_SESSION_EQUITY] = gstate[G_LAST_EQUITY]
    gstate[G_LAST_EQUITY] = equity
    if equity > gstate[G_PEAK]:
        gstate[G_PEAK] = equity
    flatten = -1
    state = gstate[G_BREAKER]
    if state != BREAKER_ACTIVE and i >= gstate[G_BREAKER_UNTIL]:
        resume_nb(i, equity, gstate, events)
    elif state == BREAKER_ACTIVE:
        drawdown = 1.0 - equity / gstate[G_PEAK]
        new_state = BREAKER_ACTIVE
        if drawdown > rp[R_MAX_DRAWDOWN]:
            new_state = int(rp[R_DRAWDOWN_ACTION])
            record_event_nb(
                events, gstate, i, -1, RULE_DRAWDOWN_BREAKER, state, new_state, drawdown
            )
        elif gstate[G_CONSECUTIVE] >= rp[R_MAX_LOSSES]:
            new_state = int(rp[R_LOSSES_ACTION])
            record_event_nb(
                events, gstate, i, -1, RULE_LOSSES_BREAKER, state, new_state, gstate[G_CONSECUTIVE]
            )
        if new_state != BREAKER_ACTIVE:
            gstate[G_BREAKER] = new_state
            gstate[G_BREAKER_UNTIL] = i + rp[R_COOLDOWN]
            if new_state == BREAKER_HALTED:
                flatten = REASON_BREAKER
    limit = rp[R_DAILY_LOSS]
    start = gstate[G_SESSION_EQUITY]
    if not np.isnan(limit) and gstate[G_LOCK_SESSION] != session and equity < start * (1.0 - limit):
        gstate[G_LOCK_SESSION] = session
        record_event_nb(events, gstate, i, -1, RULE_DAILY_LOSS, start, equity, 1.0 - equity / start)
        if rp[R_DAILY_FLATTEN] != 0.0 and flatten < 0:
            flatten = REASON_DAILY_LOSS
    return flatten


@njit(cache=True)
def resume_nb(i, equity, gstate, events):
    """Back to ACTIVE: peak reset to ``equity``, consecutive losses cleared (live: manual)."""
    record_event_nb(
        events, gstate, i, -1, RULE_BREAKER_RESUME, gstate[G_BREAKER], BREAKER_ACTIVE, 0.0
    )
    gstate[G_BREAKER] = BREAKER_ACTIVE
    gstate[G_PEAK] = equity
    gstate[G_CONSECUTIVE] = 0.0


@njit(cache=True)
def flatten_nb(reason, positions, pending, remaining, astate):
    """Ask for every open position to close at the next fill, marked with ``reason``; the
    assets then stay flat until their targets change (as after a stop). Returns the count."""
    count = 0
    for j in range(positions.shape[0]):
        if positions[j] == 0.0 and remaining[j] == 0.0:
            continue
        pending[j] = 0.0
        remaining[j] = 0.0
        astate[S_REASON, j] = reason
        astate[S_STOPPED, j] = 1.0
        astate[S_STOP_RAW, j] = astate[S_LAST_RAW, j]
        count += 1
    return count


@njit(cache=True)
def mark_stopped_nb(j, reason, astate):
    """Remember that asset ``j`` was exited by a risk rule (re-entry waits for a new target)."""
    astate[S_STOPPED, j] = 1.0
    astate[S_STOP_RAW, j] = astate[S_LAST_RAW, j]
    astate[S_REASON, j] = reason
