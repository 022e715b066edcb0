"""Market state of the fake: bars, the fill model, orders, fills, positions and cash.

One re-entrant lock guards everything, so REST threads, the clock and the websocket servers see a
consistent book. Time only moves through :meth:`Market.advance_to` (driven by ``FakeClock``).
Listeners receive trade updates and completed bars synchronously, under the lock, which keeps
their order; they must only enqueue (the websocket server hands them to its own loop).
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Callable

import numpy as np
import pandas as pd

from framework.errors import ConfigError, DataError

from .bars import SymbolBars
from .faults import Faults
from .orders import (
    ApiReject,
    OrderState,
    client_order_id,
    malformed,
    number,
    parse_order,
    positive,
)
from .sessions import SessionTable, iso, to_utc

TIMEFRAMES = ("1Day", "1Min")
FORCED_OUTCOMES = ("rejected", "expired", "canceled")
# Ranks break ties between actions due at the same instant: fills before expiries.
_FILL, _FORCED, _EXPIRE = 0, 1, 2


def asset_id(symbol: str) -> str:
    """A stable UUID per symbol, so assets and positions agree across calls."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/{symbol}"))


class Market:
    """The simulated account and exchange; see ``FakeAlpaca`` for the behaviour contract."""

    def __init__(self, bars: dict[str, pd.DataFrame], timeframe: str,
                 start: str | pd.Timestamp | None, cash: float, faults: Faults) -> None:
        if timeframe not in TIMEFRAMES:
            raise ConfigError(f"timeframe={timeframe!r} is not supported; use one of {TIMEFRAMES}")
        if not isinstance(bars, dict) or not bars:
            raise DataError("bars must be a non-empty dict {symbol: DataFrame of OHLCV bars}")
        firsts = [frame.index.min() for frame in bars.values()]
        lasts = [frame.index.max() for frame in bars.values()]
        self.sessions = SessionTable.around(to_utc(min(firsts), "bars index"),
                                            to_utc(max(lasts), "bars index"))
        self.series = {symbol: SymbolBars.from_frame(symbol, frame, timeframe, self.sessions)
                       for symbol, frame in sorted(bars.items())}
        self.timeframe = timeframe
        self.faults = faults
        self.lock = threading.RLock()
        first_open = min(int(series.open_time[0]) for series in self.series.values())
        self.now_ns = first_open if start is None else to_utc(start, "start").value
        self.cash = float(cash)
        self.account_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-alpaca/account"))
        self._orders: dict[str, OrderState] = {}
        self._by_client_id: dict[str, str] = {}
        self._positions: dict[str, list[float]] = {}  # symbol -> [qty, avg_entry_price]
        self._fills: list[dict] = []
        self.activities: list[dict] = []
        self._seq = itertools.count()
        self.trade_listeners: list[Callable[[dict], None]] = []
        self.bar_listeners: list[Callable[[str, str, dict], None]] = []

    # ------------------------------------------------------------------ time
    def advance_to(self, target_ns: int) -> None:
        """Move market time forward, run the fill model and publish completed bars."""
        with self.lock:
            if target_ns < self.now_ns:
                raise ConfigError(
                    f"cannot move the fake clock back from {pd.Timestamp(self.now_ns, tz='UTC')} "
                    f"to {pd.Timestamp(target_ns, tz='UTC')}; market time only moves forward")
            previous, self.now_ns = self.now_ns, target_ns
            self._run_orders()
            self._publish_bars(previous, target_ns)

    def _publish_bars(self, previous: int, now: int) -> None:
        kind = "b" if self.timeframe == "1Min" else "d"
        done = []
        for symbol, series in self.series.items():
            for position in range(series.complete(previous), series.complete(now)):
                done.append((int(series.close_time[position]), symbol, position))
        for _, symbol, position in sorted(done):
            for listener in self.bar_listeners:
                listener(kind, symbol, self.series[symbol].wire(position))

    # ---------------------------------------------------------------- orders
    def submit(self, body: object, check_buying_power: bool = True) -> dict:
        """Validate and accept an order; returns its wire JSON as of acceptance."""
        fields = parse_order(body, set(self.series))
        with self.lock:
            if fields["client_order_id"] in self._by_client_id:
                raise malformed("client_order_id must be unique")
            if check_buying_power and fields["side"] == "buy":
                self._check_buying_power(fields["symbol"], fields["qty"])
            order = self._accept(fields)
            snapshot = self._wire(order)
            self._run_orders()
            return snapshot

    def _check_buying_power(self, symbol: str, qty: float) -> None:
        cost = qty * self.series[symbol].reference_price(self.now_ns)
        if cost > self.buying_power():
            raise ApiReject(403, 40310000, "insufficient buying power")

    def _accept(self, fields: dict, replaces: OrderState | None = None) -> OrderState:
        order = OrderState(**fields, submitted_ns=self.now_ns, seq=next(self._seq))
        order.updated_ns = self.now_ns
        schedule = self.faults.partial_fills
        if schedule:
            order.schedule = _checked_schedule(schedule)
        forced = self.faults.take_force_outcome()
        if forced is not None and forced not in FORCED_OUTCOMES:
            raise ConfigError(f"faults.force_outcome={forced!r}; expected one of {FORCED_OUTCOMES}")
        order.forced = forced
        series = self.series[order.symbol]
        order.cursor = {"bar": series.first_closing_after(self.now_ns)}
        if order.time_in_force == "day":
            order.expire_ns = self.sessions.next_close(self.now_ns)
        if replaces is not None:
            order.replaces = replaces.id
        self._orders[order.id] = order
        self._by_client_id[order.client_order_id] = order.id
        self._emit("new", order, self.now_ns)
        if forced == "rejected":
            self._finish(order, "rejected", self.now_ns)
        return order

    def cancel(self, order_id: str) -> None:
        """Cancel an open order (204) or raise 404/422 like Alpaca."""
        with self.lock:
            order = self._lookup(order_id)
            if not order.is_open:
                raise ApiReject(422, 42210000, f"order is not cancelable (status {order.status})")
            self._finish(order, "canceled", self.now_ns)

    def cancel_all(self) -> list[dict]:
        """Cancel every open order; the 207 body of ``DELETE /v2/orders``."""
        with self.lock:
            results = []
            for order in [o for o in self._orders.values() if o.is_open]:
                self._finish(order, "canceled", self.now_ns)
                results.append({"id": order.id, "status": 200, "body": self._wire(order)})
            return results

    def replace(self, order_id: str, body: object) -> dict:
        """``PATCH /v2/orders/{id}``: a new order that replaces the old one."""
        if not isinstance(body, dict):
            raise ApiReject(400, 40010000, "request body format is invalid (expected a JSON object)")
        with self.lock:
            old = self._lookup(order_id)
            if not old.is_open or old.filled_qty > 0:
                raise ApiReject(422, 42210000,
                                f"order is not replaceable (status {old.status}, "
                                f"filled_qty {number(old.filled_qty)})")
            fields = {"symbol": old.symbol, "side": old.side, "order_type": old.order_type,
                      "time_in_force": body.get("time_in_force") or old.time_in_force,
                      "qty": old.qty, "limit_price": old.limit_price,
                      "client_order_id": client_order_id(body.get("client_order_id")),
                      "extended_hours": old.extended_hours}
            if body.get("qty") is not None:
                fields["qty"] = positive(body, "qty")
            if body.get("limit_price") is not None:
                if old.order_type != "limit":
                    raise malformed("limit_price can only be replaced on limit orders")
                fields["limit_price"] = positive(body, "limit_price")
            if fields["client_order_id"] in self._by_client_id:
                raise malformed("client_order_id must be unique")
            new = self._accept(fields, replaces=old)
            old.status, old.replaced_ns, old.replaced_by = "replaced", self.now_ns, new.id
            old.updated_ns = self.now_ns
            self._emit("replaced", old, self.now_ns)
            snapshot = self._wire(new)
            self._run_orders()
            return snapshot

    def _lookup(self, order_id: str) -> OrderState:
        order = self._orders.get(order_id)
        if order is None:
            raise ApiReject(404, 40410000, f"order not found for {order_id}")
        return order

    def order_by_id(self, order_id: str) -> dict:
        """Wire JSON of one order; orders in ``faults.disappear`` answer 404."""
        with self.lock:
            order = self._orders.get(order_id)
            if order is None or order.client_order_id in self.faults.disappear:
                raise ApiReject(404, 40410000, f"order not found for {order_id}")
            return self._wire(order)

    def order_by_client_id(self, client_id: str) -> dict:
        """Wire JSON of the order with ``client_id``; 404 when unknown or disappeared."""
        with self.lock:
            order_id = self._by_client_id.get(client_id)
            if order_id is None or client_id in self.faults.disappear:
                raise ApiReject(404, 40410000, f"order not found for {client_id}")
            return self._wire(self._orders[order_id])

    def query_orders(self, keep: Callable[[OrderState], bool], newest_first: bool,
                     limit: int) -> list[dict]:
        """Orders passing ``keep`` sorted by submission, at most ``limit`` of them."""
        with self.lock:
            chosen = [o for o in self._orders.values() if keep(o)]
            chosen.sort(key=lambda o: (o.submitted_ns, o.seq), reverse=newest_first)
            return [self._wire(o) for o in chosen[:limit]]

    # ------------------------------------------------------------ fill model
    def _run_orders(self) -> None:
        """Execute every due action (fill, forced outcome, DAY expiry) in time order."""
        while True:
            due = None
            for order in self._orders.values():
                if not order.is_open:
                    continue
                action = self._next_action(order)
                if action is not None and action[0] <= self.now_ns:
                    key = (action[0], action[1], order.seq)
                    if due is None or key < due[0]:
                        due = (key, order, action)
            if due is None:
                return
            self._execute(due[1], due[2])

    def _next_action(self, order: OrderState) -> tuple | None:
        series = self.series[order.symbol]
        position = order.cursor["bar"]
        action = None
        if position < len(series):
            if order.forced in ("expired", "canceled"):
                action = (int(series.open_time[position]), _FORCED, order.forced, position, None)
            elif order.order_type == "market":
                action = (int(series.open_time[position]), _FILL, "fill", position,
                          float(series.o[position]))
            elif order.order_type == "stop":
                action = _stop_action(series, order, position)
            else:
                action = _limit_action(series, order, position)
        if order.expire_ns is not None and (action is None or action[0] > order.expire_ns):
            action = (order.expire_ns, _EXPIRE, "expired", position, None)
        return action

    def _execute(self, order: OrderState, action: tuple) -> None:
        when, _, kind, position, price = action
        if kind in ("expired", "canceled"):
            self._finish(order, kind, when)
            return
        remaining = order.qty - order.filled_qty
        last = order.fills_done >= len(order.schedule) - 1
        qty = remaining if last else round(order.qty * order.schedule[order.fills_done], 9)
        qty = min(qty, remaining)
        order.fills_done += 1
        order.cursor["bar"] = position + 1
        self._fill(order, qty, price, when)

    def _fill(self, order: OrderState, qty: float, price: float, when: int) -> None:
        order.filled_qty = round(order.filled_qty + qty, 9)
        order.filled_notional += qty * price
        order.updated_ns = when
        done = order.filled_qty >= order.qty - 1e-9
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_ns = when
        signed = order.signed * qty
        self.cash -= signed * price
        position_qty = self._apply_position(order.symbol, signed, price)
        fill_id = str(uuid.uuid4())
        self._fills.append({"id": fill_id, "order_id": order.id,
                            "client_order_id": order.client_order_id, "symbol": order.symbol,
                            "qty": signed, "price": price, "time": pd.Timestamp(when, tz="UTC")})
        self.activities.append(self._activity(order, qty, price, when, done))
        self._emit("fill" if done else "partial_fill", order, when, execution_id=fill_id,
                   price=number(price), qty=number(qty), position_qty=number(position_qty))

    def _apply_position(self, symbol: str, signed: float, price: float) -> float:
        qty, avg = self._positions.get(symbol, [0.0, 0.0])
        new_qty = round(qty + signed, 9)
        flipped = new_qty != 0 and (qty > 0) != (new_qty > 0)
        if qty == 0 or flipped:
            avg = price  # opened or flipped: the entry is this fill
        elif abs(new_qty) > abs(qty):
            avg = (abs(qty) * avg + abs(signed) * price) / abs(new_qty)
        if new_qty == 0:
            self._positions.pop(symbol, None)
        else:
            self._positions[symbol] = [new_qty, avg]
        return new_qty

    def _activity(self, order: OrderState, qty: float, price: float, when: int,
                  done: bool) -> dict:
        stamp = pd.Timestamp(when, tz="UTC")
        prefix = stamp.strftime("%Y%m%d%H%M%S") + f"{stamp.microsecond // 1000:03d}"
        return {"id": f"{prefix}::{uuid.uuid4()}", "account_id": self.account_id,
                "activity_type": "FILL", "transaction_time": iso(when),
                "type": "fill" if done else "partial_fill", "price": number(price),
                "qty": number(qty), "side": order.side, "symbol": order.symbol,
                "leaves_qty": number(order.qty - order.filled_qty), "order_id": order.id,
                "cum_qty": number(order.filled_qty), "order_status": order.status,
                "_ns": when}

    def _finish(self, order: OrderState, status: str, when: int) -> None:
        order.status, order.updated_ns = status, when
        setattr(order, {"canceled": "canceled_ns", "expired": "expired_ns",
                        "rejected": "failed_ns"}[status], when)
        self._emit(status, order, when)

    def _emit(self, event: str, order: OrderState, when: int, execution_id: str | None = None,
              **numbers: str) -> None:
        data = {"event": event, "execution_id": execution_id or str(uuid.uuid4()),
                "order": self._wire(order), "timestamp": iso(when), **numbers}
        message = {"stream": "trade_updates", "data": data}
        for listener in self.trade_listeners:
            listener(message)

    def _wire(self, order: OrderState) -> dict:
        return order.wire(asset_id(order.symbol))

    # ---------------------------------------------------- account, positions
    def equity(self) -> float:
        """Cash plus every position at its mark."""
        with self.lock:
            return self.cash + sum(qty * self._mark(symbol)
                                   for symbol, (qty, _) in self._positions.items())

    def buying_power(self) -> float:
        """1x buying power: equity (Alpaca paper has no commission)."""
        return self.equity()

    def _mark(self, symbol: str) -> float:
        return self.series[symbol].reference_price(self.now_ns)

    def position_qty(self) -> dict[str, float]:
        """{symbol: signed qty} of open positions."""
        with self.lock:
            return {symbol: qty for symbol, (qty, _) in self._positions.items()}

    def position_entry(self, symbol: str) -> tuple[float, float] | None:
        """(qty, avg_entry_price) of one position, None when flat."""
        with self.lock:
            entry = self._positions.get(symbol)
            return None if entry is None else (entry[0], entry[1])

    def fills(self) -> list[dict]:
        """Copies of the fill records, oldest first."""
        with self.lock:
            return [dict(fill) for fill in self._fills]

    def orders(self) -> list[dict]:
        """Wire JSON of every order, oldest first."""
        with self.lock:
            return [self._wire(order) for order in self._orders.values()]

    def lastday_price(self, symbol: str) -> float:
        """Close of the last bar that completed before the current session opened."""
        series = self.series[symbol]
        session_open = self.sessions.current_open(self.now_ns)
        count = series.complete(session_open) if session_open is not None else 0
        return float(series.c[count - 1]) if count else self._mark(symbol)

    def mark(self, symbol: str) -> float:
        """The price positions are valued at now."""
        with self.lock:
            return self._mark(symbol)


