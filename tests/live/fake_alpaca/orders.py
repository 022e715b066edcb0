"""Order records of the fake: request validation, the mutable state and the Order wire format."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field

from framework.errors import BrokerError

from .sessions import iso

TIME_IN_FORCE = ("day", "gtc", "opg", "cls", "ioc", "fok")
CLOSED_STATUSES = frozenset(
    {"filled", "canceled", "expired", "rejected", "replaced", "done_for_day", "stopped",
     "suspended", "calculated"}
)
MAX_CLIENT_ORDER_ID = 128


class ApiReject(BrokerError):
    """An HTTP error the fake answers with: status, Alpaca error code and message."""

    def __init__(self, status: int, code: int | None, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict:
        """The JSON body Alpaca sends for this error (data API errors carry no code)."""
        return {"message": self.message} if self.code is None else {
            "code": self.code, "message": self.message}


def malformed(message: str) -> ApiReject:
    """Alpaca answers most order validation failures with 422 and the generic code 40010001."""
    return ApiReject(422, 40010001, message)


def number(value: float) -> str:
    """Alpaca's decimal strings: no exponent, no trailing zeros ("10", "0.5", "101.25")."""
    rounded = round(float(value), 9)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.9f}".rstrip("0").rstrip(".")


def positive(body: dict, key: str) -> float:
    """``body[key]`` as a positive float (JSON numbers and numeric strings are both accepted)."""
    value = body.get(key)
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise malformed(f"invalid {key}: {value!r} (expected a positive number)") from None
    if not math.isfinite(parsed) or parsed <= 0:
        raise malformed(f"{key} must be > 0, got {value!r}")
    return parsed


@dataclass
class OrderState:
    """One order as the fake tracks it; ``wire()`` renders the Alpaca JSON."""

    symbol: str
    side: str
    order_type: str
    time_in_force: str
    qty: float
    limit_price: float | None
    client_order_id: str
    submitted_ns: int
    seq: int
    extended_hours: bool = False
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "new"
    updated_ns: int = 0
    filled_qty: float = 0.0
    filled_notional: float = 0.0
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None
    replaced_ns: int | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    schedule: tuple[float, ...] = (1.0,)
    fills_done: int = 0
    cursor: dict[str, int] = field(default_factory=dict)
    forced: str | None = None
    expire_ns: int | None = None
    stop_price: float | None = None

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill or be canceled."""
        return self.status not in CLOSED_STATUSES

    @property
    def signed(self) -> float:
        """+1 for buys, -1 for sells."""
        return 1.0 if self.side == "buy" else -1.0

    def wire(self, asset_id: str) -> dict:
        """The Order JSON exactly as Alpaca's REST and trade_updates send it."""
        stamp = lambda ns: None if ns is None else iso(ns)  # noqa: E731
        avg = self.filled_notional / self.filled_qty if self.filled_qty else None
        return {
            "id": self.id, "client_order_id": self.client_order_id,
            "created_at": iso(self.submitted_ns), "updated_at": iso(self.updated_ns or self.submitted_ns),
            "submitted_at": iso(self.submitted_ns), "filled_at": stamp(self.filled_ns),
            "expired_at": stamp(self.expired_ns), "canceled_at": stamp(self.canceled_ns),
            "failed_at": stamp(self.failed_ns), "replaced_at": stamp(self.replaced_ns),
            "replaced_by": self.replaced_by, "replaces": self.replaces, "asset_id": asset_id,
            "symbol": self.symbol, "asset_class": "us_equity", "notional": None,
            "qty": number(self.qty), "filled_qty": number(self.filled_qty),
            "filled_avg_price": None if avg is None else number(avg),
            "order_class": "", "order_type": self.order_type, "type": self.order_type,
            "side": self.side, "position_intent": _intent(self.side),
            "time_in_force": self.time_in_force,
            "limit_price": None if self.limit_price is None else number(self.limit_price),
            "stop_price": None if self.stop_price is None else number(self.stop_price),
            "status": self.status, "extended_hours": self.extended_hours,
            "legs": None, "trail_percent": None, "trail_price": None, "hwm": None,
            "subtag": None, "source": None, "expires_at": stamp(self.expire_ns),
        }


def _intent(side: str) -> str:
    # Alpaca fills position_intent from the side when the client did not send one.
    return "buy_to_open" if side == "buy" else "sell_to_close"


def parse_order(body: object, symbols: set[str]) -> dict:
    """Validate a ``POST /v2/orders`` body; returns the fields of a new :class:`OrderState`."""
    if not isinstance(body, dict):
        raise ApiReject(400, 40010000, "request body format is invalid (expected a JSON object)")
    symbol = body.get("symbol")
    if symbol not in symbols:
        raise malformed(f"asset {symbol!r} not found (the fake trades only {sorted(symbols)})")
    if body.get("notional") is not None:
        raise malformed("notional orders are not supported by the fake; send qty instead")
    qty = positive(body, "qty")
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise malformed(f"invalid side: {side!r} (expected 'buy' or 'sell')")
    order_type = body.get("type", body.get("order_type"))
    if order_type not in ("market", "limit", "stop"):
        raise malformed(f"order type {order_type!r} is not supported by the fake "
                        "(market, limit, stop)")
    if body.get("order_class") not in (None, "", "simple"):
        raise malformed(f"order_class {body.get('order_class')!r} is not supported by the fake")
    tif = body.get("time_in_force")
    if tif not in TIME_IN_FORCE:
        raise malformed(f"invalid time_in_force: {tif!r} (expected one of {TIME_IN_FORCE})")
    if qty != int(qty) and tif != "day":
        raise malformed("fractional orders must be DAY orders")
    limit_price = None
    if order_type == "limit":
        limit_price = positive(body, "limit_price")
    elif body.get("limit_price") is not None:
        raise malformed(f"limit_price must not be set for {order_type} orders")
    stop_price = None
    if order_type == "stop":
        stop_price = positive(body, "stop_price")
        if round(stop_price, 2) != stop_price:
            raise malformed(f"invalid stop_price {stop_price}: sub-penny increment does not "
                            "fulfill minimum pricing criteria")
    elif body.get("stop_price") is not None:
        raise malformed(f"stop_price must not be set for {order_type} orders")
    return {"symbol": symbol, "side": side, "order_type": order_type, "time_in_force": tif,
            "qty": qty, "limit_price": limit_price, "stop_price": stop_price,
            "client_order_id": client_order_id(body.get("client_order_id")),
            "extended_hours": bool(body.get("extended_hours", False))}


def client_order_id(value: object) -> str:
    """The given client_order_id (validated) or a generated one, as Alpaca does when absent."""
    if value is None or value == "":
        return str(uuid.uuid4())
    if not isinstance(value, str):
        raise malformed(f"client_order_id must be a string, got {value!r}")
    if len(value) > MAX_CLIENT_ORDER_ID:
        raise malformed(
            f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters "
            f"(got {len(value)})")
    return value
