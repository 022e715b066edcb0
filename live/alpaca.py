"""Alpaca paper trading through the real ``alpaca-py`` client: connection, retries, broker.

Facts this module is built around (``../shared/notes/alpaca.md``):

* the SDK's REST client passes no timeout to ``requests``, so a hung server would block forever:
  every request here goes through an adapter with a timeout and the rate limiter;
* the SDK silently retries *every* call, order submits included, on 429/504; a retried submit that
  had been accepted comes back as 422 ``client_order_id must be unique``. We switch the SDK's
  retries off and apply our own policy instead: reads are retried with backoff; a submit whose
  outcome is unclear (timeout, dropped connection, 5xx) is resolved by looking the order up by its
  client id, and is only sent again when the broker says it never got it;
* Alpaca answers 422/40010001 for a duplicate client order id: that means "look it up", not
  "rejected" (:class:`~live.broker.DuplicateOrderError`);
* ``TradingClient`` has no account-activities method; fills come from the raw
  ``GET /v2/account/activities/FILL`` (paged by ``page_token`` = id of the last activity).

Keys come only from the environment (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``);
``APCA_API_BASE_URL`` and ``APCA_API_DATA_URL`` may point the clients at another host (tests use a
local fake). Only paper trading is allowed: a live-trading host is refused.
"""

from __future__ import annotations

import math
import time as _time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import requests
from requests.adapters import HTTPAdapter

from framework.errors import BrokerError, ConfigError
from live.broker import (
    AccountSnapshot,
    BrokerUnavailableError,
    DuplicateOrderError,
    FillRecord,
    OrderRecord,
    OrderRequest,
    UnknownOrderError,
    UnknownOutcomeError,
    lookup_after_unclear,
)
from live.ratelimit import RateLimiter

KEY_VARIABLE, SECRET_VARIABLE = "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"
TRADING_URL_VARIABLE, DATA_URL_VARIABLE = "APCA_API_BASE_URL", "APCA_API_DATA_URL"
PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_HOST = "api.alpaca.markets"
DUPLICATE_CODE = 40010001  # "client_order_id must be unique"
_TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})

# Alpaca order statuses -> the runner's vocabulary (live.broker.OPEN_STATUSES / FINAL_STATUSES)
_STATUS = {
    "new": "new", "accepted": "new", "pending_new": "new", "accepted_for_bidding": "new",
    "held": "new", "calculated": "new", "pending_replace": "new", "pending_review": "new",
    "partially_filled": "partially_filled", "pending_cancel": "partially_filled",
    "filled": "filled", "canceled": "canceled", "expired": "canceled", "done_for_day": "canceled",
    "replaced": "canceled", "stopped": "canceled", "suspended": "rejected", "rejected": "rejected",
}


@dataclass(frozen=True)
class AlpacaSpec:
    """How to reach Alpaca (paper) and how patient to be with it.

    Attributes
    ----------
    trading_url, data_url : str, optional
        Base URLs instead of Alpaca's paper trading and market-data hosts.
    feed : str
        Market-data feed, ``"iex"`` (free plan) or ``"sip"``.
    timeout : float
        Seconds per HTTP request.
    max_requests_per_min : int
        Our own ceiling, kept below Alpaca's 200 requests per minute.
    attempts : int
        Tries of a read (and of a submit that was clearly not received, e.g. a 429) before
        giving up with :class:`BrokerUnavailableError`.
    backoff : float
        Seconds before the first retry; doubles each time.
    """

    trading_url: str | None = None
    data_url: str | None = None
    feed: str = "iex"
    timeout: float = 10.0
    max_requests_per_min: int = 180
    attempts: int = 4
    backoff: float = 0.5

    def __post_init__(self) -> None:
        host = (self.trading_url or PAPER_URL).split("://", 1)[-1].split("/", 1)[0]
        if host == LIVE_HOST:
            raise ConfigError(
                f"{TRADING_URL_VARIABLE} points at {host}, Alpaca's LIVE trading host; fw trades "
                f"paper accounts only. Use {PAPER_URL} (the default) or unset the variable."
            )
        if self.feed not in ("iex", "sip"):
            raise ConfigError(f"alpaca feed {self.feed!r}; expected 'iex' (free plan) or 'sip'.")
        for name in ("timeout", "backoff"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"alpaca {name} {getattr(self, name)!r}; expected seconds > 0.")
        if self.max_requests_per_min < 1 or self.attempts < 1:
            raise ConfigError(
                f"alpaca max_requests_per_min={self.max_requests_per_min}, attempts="
                f"{self.attempts}; both must be at least 1."
            )

    @property
    def trading_host(self) -> str:
        return self.trading_url or PAPER_URL

    @classmethod
    def from_environment(cls, environ: Mapping[str, str], **overrides: Any) -> AlpacaSpec:
        """The spec with URL overrides from ``APCA_API_BASE_URL`` / ``APCA_API_DATA_URL``."""
        urls = {"trading_url": environ.get(TRADING_URL_VARIABLE) or None,
                "data_url": environ.get(DATA_URL_VARIABLE) or None}
        return cls(**{**urls, **overrides})


