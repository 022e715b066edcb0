"""The live runner: closed bar in, target out, orders to the broker; crash-only.

For each closed bar (DESIGN.md sections 2-6), in this order, each step idempotent:

1. store the bar; a simulated broker sees it (fills the orders of the previous bar at its open);
2. record the broker's new fills (deduplicated by execution id) with the position and risk state
   they produce, in one transaction each;
3. compute the target with the :class:`~framework.stepper.Stepper` (the backtest's decisions);
4. apply the risk rules (``framework.risk.live``) or, with risk off, the engine's ``on_change``
   rule; the kill switch (ACTIVE / REDUCING / HALTED) then drops what it forbids;
5. size orders ``target * equity / close - position`` with a deterministic ``client_order_id``
   (strategy, run, bar time, symbol), store them, then submit them;
6. commit the bar: decisions with their features, stepper snapshot, accepted targets, equity and
   risk state in one transaction.

A crash anywhere replays the bar: the stored orders keep their ids (the broker rejects a
duplicate), fills are deduplicated, and the stepper and risk state come back from the last
committed bar. Startup is recovery: restore, reconcile orders and positions with the broker,
halt with an event on a mismatch, then trade.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.engine import EngineSpec
from framework.engine._layout import ORDER_DUST
from framework.errors import BrokerError
from framework.risk import RiskSpec
from framework.risk import live as risk_live
from framework.risk.inputs import risk_inputs
from framework.risk.state import RiskState
from framework.stepper import Stepper, entry_at
from framework.strategy import Strategy, compute_features
from live.broker import Broker, DuplicateOrderError, OrderRequest, UnknownOutcomeError
from live.feeds import ClosedBar, Feed
from live.state import Store

KILL_STATES: tuple[str, ...] = ("ACTIVE", "REDUCING", "HALTED")
_OPEN = ("new", "submitted", "partially_filled")
_POSITION_TOLERANCE = 1e-6  # shares: below this, store and broker agree
_LOST_AFTER = 3  # consecutive failed lookups of a confirmed order before it counts as lost


@dataclass(frozen=True)
class RunnerSpec:
    """How the runner trades.

    Parameters
    ----------
    run_id : str
        Name of the run in the store; a run that exists is resumed.
    engine : EngineSpec
        ``rebalance``, ``allow_short`` and ``whole_shares`` as in the backtest.
    risk : RiskSpec
        Risk rules (default off).
    dry_run : bool
        Record decisions and intended orders without sending them.
    record_features : bool
        Store the feature values of every decision (costs one more feature pass per bar).
    size_buffer : float
        Orders are sized to ``target * equity * (1 - size_buffer)``: room for the price to move
        between the decision close and the fill, so a remote broker's buying-power check does
        not reject a fully invested target (0 for the simulated broker, which sizes like the
        engine).
    regimes : bool
        Classify the market regime (``framework.regime``, config/regimes.yaml) on the first
        symbol at every bar: changes are events and alerts, and the risk rules'
        ``regime_overrides`` apply. Labels need history: they may differ from a backtest's over
        a longer window (they remember drawdowns and hysteresis).
    min_free_bytes : int
        Free space the state database's disk must keep: below it the runner stops with a
        :class:`~framework.errors.StorageError` before writing the bar (0: no check; ``fw
        paper`` asks for 100 MiB, ``--min-free-mb``).
    """

    run_id: str
    engine: EngineSpec = field(default_factory=EngineSpec)
    risk: RiskSpec = field(default_factory=RiskSpec.off)
    dry_run: bool = False
    record_features: bool = True
    size_buffer: float = 0.0
    regimes: bool = False
    min_free_bytes: int = 0


def client_order_id(strategy: str, run_id: str, bar_time: str, symbol: str) -> str:
    """Deterministic id of the order decided at ``bar_time``: a re-run sends the same id."""
    stamp = bar_time.replace("-", "").replace(":", "").replace("+0000", "Z")
    raw = f"{strategy}:{run_id}:{stamp}:{symbol}"
    if len(raw) <= 64:
        return raw
    # brokers cap the id length (Alpaca: 128); a digest keeps it unique and deterministic
    return f"{strategy[:16]}:{hashlib.sha256(raw.encode()).hexdigest()[:40]}"


class Runner:
    """Drive one strategy on a feed against a broker, with all state in ``store``.

    Parameters
    ----------
    strategy : Strategy
    schedule : Params or sequence of (effective_from, Params)
        Fixed parameters or a walk-forward schedule.
    store : Store
    broker : Broker
    symbols : sequence of str
    spec : RunnerSpec
    checkpoint : callable, optional
        Called as ``checkpoint(point, bar_time)`` at the steps where a crash is interesting
        (``"bar_stored"``, ``"fills_recorded"``, ``"orders_stored"``, ``"orders_submitted"``);
        tests raise from it to simulate a crash.
    alerter : object with ``send(kind, title, body, level)``, optional
        Receives trades, risk events, halts and errors (``live.alerts.Alerter``).
    watch : live.ml_watch.ModelWatch, optional
        Learned strategies: stores live and shadow predictions, checks drift.
    """

    def __init__(self, strategy: Strategy, schedule, store: Store, broker: Broker,
                 symbols: Sequence[str], spec: RunnerSpec,
                 checkpoint: Callable[[str, str], None] | None = None,
                 alerter: Any = None, watch: Any = None) -> None:
        self.strategy, self.schedule, self.store, self.broker = strategy, schedule, store, broker
        self.symbols, self.spec = tuple(symbols), spec
        self.run_id = spec.run_id
        self._checkpoint = checkpoint or (lambda point, when: None)
        self.halted_by: str | None = None  # the fault that halted trading in this process
        self.stepper: Stepper | None = None
        self.n_bars = 0
        self.last_bar: str | None = None
        self.last_target = np.full(len(self.symbols), np.nan)
        self.risk_state: RiskState | None = None
        self._known_fills: set[str] = set()
        self._foreign_fills: set[str] = set()
        self._misses: dict[str, int] = {}
        self._alerter = alerter
        self.watch = watch  # live.ml_watch.ModelWatch of a learned strategy, else None
        self._account_cache = None
        self._positions: dict[str, float] | None = None
        self._traded = False  # equity is recorded from the first traded bar on
        self._regimes: np.ndarray | None = None  # labels per history bar (spec.regimes)
        self._last_regime = -1
        self._inputs: tuple[int, tuple] | None = None  # (history length, risk inputs)

    # -- startup = recovery ---------------------------------------------------------------------
    def start(self, config: Mapping[str, Any] | None = None) -> None:
        """Create the run or restore it from the store, then reconcile with the broker."""
        run = self.store.run(self.run_id)
        if run is None:
            self.store.create_run(self.run_id, self.strategy.name, self.symbols, config or {})
            self.stepper = Stepper(self.strategy, self.schedule, self.symbols)
            self.store.event(self.run_id, "start", f"new run {self.run_id} of {self.strategy.name}")
        else:
            self._restore(run)
        if self.spec.risk.enabled and self.risk_state is None:
            saved = self.store.risk_state(self.run_id)
            self.risk_state = (RiskState.from_dict(saved) if saved else RiskState.new(
                len(self.symbols), self.broker.account().equity))
        self._known_fills = {f["execution_id"] for f in self.store.fills(self.run_id)}
        self._traded = len(self.store.equity(self.run_id)) > 0
        if not self.spec.dry_run:
            self.reconcile()

    def _restore(self, run: Mapping[str, Any]) -> None:
        if tuple(run["symbols"]) != self.symbols:
            raise BrokerError(
                f"run {self.run_id!r} trades {run['symbols']}; asked for {list(self.symbols)}. "
                "Use the same --symbols or another --run name."
            )
        snapshot = run["stepper"]
        if snapshot:
            bars = self.store.load_bars(self.run_id, self.symbols)
            self.stepper = Stepper.restore(self.strategy, self.schedule, snapshot, bars)
            self.n_bars = int(snapshot["n_bars"])
        else:
            self.stepper = Stepper(self.strategy, self.schedule, self.symbols)
        self.last_bar = run["last_bar"]
        if run["last_target"] is not None:
            self.last_target = np.array(
                [np.nan if x is None else x for x in run["last_target"]], np.float64)
        self.store.event(self.run_id, "recover", f"resumed after bar {self.last_bar} ({self.n_bars} bars)")

    def reconcile(self) -> bool:
        """Bring the store in line with the broker: order statuses, unsent orders of committed
        bars, fills missed while down; then compare positions. A mismatch halts the run."""
        # fills since the last committed bar happened at the next bar's open: bar n_bars
        self.sync_fills(self.n_bars)
        return self.check_positions()

    def check_positions(self, index: int | None = None) -> bool:
        """Compare the store's positions with the broker's (the run's symbols only: other
        holdings of a shared paper account are not ours); a mismatch halts the run. A fill that
        lands between the two reads is caught by syncing once more before deciding."""
        bad = self._position_differences()
        if bad:
            self.sync_fills(self.n_bars if index is None else index)
            bad = self._position_differences()
        if not bad:
            return True
        if self._kill_switch() != "HALTED":
            detail = ", ".join(f"{s}: store {a:g} vs broker {b:g}" for s, (a, b) in sorted(bad.items()))
            self.halt("reconcile_mismatch",
                      f"positions differ ({detail}); trading HALTED. Check the broker account "
                      "(orders placed outside this run, an order the broker lost?), then "
                      "`fw resume`.")
        return False

    def _position_differences(self) -> dict[str, tuple[float, float]]:
        mine = self._held()
        theirs = dict(self.broker.positions())
        return {s: (mine.get(s, 0.0), theirs.get(s, 0.0)) for s in self.symbols
                if abs(mine.get(s, 0.0) - theirs.get(s, 0.0)) > _POSITION_TOLERANCE}

    def healthy(self) -> bool:
        """False while a fault this process detected (mismatch, stale data, clock drift) keeps
        the run halted; a deliberate ``fw halt`` is not a fault. For uptime accounting."""
        if self.halted_by is None:
            return True
        if self.store.kill_switch(self.run_id) != "HALTED":  # fw resume cleared it
            self.halted_by = None
            return True
        return False

    def halt(self, kind: str, message: str) -> None:
        """Set the kill switch to HALTED with an event and an alert."""
        self.halted_by = kind
        self.store.update_run(self.run_id, kill_switch="HALTED")
        self.store.event(self.run_id, kind, message)
        self._alert("halt", f"{self.run_id}: trading HALTED ({kind})", message, "failure")

    def _alert(self, kind: str, title: str, body: str, level: str = "info") -> None:
        if self._alerter is not None:
            self._alerter.send(kind, title, body, level)

    def _error(self, message: str, detail: str) -> None:
        self.store.error(self.run_id, message, detail)
        self._alert("error", f"{self.run_id}: {message}", detail, "warning")

    # -- the loop -------------------------------------------------------------------------------
    def run(self, feed: Feed, progress: Callable[[int, ClosedBar], None] | None = None) -> int:
        """Process every bar of ``feed``; returns how many were new. Marks the run finished."""
        done = 0
        for bar in feed:
            if self.process(bar):
                done += 1
                if progress is not None:
                    progress(self.n_bars, bar)
        self.store.update_run(self.run_id, status="finished")
        self.store.event(self.run_id, "finish", f"feed ended after {self.n_bars} bars")
        return done

    def process(self, bar: ClosedBar) -> bool:
        """Handle one closed bar; False when it was already processed (a replay after restart)."""
        when = bar.time.isoformat()
        if self.last_bar is not None and when <= self.last_bar:
            return False
        self.store.check_space(self.spec.min_free_bytes)  # halt before a write can fail halfway
        self.store.save_bar(self.run_id, when, self.symbols, bar.row())
        self._account_cache = None
        self._positions = None  # another process (fw halt --flatten...) may have moved them
        if bar.warmup:
            self._warm(bar, when)
            return True
        on_bar = getattr(self.broker, "on_bar", None)
        if on_bar is not None and not self.spec.dry_run:
            on_bar(bar)
        self._checkpoint("bar_stored", when)
        index = self.n_bars
        self.sync_fills(index)
        if not self.spec.dry_run:
            self.check_positions(index)
        self._checkpoint("fills_recorded", when)
        if self.watch is not None:
            self.watch.before_bar(self, bar.time)  # a scheduled retrain extends the schedule
        target = self.stepper.update(when, **bar.row())
        self._classify_regime(when)
        pending = self._decide(target, bar, index)
        orders = self._orders(pending, bar, when, index)
        self.store.add_orders(self.run_id, orders)
        self._checkpoint("orders_stored", when)
        for order in orders:
            if order["status"] == "new":
                self._submit(order)
        if self.risk_state is not None and not self.spec.dry_run:
            self._place_stops(index, when, orders)
        if orders and not self.spec.dry_run:
            self._alert("rebalance", f"{self.run_id}: {len(orders)} order(s) at {when[:16]}",
                        ", ".join(f"{o['symbol']} {o['quantity']:+.4g}" for o in orders))
        self._checkpoint("orders_submitted", when)
        self._account_cache = None
        account = self._account()
        decisions = self._decision_rows(target, pending, orders, when)
        self._traded = True
        self._commit(when, decisions, (account.cash, account.equity))
        return True

    def _warm(self, bar: ClosedBar, when: str) -> None:
        """A history bar: the strategy sees it; nothing is traded. Orders a crashed attempt
        stored for it and never sent are expired (too late to fill where decided)."""
        target = self.stepper.update(when, **bar.row())
        equity = None
        if self._traded and not self.spec.dry_run:
            self.sync_fills(self.n_bars)
            for order in self.store.orders(self.run_id, ("new",)):
                if order["bar_time"] == when and self.broker.order(order["client_order_id"]) is None:
                    self._expire(order, "its bar is history now")
            account = self._account()
            equity = (account.cash, account.equity)
        rows = [{"symbol": s, "target": _finite_or_none(target[j]), "pending": None,
                 "order_quantity": None, "features": "{}"} for j, s in enumerate(self.symbols)]
        self._commit(when, rows, equity)

    def _commit(self, when: str, decisions: list[dict[str, Any]],
                equity: tuple[float, float] | None) -> None:
        self.n_bars += 1
        self.store.commit_bar(
            self.run_id, when, decisions,
            {"stepper": self.stepper.snapshot(), "last_target": _json_floats(self.last_target)},
            equity, self.risk_state.to_dict() if self.risk_state is not None else None,
        )
        self.last_bar = when

    def _account(self):
        """The broker's account, read once per decision (a broker call for remote brokers)."""
        if self._account_cache is None:
            self._account_cache = self.broker.account()
        return self._account_cache

    def _expire(self, order: Mapping[str, Any], why: str) -> None:
        self.store.update_order(order["client_order_id"], status="expired")
        self.store.event(self.run_id, "order_expired",
                         f"{order['client_order_id']} ({order['symbol']} {order['quantity']:+g}) "
                         f"never reached the broker and is not sent late: {why}")

    # -- steps ----------------------------------------------------------------------------------
    def sync_fills(self, bar_index: int) -> int:
        """Record the broker's fills not yet stored; returns how many were new."""
        new = 0
        ours: dict[str, dict[str, Any]] | None = None
        for fill in self.broker.fills():
            if fill.execution_id in self._known_fills or fill.execution_id in self._foreign_fills:
                continue
            if ours is None:
                ours = {o["client_order_id"]: o for o in self.store.orders(self.run_id)}
            if fill.client_order_id not in ours or fill.symbol not in self.symbols:
                # not this run's order (another run or a manual trade in the same account):
                # never adopt it; if it moves our symbols, reconciliation halts
                self._foreign_fills.add(fill.execution_id)
                self.store.event(self.run_id, "foreign_fill",
                                 f"{fill.execution_id}: {fill.symbol} {fill.quantity:+g} @ "
                                 f"{fill.price:g} by order {fill.client_order_id} (not this run's)")
                continue
            j = self.symbols.index(fill.symbol)
            old = self._held().get(fill.symbol, 0.0)
            position = old + fill.quantity
            stopped = ours[fill.client_order_id].get("stop_price") is not None
            if self.risk_state is not None:
                self.risk_state = risk_live.record_fill(
                    self.risk_state, j, old, position, fill.price, fill.commission, max(bar_index, 0))
                if stopped:
                    self._record_stop(j, old, fill.price, max(bar_index, 0))
            self.store.record_fill(self.run_id, {
                "execution_id": fill.execution_id, "client_order_id": fill.client_order_id,
                "symbol": fill.symbol, "quantity": fill.quantity, "price": fill.price,
                "commission": fill.commission, "slippage": fill.slippage, "impact": fill.impact,
                "time": fill.time,
            }, position, self.risk_state.to_dict() if self.risk_state is not None else None)
            self._positions = None
            self._known_fills.add(fill.execution_id)
            if stopped:  # the engine drops what was left of the symbol's order too
                self._cancel_open(fill.symbol, keep="")
            self._alert("trade", f"{self.run_id}: {'bought' if fill.quantity > 0 else 'sold'} "
                        f"{abs(fill.quantity):g} {fill.symbol} @ {fill.price:.2f}",
                        f"order {fill.client_order_id}, commission {fill.commission:.2f}, "
                        f"position {position:g}, at {fill.time}")
            new += 1
        for order in self.store.orders(self.run_id, _OPEN):
            if self.spec.dry_run or order["status"] == "dry_run":
                continue
            seen = self.broker.order(order["client_order_id"])
            if seen is not None:
                self._copy_status(order["client_order_id"], seen)
            elif order["status"] == "new" and self.last_bar is not None \
                    and order["bar_time"] <= self.last_bar:
                # an unclear submit of a committed bar that the broker never got
                self._expire(order, "the broker has no order with this client id")
            elif order["status"] != "new":
                self._vanished(order)
        return new

    def _vanished(self, order: Mapping[str, Any]) -> None:
        """The broker confirmed this order once and now cannot find it: settle it from the
        fills recorded for it, or, after a few lookups, call it lost and halt."""
        cid = order["client_order_id"]
        filled = sum(f["quantity"] for f in self.store.fills(self.run_id)
                     if f["client_order_id"] == cid)
        if abs(filled - order["quantity"]) <= _POSITION_TOLERANCE * max(1.0, abs(filled)):
            self.store.update_order(cid, status="filled", filled_quantity=filled)
            self.store.event(self.run_id, "order_vanished",
                             f"{cid}: the broker no longer finds it; filled per its recorded fills")
            return
        self._misses[cid] = self._misses.get(cid, 0) + 1
        if self._misses[cid] >= _LOST_AFTER:
            self.store.update_order(cid, status="lost", filled_quantity=filled)
            self.halt("order_lost", f"{cid} ({order['symbol']} {order['quantity']:+g}, "
                      f"{filled:g} filled) is unknown to the broker after {_LOST_AFTER} lookups; "
                      "trading HALTED. Check the broker's order history, then `fw resume`.")

    def _decide(self, target: np.ndarray, bar: ClosedBar, index: int) -> np.ndarray:
        """Pending targets (NaN: no order) after the risk rules or the on_change rule."""
        if self.spec.risk.enabled:
            return self._decide_with_risk(target, bar, index)
        every_bar = self.spec.engine.rebalance == "every_bar"
        pending = np.full(len(self.symbols), np.nan)
        for j, weight in enumerate(target):
            if np.isnan(weight):
                continue
            if not self.spec.engine.allow_short and weight < 0.0:
                weight = 0.0
            if every_bar or weight != self.last_target[j]:
                pending[j] = weight
        return self._apply_kill_switch(pending)

    def _decide_with_risk(self, target: np.ndarray, bar: ClosedBar, index: int) -> np.ndarray:
        history = self.stepper.history()
        inputs = self._risk_inputs()
        positions = self._position_vector()
        account = self._account()
        marks = np.where(np.isfinite(bar.close), bar.close, 0.0)
        acct = risk_live.Account(positions, marks, account.cash, self.last_target.copy())
        # the engine's order at a close: breakers and trailing references first, then targets
        reason, more, state = risk_live.close_checks(
            self.risk_state, inputs, index, account.equity, positions, bar.high, bar.low)
        pending, accepted, events, state = risk_live.decide_targets(
            state, inputs, history.close, target, index, acct,
            self.spec.engine.rebalance == "every_bar", self.spec.engine.allow_short)
        if reason is not None:
            pending, state = risk_live.flatten_orders(state, positions, pending, reason)
        for _, asset, rule, before, after, _ in more + events:
            self.store.event(self.run_id, f"risk:{rule}",
                             f"{self.symbols[asset]}: {before:.4g} -> {after:.4g}")
        if reason is not None:
            self._alert("breaker", f"{self.run_id}: risk breaker {reason}",
                        f"positions are being closed; breaker state {state.breaker}", "warning")
        self.risk_state = state
        # the engine remembers an accepted target even when the breaker then blocks its order:
        # after the breaker clears, only a new target trades
        self.last_target = accepted
        if self._kill_switch() == "ACTIVE":
            return pending
        return self._apply_kill_switch(pending)

    def _risk_inputs(self) -> tuple:
        """The risk kernel's inputs over the history so far (with regime labels when on);
        computed once per bar (a bar asks several times)."""
        history = self.stepper.history()
        if self._inputs is not None and self._inputs[0] == history.n_bars:
            return self._inputs[1]
        regimes = None
        if self.spec.regimes:
            if self._regimes is None or len(self._regimes) != history.n_bars:
                from framework.regime import regime_labels

                self._regimes = regime_labels(history.select([self.symbols[0]]))[:, 0]
            regimes = self._regimes
        inputs = risk_inputs(history, self.spec.risk, regimes)
        self._inputs = (history.n_bars, inputs)
        return inputs

    def _classify_regime(self, when: str) -> None:
        """Regime labels of the history so far; a change of the latest one is an event."""
        if not self.spec.regimes:
            return
        from framework.regime import REGIME_NAMES, regime_labels  # lazy: only when asked for

        before = self._last_regime
        self._regimes = regime_labels(self.stepper.history().select([self.symbols[0]]))[:, 0]
        now = int(self._regimes[-1])
        self._last_regime = now
        if now != before and now >= 0:
            old = REGIME_NAMES[before] if before >= 0 else "none yet"
            text = f"{self.symbols[0]} at {when[:16]}: {old} -> {REGIME_NAMES[now]}"
            self.store.event(self.run_id, "regime", text)
            self._alert("regime", f"{self.run_id}: regime now {REGIME_NAMES[now]}", text)

    def _record_stop(self, asset: int, before: float, price: float, index: int) -> None:
        inputs = self._risk_inputs()
        events, self.risk_state = risk_live.record_stop(
            self.risk_state, inputs, index, asset, before, price)
        for _, _, rule, shares, _, at in events:
            self.store.event(self.run_id, f"risk:{rule}",
                             f"{self.symbols[asset]}: {shares:.4g} shares stopped out at {at:.4g}")
            self._alert("breaker", f"{self.run_id}: {self.symbols[asset]} stopped out ({rule})",
                        f"{shares:.4g} shares at {at:.4g}", "warning")

    def _place_stops(self, index: int, when: str, orders: Sequence[Mapping[str, Any]]) -> None:
        """Make the resting stop orders match this close's levels: they rest at the broker from
        the next bar's open, where the engine checks its stops against open/high/low. A resting
        stop already at the right level and size stays (no cancel/replace churn every bar).

        A position this bar's order closes or flips gets no stop (a broker would refuse to
        hold the shares for both); one it reduces is protected for what remains."""
        wanted = {} if self._kill_switch() == "HALTED" else self._wanted_stops(index, orders)
        for order in self.store.orders(self.run_id, _OPEN):
            if order["stop_price"] is None or order["bar_time"] >= when:
                continue
            if wanted.get(order["symbol"]) == (order["quantity"], order["stop_price"]):
                del wanted[order["symbol"]]  # already resting where it should
                continue
            try:
                self._copy_status(order["client_order_id"],
                                  self.broker.cancel(order["client_order_id"]))
            except BrokerError as exc:
                self._error(f"cancel stop {order['client_order_id']} failed", str(exc))
        rows = [{
            "client_order_id": client_order_id(self.strategy.name, self.run_id, when, symbol)
            + ":stop",
            "bar_time": when, "symbol": symbol, "quantity": quantity, "stop_price": level,
            "status": "new"} for symbol, (quantity, level) in wanted.items()]
        self.store.add_orders(self.run_id, rows)
        for row in rows:
            self._submit(row)

    def _wanted_stops(self, index: int, orders: Sequence[Mapping[str, Any]]
                      ) -> dict[str, tuple[float, float]]:
        """symbol -> (stop order quantity, stop level) the risk rules want resting now."""
        positions = self._position_vector()
        levels = risk_live.stop_levels(self.risk_state, self._risk_inputs(), index, positions)
        after = positions.copy()
        for order in orders:
            if order["status"] == "new" or order["status"] == "submitted":
                after[self.symbols.index(order["symbol"])] += order["quantity"]
        wanted = {}
        for j, level in enumerate(levels):
            if not np.isfinite(level) or positions[j] == 0.0 or after[j] * positions[j] <= 0.0:
                continue
            held = positions[j] if abs(after[j]) >= abs(positions[j]) else after[j]
            wanted[self.symbols[j]] = (-float(held), float(level))
        return wanted

    def _apply_kill_switch(self, pending: np.ndarray) -> np.ndarray:
        """HALTED: nothing; REDUCING: only targets that shrink a position toward flat.
        Accepted targets are remembered so an unchanged target does not trade again."""
        state = self._kill_switch()
        positions = self._position_vector()
        equity = self._account().equity
        close = self.stepper.history().close[-1]
        out = np.full(len(self.symbols), np.nan)
        for j, weight in enumerate(pending):
            if np.isnan(weight) or state == "HALTED":
                continue
            if state == "REDUCING":
                wanted = weight * equity / close[j] if close[j] > 0 else 0.0
                held = positions[j]
                if not (abs(wanted) <= abs(held) and wanted * held >= 0.0):
                    continue
            out[j] = weight
            self.last_target[j] = weight
        return out

    def _orders(self, pending: np.ndarray, bar: ClosedBar, when: str,
                index: int) -> list[dict[str, Any]]:
        """Orders that move each pending asset to its target weight at this close, through the
        risk layer's order-time rules."""
        equity = self._account().equity
        positions = self._position_vector()
        out = []
        for j, weight in enumerate(pending):
            price = float(bar.close[j])
            if np.isnan(weight) or not (np.isfinite(price) and price > 0.0):
                continue
            cid = client_order_id(self.strategy.name, self.run_id, when, self.symbols[j])
            self._cancel_open(self.symbols[j], keep=cid)
            w = weight * (1.0 - self.spec.size_buffer) if equity > 0.0 else 0.0
            quantity = w * equity / price - positions[j]
            if abs(quantity) <= ORDER_DUST * abs(positions[j]):
                continue
            if self.spec.engine.whole_shares:
                quantity = float(np.trunc(quantity))
            if quantity == 0.0:
                continue
            out.append({
                "client_order_id": cid,
                "bar_time": when, "symbol": self.symbols[j], "quantity": float(quantity),
                "status": "dry_run" if self.spec.dry_run else "new",
            })
        if self.risk_state is not None and out:
            out = self._filter_orders(out, bar, index, positions)
        return out

    def _filter_orders(self, orders: list[dict[str, Any]], bar: ClosedBar, index: int,
                       positions: np.ndarray) -> list[dict[str, Any]]:
        """The engine's order-time rules (reductions only while a breaker is tripped or the
        day's loss limit locks the decision's session, minimum trade value, at most
        ``max_trades_per_rebalance`` orders), priced at this close: the fill's open is unknown."""
        sized = np.zeros(len(self.symbols))
        for order in orders:
            sized[self.symbols.index(order["symbol"])] = order["quantity"]
        kept, events, self.risk_state = risk_live.filter_orders(
            self.risk_state, self._risk_inputs(), index + 1, sized, positions,
            np.asarray(bar.close, np.float64), self.spec.engine.fill == "close")
        for _, asset, rule, before, after, _ in events:
            self.store.event(self.run_id, f"risk:{rule}",
                             f"{self.symbols[asset]}: order {before:.4g} -> {after:.4g}")
        out = []
        for order in orders:
            quantity = float(kept[self.symbols.index(order["symbol"])])
            if quantity != 0.0:
                out.append({**order, "quantity": quantity})
        return out

    def _cancel_open(self, symbol: str, keep: str) -> None:
        """A new target supersedes the rest of the previous order (as in the engine); ``keep``
        is this bar's own order, already sent when the bar is replayed after a crash."""
        if self.spec.dry_run:
            return
        for order in self.store.orders(self.run_id, _OPEN):
            if order["symbol"] == symbol and order["client_order_id"] != keep:
                try:
                    seen = self.broker.cancel(order["client_order_id"])
                except BrokerError as exc:
                    self._error(f"cancel {order['client_order_id']} failed", str(exc))
                    continue
                self._copy_status(order["client_order_id"], seen)

    def _submit(self, order: Mapping[str, Any]) -> None:
        stop = order.get("stop_price")
        request = OrderRequest(order["client_order_id"], order["symbol"], float(order["quantity"]),
                               float("nan") if stop is None else float(stop))
        try:
            seen = self.broker.submit(request)
        except DuplicateOrderError:
            seen = self.broker.order(request.client_order_id)  # sent before a crash: keep it
        except UnknownOutcomeError as exc:
            # stays "new": the next bar (or start) resolves it by client id
            self._error(f"order {request.client_order_id} outcome unknown", str(exc))
            return
        except BrokerError as exc:
            self.store.update_order(request.client_order_id, status="rejected")
            self._error(f"order {request.client_order_id} rejected", str(exc))
            return
        if seen is not None:
            self._copy_status(request.client_order_id, seen)
            if seen.status == "rejected":
                self._error(f"order {request.client_order_id} rejected",
                            f"the broker rejected {request.symbol} {request.quantity:+g}")

    def _copy_status(self, client_id: str, seen) -> None:
        status = "submitted" if seen.status == "new" else seen.status
        avg = seen.average_price if seen.filled_quantity else None
        self.store.update_order(client_id, status=status, filled_quantity=seen.filled_quantity,
                                average_price=avg)

    # -- helpers --------------------------------------------------------------------------------
    def _kill_switch(self) -> str:
        state = self.store.kill_switch(self.run_id)
        if self.risk_state is not None and self.risk_state.breaker != "ACTIVE":
            # the more restrictive of the manual switch and the risk breaker
            return max(state, self.risk_state.breaker, key=KILL_STATES.index)
        return state

    def _held(self) -> dict[str, float]:
        """The stored positions, read once per bar (only this runner writes them: each stored
        fill drops the copy)."""
        if self._positions is None:
            self._positions = self.store.positions(self.run_id)
        return self._positions

    def _position_vector(self) -> np.ndarray:
        held = self._held()
        return np.array([held.get(s, 0.0) for s in self.symbols])

    def _decision_rows(self, target, pending, orders, when) -> list[dict[str, Any]]:
        features = self._feature_row() if self.spec.record_features else {}
        sizes = {o["symbol"]: o["quantity"] for o in orders}
        rows = []
        for j, symbol in enumerate(self.symbols):
            feats = {k: (v[j] if isinstance(v, list) else v) for k, v in features.items()}
            rows.append({
                "symbol": symbol, "target": _finite_or_none(target[j]),
                "pending": _finite_or_none(pending[j]), "order_quantity": sizes.get(symbol),
                "features": _dumps(feats),
            })
        return rows

    def _feature_row(self) -> dict[str, Any]:
        history = self.stepper.history()
        entry = entry_at(self.stepper.schedule, history.index[-1])
        features = compute_features(self.strategy, history, entry.params)
        out = {}
        for name, values in features.items():
            last = np.asarray(values, np.float64)[-1]
            out[name] = [_finite_or_none(x) for x in np.atleast_1d(last)] if np.ndim(last) else _finite_or_none(last)
        if self.watch is not None:
            out.update(self.watch.observe(history, features, entry))
        return out


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _json_floats(values: np.ndarray) -> list[float | None]:
    return [_finite_or_none(v) for v in values]


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value)
