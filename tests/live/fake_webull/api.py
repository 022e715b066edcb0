"""Webull endpoints of the fake, over the shared exchange simulation of the fake Alpaca.

The order book, the fill model (market orders at the next bar's open, stops and limits on a
cross, partial-fill schedules, DAY expiry), positions and cash are ``fake_alpaca.market.Market``
itself, so a session against either fake trades identically; this module only speaks Webull.

Wire shapes are those of Webull's OpenAPI reference as far as it documents them (order
``items`` with ``filled_qty``/``filled_price``/``order_status``/``last_filled_time``; bars with
string prices and ``time`` as ``yyyy-MM-ddTHH:mm:ss.SSS+0000``). Assumptions where the reference
is silent: balances carry ``total_asset``/``total_cash_balance``/``total_market_value``;
positions are a list of ``{symbol, quantity, cost_price, last_price, ...}``; order lists are
``{"orders": [...], "pagination_key": ...}`` with the key absent on the last page; the bar list
is ``[{"symbol", "result": [bars, newest first]}]`` holding the latest ``count`` complete bars
in ``[start_time, end_time]`` (milliseconds, on the bar's time); a duplicate client order id is
HTTP 400 ``TRADE_PLACE_ORDER_REPEAT``; an unknown order 404 ``ORDER_NOT_FOUND``; a 429 is
``TOO_MANY_REQUESTS``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from tests.live.fake_alpaca.data import _visible
from tests.live.fake_alpaca.market import Market
from tests.live.fake_alpaca.orders import ApiReject, number
from tests.live.fake_alpaca.trading import DropConnection

from .auth import ACCOUNT_ID, Refused, TokenBook

MAX_CLIENT_ID = 40
_STATUS = {"new": "SUBMITTED", "accepted": "SUBMITTED", "pending_new": "SUBMITTED",
           "partially_filled": "PARTIAL_FILLED", "filled": "FILLED", "canceled": "CANCELLED",
           "expired": "CANCELLED", "replaced": "CANCELLED", "rejected": "FAILED"}
_TYPES = {"MARKET": "market", "LIMIT": "limit", "STOP_LOSS": "stop"}
_TIMESPANS = {"D": None, "M1": 1, "M5": 5, "M15": 15, "M30": 30, "M60": 60}


@dataclass(frozen=True)
class Call:
    """One verified request: method, path, query (last value per key), JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: object