def alpaca_keys(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """The API key id and secret from the environment or ``.env`` (never from YAML)."""
    from framework.secrets import load_secrets

    secrets = load_secrets(environ=environ) if environ is not None else load_secrets()
    missing = [n for n in (KEY_VARIABLE, SECRET_VARIABLE) if not secrets.get(n)]
    if missing:
        raise ConfigError(
            f"the alpaca broker needs {' and '.join(missing)}; export them (paper keys from "
            "https://app.alpaca.markets, 'Paper' account) or put them in a .env file."
        )
    return secrets.get(KEY_VARIABLE), secrets.get(SECRET_VARIABLE)


class _PacedAdapter(HTTPAdapter):
    """Every request: wait for the rate limiter, apply a timeout, read the limit headers."""

    def __init__(self, timeout: float, limiter: RateLimiter) -> None:
        super().__init__()
        self._timeout, self._limiter = timeout, limiter

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        self._limiter.acquire()
        response = super().send(request, **kwargs)
        self._limiter.observe(response.headers)
        if response.status_code == 429:
            self._limiter.on_429(_retry_after(response.headers))
        return response


def _retry_after(headers: Mapping[str, str]) -> float | None:
    try:
        return float(headers["Retry-After"])
    except (KeyError, TypeError, ValueError):
        return None


def _sdk():
    """alpaca-py's pieces, imported lazily (the ``live`` extra) with a clear error."""
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="websockets.legacy is deprecated")
            from alpaca.common.exceptions import APIError
            from alpaca.data.historical import StockHistoricalDataClient
            from alpaca.trading.client import TradingClient
    except ImportError as exc:
        raise ConfigError(
            "the alpaca broker needs alpaca-py; install it with `pip install 'fw[live]'`."
        ) from exc
    return APIError, TradingClient, StockHistoricalDataClient


def api_status(exc: BaseException) -> int | None:
    """HTTP status of an alpaca-py ``APIError`` (None for network errors)."""
    return getattr(exc, "status_code", None)


def api_code(exc: BaseException) -> int | None:
    """Alpaca's error code from the JSON body, if any (``APIError.code`` raises on non-JSON)."""
    try:
        return int(exc.code)  # type: ignore[attr-defined]
    except (ValueError, KeyError, TypeError):  # the body was not JSON or had no code: there is none
        return None


class AlpacaConnection:
    """The SDK clients, with our timeout, rate limit and retry policy.

    Parameters
    ----------
    spec : AlpacaSpec
    keys : (str, str)
        API key id and secret.
    limiter : RateLimiter, optional
        Shared by the trading and data clients (default: ``spec.max_requests_per_min``).
    sleep : callable
        Waits between retries (tests pass a recorder).
    """

    def __init__(self, spec: AlpacaSpec, keys: tuple[str, str],
                 limiter: RateLimiter | None = None,
                 sleep: Callable[[float], None] = _time.sleep) -> None:
        api_error, trading_class, data_class = _sdk()
        self.spec, self._sleep, self.api_error = spec, sleep, api_error
        self.limiter = limiter or RateLimiter(limit=spec.max_requests_per_min, period=60.0)
        self.trading = trading_class(keys[0], keys[1], paper=True, url_override=spec.trading_url)
        # raw dicts ({symbol: [{"t", "o", ...}]}): no pandas round trip through the SDK models
        self.data = data_class(keys[0], keys[1], raw_data=True, url_override=spec.data_url)
        for client in (self.trading, self.data):
            client._retry = 0  # the SDK would resend submits on 429/504; our policy decides
            adapter = _PacedAdapter(spec.timeout, self.limiter)
            for prefix in ("http://", "https://"):
                client._session.mount(prefix, adapter)

    def read(self, what: str, call: Callable[[], Any]) -> Any:
        """Run a read-only call, retrying transient failures with backoff."""
        delay = self.spec.backoff
        for attempt in range(1, self.spec.attempts + 1):
            try:
                return call()
            except (requests.RequestException, OSError) as exc:
                reason = f"network error: {exc}"
            except self.api_error as exc:
                if api_status(exc) not in _TRANSIENT:
                    raise
                reason = f"HTTP {api_status(exc)}"
            if attempt == self.spec.attempts:
                raise BrokerUnavailableError(
                    f"alpaca: {what} failed {attempt} times (last: {reason}) at "
                    f"{self.spec.trading_host}; check the network and Alpaca's status page, then "
                    "restart `fw paper` (it resumes from the store)."
                )
            self._sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover


