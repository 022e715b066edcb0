"""Trading endpoints (``/v2/...`` on the paper host) of the fake, as plain functions.

Each handler takes the :class:`~.market.Market` and a :class:`Call` and returns ``(status,
body)``; errors are raised as :class:`~.orders.ApiReject` and rendered by ``rest.py``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .market import Market, asset_id
from .orders import CLOSED_STATUSES, ApiReject, malformed, number
from .sessions import NEW_YORK, iso


@dataclass(frozen=True)
class Call:
    """One parsed REST request: method, path, last value of each query key, JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: object = None
    match: re.Match | None = None


class DropConnection(Exception):
    """Raised by a handler to close the connection without any response."""


# ------------------------------------------------------------- query helpers
def query_bool(call: Call, key: str) -> bool | None:
    """``True``/``true``/``False``/``false`` (the SDK sends Python's ``str(bool)``)."""
    value = call.query.get(key)
    if value is None or value == "":
        return None
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise malformed(f"invalid {key}: {value!r} (expected true or false)")


def query_int(call: Call, key: str, default: int, maximum: int) -> int:
    """A positive integer query value no larger than ``maximum``."""
    value = call.query.get(key)
    if value is None or value == "":
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise malformed(f"invalid {key}: {value!r} (expected an integer)") from None
    if not 1 <= parsed <= maximum:
        raise malformed(f"invalid {key}: {parsed} (expected 1..{maximum})")
    return parsed


def query_time(call: Call, key: str, code: int | None = 40010001) -> int | None:
    """An RFC 3339 or date query value as UTC nanoseconds (dates are New York midnight)."""
    value = call.query.get(key)
    if value is None or value == "":
        return None
    # A literal '+' in a hand-built query string arrives as a space after URL decoding.
    text = value.replace(" ", "+")
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise ApiReject(422 if code else 400, code,
                        f"invalid {key}: {value!r} (expected RFC 3339)") from None
    stamp = stamp.tz_localize(NEW_YORK) if stamp.tzinfo is None else stamp
    return stamp.tz_convert("UTC").value


def query_choice(call: Call, key: str, choices: tuple[str, ...], default: str) -> str:
    """One of ``choices`` (case-insensitive), else 422 naming the accepted values."""
    value = (call.query.get(key) or default).lower()
    if value not in choices:
        raise malformed(f"invalid {key}: {call.query.get(key)!r} (expected one of {choices})")
    return value


def query_list(call: Call, key: str) -> list[str]:
    """A comma-separated list, empty items dropped."""
    return [item for item in (call.query.get(key) or "").split(",") if item]


