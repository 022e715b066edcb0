"""The simulated broker: market orders fill at the next bar's open with the engine's own rules.

Each bar the broker receives (:meth:`SimBroker.on_bar`) fills the open orders at that bar's open
through the engine's own fill stage (``framework.engine.onebar.OneBarFiller``), so
commission, slippage, square-root impact, the participation cap and the leverage rule are the
backtest's, bit for bit: the part of an order above ``max_participation`` of the bar's volume
stays open for the next bars; the part the leverage rule cannot afford is cancelled (the engine
drops it too). Positions are then marked at the bar's close.

Per symbol only the oldest open order works on a bar (later ones wait): the runner cancels a
symbol's open order before it sends a new one, as the engine lets a new target supersede the
rest of the previous order.

The broker's state is a JSON-able dict (:meth:`to_dict`); a ``persist`` callback receives it
after every change, so the "broker side" survives the runner's process (its own table in the
store; it is never read by the runner's recovery except through the broker API).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from framework.costs import CostSpec
from framework.engine import EngineSpec
from framework.engine.onebar import OneBarFiller
from framework.errors import BrokerError, unknown_name_message
from live.broker import (
    AccountSnapshot,
    DuplicateOrderError,
    FillRecord,
    OrderRecord,
    OrderRequest,
    UnknownOrderError,
)
from live.feeds import ClosedBar

_KEEP_FINAL = 64  # final orders the broker remembers (see SimBroker._forget_old_orders)
# fills the broker remembers: the runner stores each bar's fills at the next bar, so the newest
# few suffice; keeping all would make every save (one per bar) grow with the run's age
_KEEP_FILLS = 64
_QTY_DUST = 1e-9  # leftovers below this many shares are float noise, not open quantity


@dataclass(frozen=True)
class SimSpec:
    """Account and cost rules of the simulated broker (the engine's, see ``EngineSpec``)."""

    initial_cash: float = 100_000.0
    costs: CostSpec = field(default_factory=CostSpec)
    allow_short: bool = True
    max_leverage: float = 1.0

    def engine_spec(self) -> EngineSpec:
        return EngineSpec(
            initial_cash=self.initial_cash,
            allow_short=self.allow_short,
            max_leverage=self.max_leverage,
        )


class SimBroker:
    """An in-process broker over the symbols of a feed.

    Parameters
    ----------
    symbols : sequence of str
    spec : SimSpec
    persist : callable, optional
        Receives :meth:`to_dict` after each change (store it to survive a restart).
    id_prefix : str
        Start of the execution ids; give each run its own (ids are unique per database).
    """

    name = "sim"

    def __init__(
        self,
        symbols: Sequence[str],
        spec: SimSpec | None = None,
        persist: Callable[[dict], None] | None = None,
        id_prefix: str = "sim",
    ) -> None:
        self.spec = spec or SimSpec()
        self.id_prefix = id_prefix
        self.symbols = tuple(symbols)
        m = len(self.symbols)
        self._filler = OneBarFiller(self.spec.engine_spec(), self.spec.costs)
        self.cash = float(self.spec.initial_cash)
        self.shares = np.zeros(m)
        self.marks = np.full(m, np.nan)
        self.orders: dict[str, dict[str, Any]] = {}
        self._fills: list[FillRecord] = []
        self._fill_count = 0  # fills ever booked: names the next execution id
        window = int(self.spec.costs.impact_window)
        self._closes = np.full((0, m), np.nan)
        self._window = window
        self.last_time: str | None = None
        self._persist = persist

    # -- Broker protocol ------------------------------------------------------------------------
    def account(self) -> AccountSnapshot:
        equity = self.cash
        for j, held in enumerate(self.shares):
            if held != 0.0:
                equity += held * self.marks[j]
        return AccountSnapshot(cash=float(self.cash), equity=float(equity))

    def positions(self) -> Mapping[str, float]:
        return {s: float(q) for s, q in zip(self.symbols, self.shares, strict=True) if q != 0.0}

    def open_orders(self) -> list[OrderRecord]:
        return [self._record(o) for o in self.orders.values() if o["status"] in ("new", "partially_filled")]

    def submit(self, order: OrderRequest) -> OrderRecord:
        if order.client_order_id in self.orders:
            raise DuplicateOrderError(
                f"order {order.client_order_id!r} already exists at the sim broker; nothing was "
                "sent. Look it up with order(client_order_id) instead of re-submitting."
            )
        if order.symbol not in self.symbols:
            raise BrokerError(unknown_name_message("symbol", order.symbol, self.symbols))
        if not (np.isfinite(order.quantity) and order.quantity != 0.0):
            raise BrokerError(
                f"order {order.client_order_id!r} has quantity {order.quantity!r}; expected a "
                "finite non-zero number of shares (> 0 buys, < 0 sells)."
            )
        self.orders[order.client_order_id] = {
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
            "quantity": float(order.quantity),
            "filled": 0.0,
            "value": 0.0,
            "status": "new",
            "stop_price": (float(order.stop_price) if np.isfinite(order.stop_price) else None),
        }
        self._save()
        return self._record(self.orders[order.client_order_id])

    def cancel(self, client_order_id: str) -> OrderRecord:
        found = self.orders.get(client_order_id)
        if found is None:
            raise UnknownOrderError(f"the sim broker has no order {client_order_id!r} to cancel.")
        if found["status"] in ("new", "partially_filled"):
            found["status"] = "canceled"
            self._save()
        return self._record(found)

    def order(self, client_order_id: str) -> OrderRecord | None:
        found = self.orders.get(client_order_id)
        return None if found is None else self._record(found)

    def fills(self) -> list[FillRecord]:
        """The newest fills (the last ``_KEEP_FILLS``), oldest first."""
        return list(self._fills)

    # -- market data ------------------------------------------------------------------------------
    def on_bar(self, bar: ClosedBar) -> list[FillRecord]:
        """Fill open orders at ``bar``'s open, then mark at its close; a bar already seen is
        ignored (a replay restarted after a crash delivers it again)."""
        if tuple(bar.symbols) != self.symbols:
            raise BrokerError(
                f"bar has symbols {list(bar.symbols)}; the sim broker trades {list(self.symbols)}."
            )
        stamp = bar.time.isoformat()
        if self.last_time is not None and stamp <= self.last_time:
            return []
        closes = np.vstack([self._closes, np.asarray(bar.close, np.float64)[None, :]])
        new_fills = self._fill_at_open(bar, closes)
        new_fills += self._trigger_stops(bar, closes)
        finite = np.isfinite(bar.close)
        self.marks[finite] = bar.close[finite]
        # keep the impact window's closes plus the current bar (the rest is never read)
        self._closes = closes[-(self._window + 1) :]
        self._forget_old_orders()
        self.last_time = stamp
        self._save()
        return new_fills

    def _fill_at_open(self, bar: ClosedBar, closes: np.ndarray) -> list[FillRecord]:
        m = len(self.symbols)
        working: dict[int, str] = {}
        remaining = np.zeros(m)
        for cid, order in self.orders.items():
            j = self.symbols.index(order["symbol"])
            if order.get("stop_price") is not None:
                continue  # resting stops: _trigger_stops
            if order["status"] in ("new", "partially_filled") and j not in working:
                working[j] = cid
                remaining[j] = order["quantity"] - order["filled"]
        if not working:
            return []
        asked = remaining.copy()
        fills, requested, self.cash = self._filler.fill_at_open(
            bar.open, bar.volume, closes, self.shares, self.marks, self.cash, remaining)
        if not requested:
            return []
        out = [self._book_fill(working[f.asset], f.asset,
                               (f.quantity, f.price, f.commission, f.slippage, f.impact), bar)
               for f in fills]
        for j, cid in working.items():
            self._settle(cid, asked[j], requested.get(j, 0.0))
        return out

    def _trigger_stops(self, bar: ClosedBar, closes: np.ndarray) -> list[FillRecord]:
        """Resting stops, after the open's fills (the engine's order): a gap through the level
        fills at the open, a touch by the low (high: shorts) at the level; the whole position
        closes, priced by the engine's cost model (no participation cap, as in the engine)."""
        out = []
        for cid, order in self.orders.items():
            if order.get("stop_price") is None or order["status"] != "new":
                continue
            j = self.symbols.index(order["symbol"])
            held, level = float(self.shares[j]), order["stop_price"]
            if held * order["quantity"] >= 0.0:
                order["status"] = "canceled"  # flat (or flipped) at the open: nothing to protect
                continue
            side = 1.0 if held > 0.0 else -1.0
            worst = bar.low[j] if side > 0.0 else bar.high[j]
            if side * (bar.open[j] - level) <= 0.0:
                price = float(bar.open[j])
            elif side * (worst - level) <= 0.0:
                price = float(level)
            else:
                continue
            fill = self._filler.price_exit(-held, price, float(bar.volume[j]), closes, j)
            self.cash -= -held * fill[0] + fill[1]
            self.shares[j] = 0.0
            order["quantity"] = -held
            out.append(self._book_fill(cid, j, (-held, *fill[:4]), bar))
            order["status"] = "filled"
        return out

    def _book_fill(self, cid: str, j: int, fill: tuple, bar: ClosedBar) -> FillRecord:
        qty, price, fee, slip, impact = fill
        order = self.orders[cid]
        order["filled"] += qty
        order["value"] += qty * price
        record = FillRecord(
            execution_id=f"{self.id_prefix}-{self._fill_count + 1:08d}",
            client_order_id=cid,
            symbol=self.symbols[j],
            quantity=qty,
            price=price,
            commission=fee,
            time=bar.time.isoformat(),
            slippage=slip,
            impact=impact,
        )
        self._fills.append(record)
        self._fill_count += 1
        del self._fills[:-_KEEP_FILLS]
        return record

    def _settle(self, cid: str, asked: float, slice_qty: float) -> None:
        """Status after a bar: done, still open (volume cap), or cut by the leverage rule."""
        order = self.orders[cid]
        left = order["quantity"] - order["filled"]
        if abs(left) <= _QTY_DUST * max(1.0, abs(order["quantity"])):
            order["status"] = "filled"
        elif abs(order["filled"] - (order["quantity"] - asked) - slice_qty) > _QTY_DUST * max(
            1.0, abs(slice_qty)
        ):
            # the leverage rule filled less than this bar's slice: the engine drops the rest
            order["status"] = "canceled" if order["filled"] != 0.0 else "rejected"
        elif order["filled"] != 0.0:
            order["status"] = "partially_filled"

    def _forget_old_orders(self) -> None:
        """Drop all but the newest ``_KEEP_FINAL`` final orders: the saved state would otherwise
        grow by an order a bar (protective stops are replaced every bar), and the runner only
        asks about orders it still has open."""
        final = [cid for cid, o in self.orders.items() if o["status"] not in ("new", "partially_filled")]
        for cid in final[:-_KEEP_FINAL]:
            del self.orders[cid]

    # -- persistence ----------------------------------------------------------------------------
    def _record(self, order: dict[str, Any]) -> OrderRecord:
        filled = order["filled"]
        return OrderRecord(
            client_order_id=order["client_order_id"],
            symbol=order["symbol"],
            quantity=order["quantity"],
            filled_quantity=filled,
            average_price=order["value"] / filled if filled else float("nan"),
            status=order["status"],
        )

    def _save(self) -> None:
        if self._persist is not None:
            self._persist(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The whole broker side as JSON-able data (NaN written as None)."""
        return {
            "version": 1,
            "symbols": list(self.symbols),
            "cash": self.cash,
            "shares": self.shares.tolist(),
            "marks": _nan_to_none(self.marks.tolist()),
            "closes": [_nan_to_none(row) for row in self._closes.tolist()],
            "orders": list(self.orders.values()),
            "fills": [f.__dict__ for f in self._fills],
            "fill_count": self._fill_count,
            "last_time": self.last_time,
            "id_prefix": self.id_prefix,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], spec: SimSpec | None = None,
        persist: Callable[[dict], None] | None = None,
    ) -> SimBroker:
        """Rebuild a broker saved by :meth:`to_dict`."""
        broker = cls(data["symbols"], spec, persist, data.get("id_prefix", "sim"))
        m = len(broker.symbols)
        broker.cash = float(data["cash"])
        broker.shares = np.asarray(data["shares"], np.float64)
        broker.marks = np.asarray(_none_to_nan(data["marks"]), np.float64)
        rows = [_none_to_nan(r) for r in data["closes"]]
        broker._closes = np.asarray(rows, np.float64).reshape(-1, m)
        broker.orders = {o["client_order_id"]: dict(o) for o in data["orders"]}
        broker._fills = [FillRecord(**f) for f in data["fills"]]
        broker._fill_count = int(data.get("fill_count", len(broker._fills)))
        broker.last_time = data["last_time"]
        return broker


def _nan_to_none(values: list) -> list:
    return [None if v != v else v for v in values]


def _none_to_nan(values: list) -> list:
    return [float("nan") if v is None else v for v in values]