def stamp(ns: int) -> str:
    """Webull's UTC time text with milliseconds: ``2016-01-04T14:30:00.000Z``."""
    text = pd.Timestamp(ns, tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[:-3] + "Z"


def instrument_id(symbol: str) -> str:
    return str(int(hashlib.sha256(symbol.encode()).hexdigest()[:8], 16))


class WebullApi:
    """Request handlers; each returns ``(status, body)`` or raises :class:`Refused`."""

    def __init__(self, market: Market, tokens: TokenBook, faults, page_size: int = 10) -> None:
        self.market, self.tokens, self.faults = market, tokens, faults
        self.page_size = page_size
        self.routes: dict[tuple[str, str], Callable[[Call], tuple[int, object]]] = {
            ("GET", "/openapi/config"): self.config,
            ("POST", "/auth/tokens/create"): self.create_token,
            ("POST", "/auth/tokens/check"): self.check_token,
            ("GET", "/trading/accounts/list"): self.accounts,
            ("GET", "/trading/assets/balances/get"): self.balance,
            ("GET", "/trading/assets/positions/list"): self.positions,
            ("POST", "/trading/orders/place"): self.place,
            ("POST", "/trading/orders/cancel"): self.cancel,
            ("GET", "/trading/orders/get"): self.detail,
            ("GET", "/trading/orders/open-orders/list"): self.open_orders,
            ("GET", "/trading/orders/historical-orders/list"): self.history,
            ("POST", "/market-data/stocks/bars/list"): self.bars,
            ("GET", "/market-data/stocks/snapshots/list"): self.snapshots,
        }

    def needs_token(self, path: str) -> bool:
        return self.faults.token_check_enabled and not path.startswith(("/openapi/config",
                                                                         "/auth/tokens/"))

    def handle(self, call: Call) -> tuple[int, object]:
        handler = self.routes.get((call.method, call.path))
        if handler is None:
            known = any(path == call.path for _, path in self.routes)
            raise Refused(405 if known else 404, "NOT_FOUND",
                          f"{call.method} {call.path} is not an endpoint of the fake")
        try:
            return handler(call)
        except ApiReject as reject:  # the shared market's Alpaca-style errors, in Webull's words
            raise _translate(reject) from None

    # -- auth ------------------------------------------------------------------------------
    def config(self, call: Call) -> tuple[int, object]:
        return 200, {"token_check_enabled": bool(self.faults.token_check_enabled)}

    def create_token(self, call: Call) -> tuple[int, object]:
        return 200, self.tokens.create(_body(call).get("token"))

    def check_token(self, call: Call) -> tuple[int, object]:
        return 200, self.tokens.check(_body(call).get("token"))

    # -- account ---------------------------------------------------------------------------
    def accounts(self, call: Call) -> tuple[int, object]:
        return 200, [{"account_id": ACCOUNT_ID, "account_number": "5FAKE0001",
                      "account_type": "CASH", "account_class": "INDIVIDUAL_CASH",
                      "account_label": "Test"}]

    def _account(self, call: Call) -> None:
        given = call.query.get("account_id") or _body(call).get("account_id")
        if given != ACCOUNT_ID:
            raise Refused(404, "ACCOUNT_NOT_FOUND", f"account {given!r} does not exist")

    def balance(self, call: Call) -> tuple[int, object]:
        self._account(call)
        market = self.market
        with market.lock:
            cash, equity = market.cash, market.equity()
        held = equity - cash
        return 200, {
            "account_id": ACCOUNT_ID, "total_asset_currency": "USD",
            "total_asset": number(equity), "total_market_value": number(held),
            "total_cash_balance": number(cash), "total_unrealized_profit_loss": "0",
            "account_currency_assets": [{"currency": "USD", "net_liquidation_value": number(equity),
                                         "cash_balance": number(cash),
                                         "buying_power": number(market.buying_power()),
                                         "market_value": number(held)}]}

    def positions(self, call: Call) -> tuple[int, object]:
        self._account(call)
        rows = []
        for symbol, qty in sorted(self.market.position_qty().items()):
            entry = self.market.position_entry(symbol)
            mark = self.market.mark(symbol)
            rows.append({"symbol": symbol, "instrument_id": instrument_id(symbol),
                         "instrument_type": "EQUITY", "currency": "USD", "quantity": number(qty),
                         "cost_price": number(entry[1] if entry else mark),
                         "last_price": number(mark), "market_value": number(qty * mark)})
        return 200, rows

    # -- orders ----------------------------------------------------------------------------
    def place(self, call: Call) -> tuple[int, object]:
        self._account(call)
        orders = _body(call).get("new_orders")
        if not isinstance(orders, list) or len(orders) != 1 or not isinstance(orders[0], dict):
            raise Refused(400, "ILLEGAL_PARAMETER", "new_orders must hold exactly one order "
                          "(combo orders are not supported by the fake)")
        fields = _alpaca_fields(orders[0], set(self.market.series))
        accepted = self.market.submit(fields)
        failure = self.faults.take_accept_then_fail()
        if failure == "drop":
            raise DropConnection()
        if failure is not None:
            return int(failure), {"error_code": "SYSTEM_ERROR",
                                  "message": f"injected HTTP {failure} (fake fault)"}
        return 200, {"client_order_id": accepted["client_order_id"], "order_id": accepted["id"]}

    def cancel(self, call: Call) -> tuple[int, object]:
        self._account(call)
        wid = _body(call).get("client_order_id")
        order = self._order(wid)
        try:
            self.market.cancel(order["id"])
        except ApiReject as reject:
            raise Refused(400, "ORDER_CANNOT_CANCEL", reject.message) from None
        return 200, {"client_order_id": wid, "order_id": order["id"]}

    def _order(self, wid: str | None) -> dict:
        try:
            return self.market.order_by_client_id(wid or "")
        except ApiReject:
            raise Refused(404, "ORDER_NOT_FOUND", "No order record.") from None

    def detail(self, call: Call) -> tuple[int, object]:
        self._account(call)
        return 200, self.wire(self._order(call.query.get("client_order_id")))

    def open_orders(self, call: Call) -> tuple[int, object]:
        self._account(call)
        rows = [o for o in self.market.orders() if _STATUS.get(o["status"]) in
                ("SUBMITTED", "PARTIAL_FILLED")]
        return 200, self._page(rows, call.query.get("pagination_key"))

    def history(self, call: Call) -> tuple[int, object]:
        self._account(call)
        low = _time(call.query.get("start_time"))
        high = _time(call.query.get("end_time"))
        rows = [o for o in self.market.orders()
                if (low is None or pd.Timestamp(o["submitted_at"]) >= low)
                and (high is None or pd.Timestamp(o["submitted_at"]) <= high)]
        rows.reverse()  # newest first, as order histories are shown
        return 200, self._page(rows, call.query.get("pagination_key"))

    def _page(self, rows: list[dict], key: str | None) -> dict:
        start = int(key) if key and key.isdigit() else 0
        chosen = rows[start:start + self.page_size]
        out: dict = {"orders": [self.wire(o) for o in chosen]}
        if start + self.page_size < len(rows):
            out["pagination_key"] = str(start + self.page_size)
        return out

    def wire(self, order: dict) -> dict:
        """An order as ``/trading/orders/get`` returns it."""
        last = [f["time"] for f in self.market.fills()
                if f["client_order_id"] == order["client_order_id"]]
        item = {
            "symbol": order["symbol"], "instrument_id": instrument_id(order["symbol"]),
            "category": "US_STOCK", "currency": "USD", "side": order["side"].upper(),
            "qty": order["qty"], "filled_qty": order["filled_qty"],
            "filled_price": order["filled_avg_price"] or "0",
            "order_status": _STATUS.get(order["status"], "SUBMITTED"),
            "order_type": {v: k for k, v in _TYPES.items()}[order["order_type"]],
            "place_time": stamp(pd.Timestamp(order["submitted_at"]).value),
            "last_filled_time": stamp(last[-1].value) if last else None,
            "limit_price": order["limit_price"], "stop_price": order["stop_price"],
        }
        return {"account_id": ACCOUNT_ID, "client_order_id": order["client_order_id"],
                "order_id": order["id"], "combo_type": "NORMAL", "combo_ticker_type": "STOCK",
                "tif": order["time_in_force"].upper(), "extended_hours_trading": False,
                "items": [item]}

    # -- market data -----------------------------------------------------------------------
    def bars(self, call: Call) -> tuple[int, object]:
        body = _body(call)
        symbols, timespan = body.get("symbols"), body.get("timespan")
        if not isinstance(symbols, list) or not symbols:
            raise Refused(400, "ILLEGAL_PARAMETER", "symbols must be a non-empty list")
        if body.get("category") != "US_STOCK":
            raise Refused(400, "UNSUPPORTED_CATEGORY", f"category {body.get('category')!r}")
        if timespan not in _TIMESPANS:
            raise Refused(400, "UNSUPPORTED_TIMESPAN", f"timespan {timespan!r}")
        minutes = _TIMESPANS[timespan]
        if (minutes is None) != (self.market.timeframe == "1Day"):
            raise Refused(400, "UNSUPPORTED_TIMESPAN",
                          f"timespan {timespan} is not served from {self.market.timeframe} seeds")
        count = int(body.get("count") or 200)
        if not 1 <= count <= 1200:
            raise Refused(400, "ILLEGAL_PARAMETER", f"count {count}; expected 1..1200")
        low, high = _millis(body.get("start_time")), _millis(body.get("end_time"))
        out = []
        for symbol in symbols:
            series = self.market.series.get(symbol)
            if series is None:
                raise Refused(400, "INVALID_SYMBOL", f"Wrong symbol {symbol!r}.")
            with self.market.lock:
                rows = _visible(series, minutes, self.market.now_ns)
            rows = [r for r in rows if (low is None or r["t"] >= low)
                    and (high is None or r["t"] <= high)][-count:]
            out.append({"symbol": symbol, "result": [_bar(r) for r in reversed(rows)]})
        return 200, out

    def snapshots(self, call: Call) -> tuple[int, object]:
        rows = []
        for symbol in (call.query.get("symbols") or "").split(","):
            if symbol not in self.market.series:
                raise Refused(400, "INVALID_SYMBOL", f"Wrong symbol {symbol!r}.")
            rows.append({"symbol": symbol, "instrument_id": instrument_id(symbol),
                         "price": number(self.market.mark(symbol)),
                         "trade_time": stamp(self.market.now_ns)})
        return 200, rows


def _body(call: Call) -> dict:
    return call.body if isinstance(call.body, dict) else {}


def _time(text: str | None) -> pd.Timestamp | None:
    if not text:
        return None
    try:
        return pd.Timestamp(text).tz_convert("UTC")
    except (TypeError, ValueError):
        raise Refused(400, "ILLEGAL_PARAMETER", f"time {text!r}; expected "
                      "yyyy-MM-ddTHH:mm:ss.SSSZ") from None


def _millis(value: object) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value) * 1_000_000
    except (TypeError, ValueError):
        raise Refused(400, "ILLEGAL_PARAMETER", f"time {value!r}; expected milliseconds") from None