# ------------------------------------------------------------------ account
def account(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/account``."""
    with market.lock:
        equity = market.equity()
        longs = sum(q * market.mark(s) for s, q in market.position_qty().items() if q > 0)
        shorts = sum(q * market.mark(s) for s, q in market.position_qty().items() if q < 0)
        cash = market.cash
    money = {key: number(equity) for key in (
        "buying_power", "regt_buying_power", "daytrading_buying_power",
        "non_marginable_buying_power", "options_buying_power", "equity", "last_equity",
        "portfolio_value")}
    zero = {key: "0" for key in ("initial_margin", "maintenance_margin",
                                  "last_maintenance_margin", "sma", "accrued_fees",
                                  "pending_transfer_in", "pending_transfer_out")}
    return 200, {
        "id": market.account_id, "account_number": "PA0FAKE00001", "status": "ACTIVE",
        "crypto_status": "ACTIVE", "currency": "USD", "cash": number(cash),
        "long_market_value": number(longs), "short_market_value": number(shorts),
        "multiplier": "1", "pattern_day_trader": False, "trading_blocked": False,
        "transfers_blocked": False, "account_blocked": False, "trade_suspended_by_user": False,
        "shorting_enabled": True, "daytrade_count": 0, "options_approved_level": 0,
        "options_trading_level": 0, "created_at": "2020-01-01T00:00:00Z", **money, **zero}


def activities(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/account/activities[/FILL]``: fills only, paged by the last activity id."""
    kind = call.match.group("kind") if call.match and call.match.group("kind") else None
    kinds = [kind] if kind else query_list(call, "activity_types") or ["FILL"]
    if "FILL" not in [k.upper() for k in kinds]:
        return 200, []
    after, until = query_time(call, "after"), query_time(call, "until")
    newest_first = query_choice(call, "direction", ("asc", "desc"), "desc") == "desc"
    size = query_int(call, "page_size", 100, 100)
    with market.lock:
        items = list(enumerate(market.activities))
    items = [(i, a) for i, a in items if (after is None or a["_ns"] > after)
             and (until is None or a["_ns"] < until)]
    items.sort(key=lambda pair: (pair[1]["_ns"], pair[0]), reverse=newest_first)
    token = call.query.get("page_token")
    if token:
        ids = [a["id"] for _, a in items]
        if token not in ids:
            raise malformed(f"invalid page_token: {token!r} (use the id of the last activity "
                            "of the previous page)")
        items = items[ids.index(token) + 1:]
    return 200, [{k: v for k, v in a.items() if k != "_ns"} for _, a in items[:size]]


# ---------------------------------------------------------------- positions
def _position_json(market: Market, symbol: str) -> dict:
    qty, avg = market.position_entry(symbol)
    price, lastday = market.mark(symbol), market.lastday_price(symbol)
    value, cost = qty * price, qty * avg
    change = (price - lastday) / lastday if lastday else 0.0
    intraday = qty * (price - lastday)
    return {
        "asset_id": asset_id(symbol), "symbol": symbol, "exchange": "ARCA",
        "asset_class": "us_equity", "asset_marginable": True, "avg_entry_price": number(avg),
        "qty": number(qty), "qty_available": number(qty), "side": "long" if qty > 0 else "short",
        "market_value": number(value), "cost_basis": number(cost),
        "unrealized_pl": number(value - cost),
        "unrealized_plpc": number((value - cost) / abs(cost)) if cost else "0",
        "unrealized_intraday_pl": number(intraday),
        "unrealized_intraday_plpc": number(intraday / abs(qty * lastday)) if lastday else "0",
        "current_price": number(price), "lastday_price": number(lastday),
        "change_today": number(change)}


def _symbol(market: Market, call: Call) -> str:
    given = call.match.group("symbol")
    for symbol in market.series:
        if given.upper() == symbol.upper() or given == asset_id(symbol):
            return symbol
    return given


def positions(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/positions``."""
    with market.lock:
        return 200, [_position_json(market, s) for s in sorted(market.position_qty())]


def position(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/positions/{symbol}``: 404 when flat."""
    symbol = _symbol(market, call)
    with market.lock:
        if symbol not in market.position_qty():
            raise ApiReject(404, 40410000, "position does not exist")
        return 200, _position_json(market, symbol)


def close_position(market: Market, call: Call) -> tuple[int, object]:
    """``DELETE /v2/positions/{symbol}?qty=|percentage=``: a market order that reduces it."""
    symbol = _symbol(market, call)
    qty_text, pct_text = call.query.get("qty"), call.query.get("percentage")
    if qty_text and pct_text:
        raise malformed("only one of qty or percentage may be given")
    with market.lock:
        held = market.position_qty().get(symbol)
        if held is None:
            raise ApiReject(404, 40410000, f"position not found: {symbol}")
        qty = abs(held)
        if qty_text:
            qty = _number_param("qty", qty_text, 0.0, math.inf)
            if qty > abs(held) + 1e-9:
                raise ApiReject(403, 40310000, "insufficient qty available for order "
                                f"(requested: {number(qty)}, available: {number(abs(held))})")
        elif pct_text:
            qty = round(abs(held) * _number_param("percentage", pct_text, 0.0, 100.0) / 100, 9)
        body = {"symbol": symbol, "qty": qty, "side": "sell" if held > 0 else "buy",
                "type": "market", "time_in_force": "day"}
        return 200, market.submit(body, check_buying_power=False)


def _number_param(key: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise malformed(f"invalid {key}: {text!r} (expected a number)") from None
    if not low < value <= high:
        raise malformed(f"invalid {key}: {text!r} (expected a number in ({low:g}, {high:g}])")
    return value


def close_all_positions(market: Market, call: Call) -> tuple[int, object]:
    """``DELETE /v2/positions[?cancel_orders=true]``: 207 with one entry per position."""
    cancel = query_bool(call, "cancel_orders")
    with market.lock:
        if cancel:
            market.cancel_all()
        results = []
        for symbol, held in sorted(market.position_qty().items()):
            body = {"symbol": symbol, "qty": abs(held), "side": "sell" if held > 0 else "buy",
                    "type": "market", "time_in_force": "day"}
            order = market.submit(body, check_buying_power=False)
            results.append({"symbol": symbol, "status": 200, "order_id": order["id"],
                            "body": order})
        return 207, results


# ------------------------------------------------------------------- orders
def submit_order(market: Market, call: Call) -> tuple[int, object]:
    """``POST /v2/orders`` including the accept-then-fail fault."""
    order = market.submit(call.body)
    failure = market.faults.take_accept_then_fail()
    if failure == "drop":
        raise DropConnection()
    if failure is not None:
        return int(failure), injected_body(int(failure))
    return 200, order


def injected_body(status: int) -> dict:
    """JSON body of an injected failure, shaped like Alpaca errors so ``APIError.code`` works."""
    if status == 429:
        return {"code": 42910000, "message": "rate limit exceeded"}
    return {"code": status * 100000 + 10000, "message": f"injected HTTP {status} (fake fault)"}


def list_orders(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/orders`` with status, limit, after, until, direction, nested, symbols, side."""
    status = query_choice(call, "status", ("open", "closed", "all"), "open")
    limit = query_int(call, "limit", 50, 500)
    after, until = query_time(call, "after"), query_time(call, "until")
    newest_first = query_choice(call, "direction", ("asc", "desc"), "desc") == "desc"
    query_bool(call, "nested")  # validated only: the fake has no multi-leg orders
    symbols = set(query_list(call, "symbols"))
    side = call.query.get("side")
    if side not in (None, "", "buy", "sell"):
        raise malformed(f"invalid side: {side!r} (expected buy or sell)")

    def keep(order) -> bool:
        closed = order.status in CLOSED_STATUSES
        return ((status == "all" or (status == "closed") == closed)
                and (after is None or order.submitted_ns > after)
                and (until is None or order.submitted_ns < until)
                and (not symbols or order.symbol in symbols)
                and (not side or order.side == side))

    return 200, market.query_orders(keep, newest_first, limit)


def order_by_client_id(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/orders:by_client_order_id?client_order_id=``."""
    client_id = call.query.get("client_order_id")
    if not client_id:
        raise malformed("client_order_id is required")
    return 200, market.order_by_client_id(client_id)


def get_order(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/orders/{id}``."""
    return 200, market.order_by_id(call.match.group("id"))


def replace_order(market: Market, call: Call) -> tuple[int, object]:
    """``PATCH /v2/orders/{id}``."""
    return 200, market.replace(call.match.group("id"), call.body)


def cancel_order(market: Market, call: Call) -> tuple[int, object]:
    """``DELETE /v2/orders/{id}``: 204 with no body."""
    market.cancel(call.match.group("id"))
    return 204, None


def cancel_orders(market: Market, call: Call) -> tuple[int, object]:
    """``DELETE /v2/orders``: 207 Multi-Status."""
    return 207, market.cancel_all()


# ------------------------------------------------------- clock, calendar, assets
def clock(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/clock`` from the fake clock and the XNYS sessions (New York offsets)."""
    with market.lock:
        now = market.now_ns
    table = market.sessions
    return 200, {"timestamp": iso(now, NEW_YORK), "is_open": table.is_open(now),
                 "next_open": iso(table.next_open(now), NEW_YORK),
                 "next_close": iso(table.next_close(now), NEW_YORK)}


def calendar(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/calendar?start=&end=`` (dates, inclusive)."""
    for key in ("start", "end"):
        value = call.query.get(key)
        if value and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise malformed(f"invalid {key}: {value!r} (expected YYYY-MM-DD)")
    return 200, market.sessions.calendar_rows(call.query.get("start"), call.query.get("end"))


def _asset_json(symbol: str) -> dict:
    return {"id": asset_id(symbol), "class": "us_equity", "exchange": "ARCA", "symbol": symbol,
            "name": f"{symbol} (fake asset)", "status": "active", "tradable": True,
            "marginable": True, "shortable": True, "easy_to_borrow": True, "fractionable": True,
            "maintenance_margin_requirement": 30, "attributes": []}


def assets(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/assets``."""
    return 200, [_asset_json(symbol) for symbol in market.series]


def asset(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/assets/{symbol}``: 404 for symbols the fake was not seeded with."""
    symbol = _symbol(market, call)
    if symbol not in market.series:
        raise ApiReject(404, 40410000, f"asset not found for {symbol}")
    return 200, _asset_json(symbol)


Handler = Callable[[Market, Call], tuple[int, object]]
ROUTES: list[tuple[str, re.Pattern, Handler]] = [
    (method, re.compile(pattern + r"/?\Z"), handler) for method, pattern, handler in (
        ("GET", r"/v2/account", account),
        ("GET", r"/v2/account/activities(?:/(?P<kind>[A-Za-z_]+))?", activities),
        ("GET", r"/v2/positions", positions),
        ("DELETE", r"/v2/positions", close_all_positions),
        ("GET", r"/v2/positions/(?P<symbol>[^/]+)", position),
        ("DELETE", r"/v2/positions/(?P<symbol>[^/]+)", close_position),
        ("POST", r"/v2/orders", submit_order),
        ("GET", r"/v2/orders", list_orders),
        ("DELETE", r"/v2/orders", cancel_orders),
        ("GET", r"/v2/orders:by_client_order_id", order_by_client_id),
        ("GET", r"/v2/orders/(?P<id>[^/]+)", get_order),
        ("PATCH", r"/v2/orders/(?P<id>[^/]+)", replace_order),
        ("DELETE", r"/v2/orders/(?P<id>[^/]+)", cancel_order),
        ("GET", r"/v2/clock", clock),
        ("GET", r"/v2/calendar", calendar),
        ("GET", r"/v2/assets", assets),
        ("GET", r"/v2/assets/(?P<symbol>[^/]+)", asset),
    )]
