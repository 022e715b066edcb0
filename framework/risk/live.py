"""The risk rules one bar at a time, for the live runner: the same compiled functions the
engine calls, wrapped as pure functions ``(state, inputs) -> (outputs, new state)``.

At each closed bar the runner calls :func:`decide_targets` with the strategy's target row (the
pending targets it returns are what to size into orders), passes the sized orders through
:func:`filter_orders` before submitting them (the engine's order-time risk hook), reports every
broker fill with :func:`record_fill`, checks the open positions with :func:`check_stops` on each
bar's prices, and calls :func:`close_checks` at the close. A tripped breaker resumes after its cool-down, or
at once through :func:`resume` (the manual switch of live trading).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.risk import _exits_nb as xnb
from framework.risk import _layout as L
from framework.risk import _nb as rnb
from framework.risk.events import EXIT_REASONS, RULE_NAMES
from framework.risk.state import RiskState

_EVENT_ROOM = 4096  # more events than one bar of a 4,000-asset universe can produce


@dataclass(frozen=True)
class Account:
    """What the rules need of the account: shares and last prices per asset, cash, and the
    last target accepted per asset (NaN: none yet)."""

    positions: np.ndarray
    marks: np.ndarray
    cash: float
    last_target: np.ndarray


class _Events:
    """Collect the events of one call in a fresh buffer; the state keeps its running count."""

    def __init__(self, state: RiskState) -> None:
        self.state = state
        self.saved = state.portfolio[L.G_EVENTS]
        state.portfolio[L.G_EVENTS] = 0.0
        self.buffer = (np.empty((_EVENT_ROOM, 3), np.int64), np.empty((_EVENT_ROOM, 3)))

    def done(self) -> list[tuple]:
        count = min(int(self.state.portfolio[L.G_EVENTS]), _EVENT_ROOM)
        self.state.portfolio[L.G_EVENTS] = self.saved + count
        ev_int, ev_float = self.buffer
        return [
            (
                int(ev_int[k, 0]),
                int(ev_int[k, 1]),
                RULE_NAMES[ev_int[k, 2]],
                float(ev_float[k, 0]),
                float(ev_float[k, 1]),
                float(ev_float[k, 2]),
            )
            for k in range(count)
        ]


def decide_targets(
    state: RiskState,
    inputs: tuple,
    close: np.ndarray,
    target_row,
    source: int,
    account: Account,
    every_bar: bool = False,
    allow_short: bool = True,
):
    """Apply the decision-time rules (sizing, caps, filters, re-entry block, halt) to the
    strategy's targets of bar ``source``.

    Parameters
    ----------
    state : RiskState
        Not modified.
    inputs : tuple
        ``framework.risk.inputs.risk_inputs(bars, spec, regime)`` over the bars so far.
    close : (>= source + 1, m) ndarray
        Closes so far (volatility sizing reads the window ending at ``source``).
    target_row : (m,) array_like
        The strategy's targets for bar ``source`` (NaN = no opinion).
    source : int
    account : Account
    every_bar, allow_short : bool
        As in ``EngineSpec`` (``rebalance="every_bar"``, shorting allowed).

    Returns
    -------
    pending : (m,) ndarray
        Target weight to move each asset to now (NaN: no order).
    last_target : (m,) ndarray
        The accepted targets, to pass back in the next ``Account``.
    events : list of ``(bar, asset, rule, before, after, detail)``
    state : RiskState
        The new state.
    """
    new = state.copy()
    table, regime_row, _, period_start, _, _, atr, groups = inputs
    row = np.asarray(target_row, np.float64)
    m = row.shape[0]
    target = np.full((source + 1, m), np.nan)
    target[source] = row
    positions = np.asarray(account.positions, np.float64)
    marks = np.asarray(account.marks, np.float64)
    equity = float(account.cash)
    for j in range(m):
        if positions[j] != 0.0:
            equity += positions[j] * marks[j]
    pending, remaining = np.full(m, np.nan), np.zeros(m)
    last = np.array(account.last_target, np.float64)
    stages = np.empty((rnb.N_STAGES + 1, m))
    ctx = (
        np.ascontiguousarray(close, np.float64),
        atr,
        groups,
        table[regime_row[source]],
        period_start,
    )
    book = (last, pending, remaining, positions.copy(), marks, stages)
    events = _Events(new)
    rnb.receive_risk_nb(
        target, source, ctx, (every_bar, allow_short, equity), book, new.as_tuple(), events.buffer
    )
    return pending, last, events.done(), new


def check_stops(
    state: RiskState, inputs: tuple, bar: int, positions, bar_prices, fill_close: bool = False
):
    """Which positions exit on bar ``bar``: ``[(asset, price, reason)]``, events, new state.

    ``bar_prices`` is ``(open, high, low, close)``, each ``(m,)``. The runner submits the
    exits and reports their fills with :func:`record_fill`; the assets then stay flat until
    their targets change.
    """
    new = state.copy()
    table, regime_row = inputs[0], inputs[1]
    rp = table[regime_row[bar - 1 if bar > 0 and not fill_close else bar]]
    exits = []
    events = _Events(new)
    astate, gstate = new.as_tuple()
    for j, position in enumerate(np.asarray(positions, np.float64)):
        if position == 0.0:
            continue
        prices = tuple(float(p[j]) for p in bar_prices)
        price, reason, rule = xnb.stop_exit_nb(bar, j, position, prices, fill_close, rp, astate)
        if not np.isfinite(price):
            continue
        xnb.mark_stopped_nb(j, reason, astate)
        rnb.record_event_nb(events.buffer, gstate, bar, j, rule, position, 0.0, price)
        exits.append((j, float(price), EXIT_REASONS[reason]))
    return exits, events.done(), new


def filter_orders(
    state: RiskState,
    inputs: tuple,
    bar: int,
    orders,
    positions,
    prices,
    fill_close: bool = False,
):
    """The engine's order-time rules on the orders sized for bar ``bar``: reductions only
    while a breaker is tripped or the daily loss limit locks the decision's session, then the
    minimum trade value, then the ``max_trades_per_rebalance`` largest orders.

    The engine applies them to the sized orders of every bar, after :func:`decide_targets`
    accepted the targets: an accepted target stays remembered (``last_target``) even when its
    order is cut here, so only a changed target trades again.

    Parameters
    ----------
    state : RiskState
        Not modified.
    inputs : tuple
        ``framework.risk.inputs.risk_inputs(bars, spec, regime)`` over the bars so far.
    bar : int
        The bar the orders fill on (decided at the close of ``bar - 1``, or of ``bar`` with
        ``fill_close``).
    orders, positions, prices : (m,) array_like
        Shares to trade per asset (0 or NaN: none), the shares held before the fills and the
        fill prices (NaN: the asset does not trade on this bar, its order is left out).
    fill_close : bool
        As in ``EngineSpec`` (``fill="close"``).

    Returns
    -------
    orders : (m,) ndarray
        The shares to trade (0: dropped or cut to nothing).
    events : list of ``(bar, asset, rule, before, after, detail)``
    state : RiskState
        The new state (event count).
    """
    new = state.copy()
    table, regime_row, session = inputs[0], inputs[1], inputs[2]
    source = bar if fill_close else bar - 1
    decision = max(source, 0)
    sized = np.asarray(orders, np.float64)
    price = np.ascontiguousarray(prices, np.float64)
    held = np.ascontiguousarray(positions, np.float64)
    # the engine's order list: assets in ascending order (its max-trades tie-break keeps it)
    assets = np.array(
        [j for j in range(sized.shape[0]) if sized[j] != 0.0 and np.isfinite(sized[j])
         and np.isfinite(price[j])],
        np.int64,
    )
    count = assets.shape[0]
    book = (assets, sized[assets].copy(), sized[assets] * price[assets], np.empty((1, count)))
    astate, gstate = new.as_tuple()
    locked = source >= 0 and gstate[L.G_LOCK_SESSION] == session[decision]
    rules = (table[regime_row[decision]], gstate, astate, bool(locked))
    events = _Events(new)
    kept = rnb.filter_orders_nb(bar, count, book, price, 0.0, held, rules, events.buffer)
    out = np.zeros(sized.shape[0])
    out[book[0][:kept]] = book[1][:kept]
    return out, events.done(), new


def stop_levels(state: RiskState, inputs: tuple, bar: int, positions) -> np.ndarray:
    """Stop price of each open position for the bar after ``bar`` (NaN: none), for resting
    stop orders at a broker; call after :func:`close_checks` (trailing references updated)."""
    rp = inputs[0][inputs[1][bar]]
    levels = np.full(len(positions), np.nan)
    for j, position in enumerate(np.asarray(positions, np.float64)):
        if position != 0.0:
            side = 1.0 if position > 0.0 else -1.0
            levels[j] = xnb.stop_level_nb(j, side, rp, state.assets)[0]
    return levels


def record_stop(state: RiskState, inputs: tuple, bar: int, asset: int, before: float,
                price: float):
    """A resting stop closed ``asset`` (``before`` shares) at ``price`` on bar ``bar``; call
    after :func:`record_fill`. Re-entry then waits for a changed target, as in the engine.

    Returns
    -------
    events, new state
    """
    new = state.copy()
    rp = inputs[0][inputs[1][max(bar - 1, 0)]]
    _, reason, rule = xnb.stop_level_nb(asset, 1.0 if before > 0.0 else -1.0, rp, new.assets)
    events = _Events(new)
    astate, gstate = new.as_tuple()
    xnb.mark_stopped_nb(asset, reason, astate)
    rnb.record_event_nb(events.buffer, gstate, bar, asset, rule, before, 0.0, price)
    return events.done(), new


def record_fill(
    state: RiskState,
    asset: int,
    old: float,
    new_position: float,
    price: float,
    fee: float,
    bar: int,
    atr_value: float = np.nan,
) -> RiskState:
    """The state after a fill moved ``asset`` from ``old`` to ``new_position`` shares."""
    new = state.copy()
    xnb.track_fill_nb(asset, old, new_position, price, fee, bar, atr_value, *new.as_tuple())
    return new


def close_checks(
    state: RiskState,
    inputs: tuple,
    bar: int,
    equity: float,
    positions,
    high,
    low,
    fill_close: bool = False,
):
    """Trailing references, breakers and the daily loss limit at the close of ``bar``.

    Returns the flatten reason (``"breaker"``, ``"daily_loss_limit"`` or None: when set, the
    runner closes every position), the events and the new state.
    """
    new = state.copy()
    table, regime_row, session = inputs[0], inputs[1], inputs[2]
    astate, gstate = new.as_tuple()
    xnb.update_extremes_nb(
        bar,
        np.atleast_2d(high) if bar == 0 else _row_at(high, bar),
        np.atleast_2d(low) if bar == 0 else _row_at(low, bar),
        np.asarray(positions, np.float64),
        fill_close,
        astate,
    )
    events = _Events(new)
    reason = xnb.close_checks_nb(
        bar, equity, session[bar], table[regime_row[bar]], gstate, events.buffer
    )
    return (EXIT_REASONS[reason] if reason >= 0 else None), events.done(), new


def resume(state: RiskState, bar: int, equity: float):
    """Manual resume of a tripped breaker: ACTIVE again, peak reset to ``equity``."""
    new = state.copy()
    events = _Events(new)
    xnb.resume_nb(bar, equity, new.portfolio, events.buffer)
    return events.done(), new


def _row_at(values, bar: int) -> np.ndarray:
    """A ``(bar + 1, m)`` array whose row ``bar`` is ``values`` (the rule indexes by bar)."""
    row = np.asarray(values, np.float64)
    out = np.full((bar + 1, row.shape[-1]), np.nan)
    out[bar] = row
    return out


def flatten_orders(state: RiskState, positions, pending, reason: str):
    """Targets that close every open position (after a breaker or the daily loss limit asked
    for it): returns the new pending targets and state (the assets then wait for a changed
    target, as after a stop)."""
    new = state.copy()
    out = np.array(pending, np.float64)
    xnb.flatten_nb(
        EXIT_REASONS.index(reason),
        np.asarray(positions, np.float64),
        out,
        np.zeros(out.shape[0]),
        new.assets,
    )
    return out, new