def _bar(row: dict) -> dict:
    text = pd.Timestamp(row["t"], tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    return {"time": text, "open": number(row["o"]), "high": number(row["h"]),
            "low": number(row["l"]), "close": number(row["c"]), "volume": number(row["v"])}


def _alpaca_fields(order: dict, symbols: set[str]) -> dict:
    """Validate one Webull order and express it as the shared market's order body."""
    cid = order.get("client_order_id")
    if not isinstance(cid, str) or not cid or len(cid) > MAX_CLIENT_ID:
        raise Refused(400, "ILLEGAL_PARAMETER", f"client_order_id {cid!r}: required, at most "
                      f"{MAX_CLIENT_ID} characters")
    checks = {"instrument_type": ("EQUITY",), "market": ("US",), "entrust_type": ("QTY",),
              "side": ("BUY", "SELL"), "time_in_force": ("DAY", "GTC"),
              "order_type": tuple(_TYPES), "combo_type": ("NORMAL",)}
    for key, allowed in checks.items():
        if order.get(key) not in allowed:
            raise Refused(400, "ILLEGAL_PARAMETER", f"{key} {order.get(key)!r}; expected one of "
                          f"{allowed}")
    if order.get("symbol") not in symbols:
        raise Refused(400, "ORDER_TICKER_NOT_FOUND", f"symbol {order.get('symbol')!r} cannot be "
                      "traded")
    fields = {"symbol": order["symbol"], "qty": _positive(order, "quantity"),
              "side": order["side"].lower(), "type": _TYPES[order["order_type"]],
              "time_in_force": order["time_in_force"].lower(), "client_order_id": cid}
    if fields["type"] == "limit":
        fields["limit_price"] = _positive(order, "limit_price")
    if fields["type"] == "stop":
        fields["stop_price"] = _positive(order, "stop_price")
    return fields


def _positive(order: dict, key: str) -> float:
    try:
        value = float(order.get(key))
    except (TypeError, ValueError):
        raise Refused(400, "ILLEGAL_PARAMETER", f"{key} {order.get(key)!r}; expected a "
                      "positive decimal string") from None
    if not value > 0:
        raise Refused(400, "ILLEGAL_PARAMETER", f"{key} must be > 0, got {order.get(key)!r}")
    return value


def _translate(reject: ApiReject) -> Refused:
    if "unique" in reject.message:
        return Refused(400, "TRADE_PLACE_ORDER_REPEAT", "Repeat orders")
    if reject.status == 403:
        return Refused(400, "ORDER_BUYING_POWER_NOT_ENOUGH", reject.message)
    if reject.status == 404:
        return Refused(404, "ORDER_NOT_FOUND", "No order record.")
    return Refused(400, "ILLEGAL_PARAMETER", reject.message)