def _limit_action(series: SymbolBars, order: OrderState, position: int) -> tuple | None:
    """The next crossing bar of a limit order: open if marketable there, else limit at close."""
    limit = order.limit_price
    lows = series.low[position:] if order.side == "buy" else -series.h[position:]
    bound = limit if order.side == "buy" else -limit
    hits = np.nonzero(lows <= bound)[0]
    if len(hits) == 0:
        return None
    bar = position + int(hits[0])
    opening = series.o[bar]
    if (opening <= limit) if order.side == "buy" else (opening >= limit):
        return (int(series.open_time[bar]), _FILL, "fill", bar, float(opening))
    return (int(series.close_time[bar]), _FILL, "fill", bar, float(limit))


def _stop_action(series: SymbolBars, order: OrderState, position: int) -> tuple | None:
    """The bar that triggers a stop: a gap through the level fills at the open, a touch at the
    level (just after the open, so market orders of the same open go first)."""
    stop, sign = order.stop_price, (1.0 if order.side == "buy" else -1.0)
    reach = series.h[position:] if sign > 0 else -series.low[position:]
    hits = np.nonzero(reach >= sign * stop)[0]
    if len(hits) == 0:
        return None
    bar = position + int(hits[0])
    opening = float(series.o[bar])
    if sign * (opening - stop) >= 0.0:
        return (int(series.open_time[bar]), _FILL, "fill", bar, opening)
    return (int(series.open_time[bar]) + 1, _FILL, "fill", bar, float(stop))


def _checked_schedule(schedule: list[float]) -> tuple[float, ...]:
    fractions = tuple(float(part) for part in schedule)
    if any(part <= 0 for part in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            f"faults.partial_fills={list(schedule)!r}: expected positive fractions summing "
            "to 1, e.g. [0.4, 0.6]")
    return fractions