def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _value(enum_or_text: Any) -> str:
    return str(getattr(enum_or_text, "value", enum_or_text))


class AlpacaBroker:
    """The :class:`~live.broker.Broker` protocol over an Alpaca paper account.

    Parameters
    ----------
    symbols : sequence of str
        The run's symbols; fills and positions of other symbols in the account are reported as
        they are (the runner's reconciliation then refuses to trade beside them).
    connection : AlpacaConnection
    since : pandas.Timestamp, optional
        Fills before this time are not the run's (the run's creation time).
    """

    name = "alpaca"

    def __init__(self, symbols: Sequence[str], connection: AlpacaConnection,
                 since: pd.Timestamp | None = None) -> None:
        self.symbols = tuple(symbols)
        self.conn = connection
        self.since = since
        self._fills: list[FillRecord] = []
        self._cursor: str | None = None  # id of the last activity read
        self._client_ids: dict[str, str] = {}  # broker order id -> client order id

    # -- account ------------------------------------------------------------------------------
    def account(self) -> AccountSnapshot:
        acct = self.conn.read("GET /v2/account", self.conn.trading.get_account)
        return AccountSnapshot(cash=_float(acct.cash), equity=_float(acct.equity))

    def positions(self) -> Mapping[str, float]:
        rows = self.conn.read("GET /v2/positions", self.conn.trading.get_all_positions)
        out = {}
        for row in rows:
            qty = _float(row.qty)
            if _value(row.side) == "short" and qty > 0:
                qty = -qty
            if qty != 0.0:
                out[row.symbol] = qty
        return out

    def clock(self) -> pd.Timestamp:
        """The broker's current time (what market time is measured against)."""
        clock = self.conn.read("GET /v2/clock", self.conn.trading.get_clock)
        return pd.Timestamp(clock.timestamp).tz_convert("UTC")

    def calendar(self, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple]:
        """The broker's trading days in [start, end] as (date, open, close) rows."""
        from alpaca.trading.requests import GetCalendarRequest

        request = GetCalendarRequest(start=pd.Timestamp(start).date(), end=pd.Timestamp(end).date())
        rows = self.conn.read("GET /v2/calendar",
                              lambda: self.conn.trading.get_calendar(request))
        return [(r.date, r.open, r.close) for r in rows]

    # -- orders -------------------------------------------------------------------------------
    def open_orders(self) -> list[OrderRecord]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        request = GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=500)
        rows = self.conn.read("GET /v2/orders", lambda: self.conn.trading.get_orders(request))
        return [self._record(o) for o in rows]

    def submit(self, order: OrderRequest) -> OrderRecord:
        """Send a DAY market order; never resend blindly (see the module notes).

        Raises
        ------
        DuplicateOrderError
            The broker already has this client id (look it up).
        BrokerError
            A definitive rejection (buying power, bad symbol, ...).
        UnknownOutcomeError
            Neither the submit nor the lookups could tell whether the broker has the order.
        """
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest, StopOrderRequest

        if not (order.quantity == order.quantity and order.quantity != 0.0):
            raise BrokerError(f"order {order.client_order_id!r} has quantity {order.quantity!r}; "
                              "expected a finite non-zero number of shares.")
        fields = {"symbol": order.symbol, "qty": abs(order.quantity),
                  "side": OrderSide.BUY if order.quantity > 0 else OrderSide.SELL,
                  # DAY: fractional quantities require it; the runner replaces stops each bar
                  "time_in_force": TimeInForce.DAY, "client_order_id": order.client_order_id}
        if order.is_stop:
            # prices of $1 and above take whole cents; round away from the market so the stop
            # never sits tighter than the risk rule asked
            cents = order.stop_price * 100.0
            level = (math.floor(cents) if order.quantity < 0 else math.ceil(cents)) / 100.0
            request = StopOrderRequest(**fields, stop_price=level)
        else:
            request = MarketOrderRequest(**fields)
        delay = self.conn.spec.backoff
        for attempt in range(1, self.conn.spec.attempts + 1):
            try:
                return self._record(self.conn.trading.submit_order(request))
            except self.conn.api_error as exc:
                status = api_status(exc)
                if status == 422 and api_code(exc) == DUPLICATE_CODE and "unique" in _message(exc):
                    raise DuplicateOrderError(
                        f"alpaca already has order {order.client_order_id!r} (422 client_order_id "
                        "must be unique); nothing new was sent."
                    ) from exc
                if status == 429 and attempt < self.conn.spec.attempts:
                    self.conn._sleep(delay)  # rate-limited: the request was not processed
                    delay *= 2
                    continue
                if status is not None and status < 500 and status != 408:
                    raise BrokerError(
                        f"alpaca rejected order {order.client_order_id!r} ({order.symbol} "
                        f"{order.quantity:+g}): HTTP {status} {_message(exc)}"
                    ) from exc
                reason = f"HTTP {status}"
            except (requests.RequestException, OSError) as exc:
                reason = f"network error: {type(exc).__name__}"
            # unclear outcome: the broker may have the order; ask it by client id
            seen = lookup_after_unclear(self, order, reason)
            if seen is not None:
                return seen
            self.conn._sleep(delay)  # it never arrived: sending it again is safe
            delay *= 2
        raise UnknownOutcomeError(
            f"alpaca: order {order.client_order_id!r} was not confirmed after "
            f"{self.conn.spec.attempts} tries; it stays pending and is resolved by client id "
            "when the runner next starts or processes a bar."
        )

    def cancel(self, client_order_id: str) -> OrderRecord:
        found = self.order(client_order_id)
        if found is None:
            raise UnknownOrderError(f"alpaca has no order {client_order_id!r} to cancel.")
        if not found.is_open:
            return found
        order_id = self._order_id(client_order_id)
        try:
            self.conn.read(f"DELETE /v2/orders/{order_id}",
                           lambda: self.conn.trading.cancel_order_by_id(order_id))
        except self.conn.api_error as exc:
            if api_status(exc) != 422:  # 422: no longer cancelable (filled meanwhile)
                raise BrokerError(f"alpaca: cancel of {client_order_id!r} failed: "
                                  f"HTTP {api_status(exc)} {_message(exc)}") from exc
        return self.order(client_order_id) or found

    def order(self, client_order_id: str) -> OrderRecord | None:
        try:
            raw = self.conn.read(
                "GET /v2/orders:by_client_order_id",
                lambda: self.conn.trading.get_order_by_client_id(client_order_id))
        except self.conn.api_error as exc:
            if api_status(exc) == 404:
                return None
            raise BrokerError(f"alpaca: lookup of order {client_order_id!r} failed: "
                              f"HTTP {api_status(exc)} {_message(exc)}") from exc
        return self._record(raw)

    def _order_id(self, client_order_id: str) -> str:
        for oid, cid in self._client_ids.items():
            if cid == client_order_id:
                return oid
        raise UnknownOrderError(f"alpaca order id of {client_order_id!r} is unknown.")

    def _record(self, raw: Any) -> OrderRecord:
        oid, cid = str(raw.id), raw.client_order_id
        self._client_ids[oid] = cid
        side = -1.0 if _value(raw.side) == "sell" else 1.0
        filled = _float(raw.filled_qty)
        return OrderRecord(
            client_order_id=cid, symbol=raw.symbol, quantity=side * _float(raw.qty),
            filled_quantity=side * filled,
            average_price=_float(raw.filled_avg_price, float("nan")) if filled else float("nan"),
            status=_STATUS.get(_value(raw.status), "new"),
        )

    # -- fills --------------------------------------------------------------------------------
    def fills(self) -> list[FillRecord]:
        """Every fill since ``since``, oldest first (read incrementally; deduplicated by id)."""
        while True:
            params: dict[str, Any] = {"direction": "asc", "page_size": 100}
            if self._cursor is not None:
                params["page_token"] = self._cursor
            elif self.since is not None:
                params["after"] = pd.Timestamp(self.since).tz_convert("UTC").isoformat()
            page = self.conn.read("GET /v2/account/activities/FILL",
                                  lambda p=params: self.conn.trading.get("/account/activities/FILL", p))
            if not page:
                return list(self._fills)
            for row in page:
                self._fills.append(self._fill(row))
                self._cursor = row["id"]
            if len(page) < 100:
                return list(self._fills)

    def _fill(self, row: Mapping[str, Any]) -> FillRecord:
        sign = -1.0 if row.get("side") in ("sell", "sell_short") else 1.0
        return FillRecord(
            execution_id=str(row["id"]),
            client_order_id=self._client_id(str(row.get("order_id", ""))),
            symbol=row["symbol"], quantity=sign * _float(row["qty"]), price=_float(row["price"]),
            commission=0.0,  # Alpaca charges no commission (regulatory fees are not reported here)
            time=pd.Timestamp(row["transaction_time"]).tz_convert("UTC").isoformat(),
        )

    def _client_id(self, order_id: str) -> str:
        if order_id in self._client_ids:
            return self._client_ids[order_id]
        try:
            raw = self.conn.read(f"GET /v2/orders/{order_id}",
                                 lambda: self.conn.trading.get_order_by_id(order_id))
        except (self.conn.api_error, BrokerError):
            # the order is gone from the broker's lookups; the fill still counts for positions
            return f"alpaca:{order_id}"
        return self._record(raw).client_order_id


def _message(exc: BaseException) -> str:
    try:
        return str(exc.message)  # type: ignore[attr-defined]
    except (ValueError, KeyError, TypeError):  # non-JSON body: show it as text
        return str(exc)[:200]
