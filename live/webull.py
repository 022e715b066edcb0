"""Webull through the official ``webull-openapi-python-sdk`` (REST only): connection, broker, checks.

Facts this module is built around (SDK 3.0.4 source; Webull OpenAPI docs, see ``docs/webull.md``):

* Requests are signed with the app key/secret (HMAC-SHA256 over path, query, body hash and the
  ``x-*``/host headers); the SDK does it. Trading also needs an **access token** that the user
  approves once in the Webull app (2FA); the SDK creates/checks it and keeps it in a file, which
  :mod:`live.webull_sdk` places under ``FW_HOME/webull``.
* There is no free paper account: ``WEBULL_API_ENDPOINT`` defaults to Webull's **test
  environment** (UAT) host; a production host trades real money and is refused unless the
  config says so (``broker.paper: false``).
* The SDK retries nothing (``auto_retry=False``) and applies our timeout. Reads are retried here
  with backoff; a submit whose outcome is unclear (timeout, dropped connection, 5xx) is resolved
  by looking the order up by its client id and only sent again when Webull says it never got it;
  a rejected submit whose id Webull already knows is a duplicate (:class:`DuplicateOrderError`).
* Client order ids are at most 40 characters on Webull: the runner's ids (up to 64, with ``:``)
  are mapped to ``fw`` + 32 hex digits of their SHA-256, deterministically, so the id sent after
  a crash is the id sent before it. The broker remembers the mapping of every id it saw; a
  resumed session tells it the run's ids (:meth:`WebullBroker.remember`).
* US accounts have no executions list (it is HK only), so fills are derived from each order's
  cumulative ``filled_qty``/``filled_price``: every increase is one fill, with id
  ``<webull order id>@<cumulative qty>``. After a restart the fills already stored are the
  baseline (:meth:`WebullBroker.seed_fills`), so nothing is counted twice.
* Order updates are polled; the gRPC trade-events stream is not used (it needs protobuf/grpc
  versions that conflict with fw's other dependencies).
"""

from __future__ import annotations

import hashlib
import math
import time as _time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

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
from live.broker_check import Check
from live.webull_sdk import (
    ACCOUNT_VARIABLE,
    CA_VARIABLE,
    ENDPOINT_VARIABLE,
    KEY_VARIABLE,
    PRODUCTION_HOSTS,
    REGION_VARIABLE,
    SECRET_VARIABLE,
    TEST_ENDPOINT,
    WebullConnection,
    WebullCredentials,
    WebullSpec,
    describe_error,
    error_code,
    http_status,
    token_status,
    webull_credentials,
)

__all__ = [
    "ACCOUNT_VARIABLE", "CA_VARIABLE", "ENDPOINT_VARIABLE", "KEY_VARIABLE", "PRODUCTION_HOSTS",
    "REGION_VARIABLE", "SECRET_VARIABLE", "TEST_ENDPOINT", "WebullBroker", "WebullConnection",
    "WebullCredentials", "WebullSpec", "checks", "webull_credentials", "webull_order_id",
]

MAX_CLIENT_ID = 40
_NOT_FOUND = frozenset({"ORDER_NOT_FOUND", "NOT_FOUND"})

# Webull OrderStatus -> the runner's vocabulary (live.broker.OPEN_STATUSES / FINAL_STATUSES)
_STATUS = {
    "SUBMITTED": "new", "PENDING": "new", "PENDING_SUBMIT": "new", "WORKING": "new",
    "PARTIAL_FILLED": "partially_filled", "PENDING_CANCEL": "partially_filled",
    "FILLED": "filled", "CANCELLED": "canceled", "CANCELED": "canceled",
    "EXPIRED": "canceled", "FAILED": "rejected", "REJECTED": "rejected",
}


def webull_order_id(client_order_id: str) -> str:
    """The id sent to Webull for a runner id: itself when short and plain, else a digest."""
    if len(client_order_id) <= MAX_CLIENT_ID and client_order_id.replace("-", "").replace(
            "_", "").isalnum():
        return client_order_id
    return "fw" + hashlib.sha256(client_order_id.encode()).hexdigest()[:32]



def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _first(row: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if row.get(name) not in (None, ""):
            return row[name]
    return None


def _rows(payload: Any, *keys: str) -> list[dict]:
    """A list payload, or the list under the first of ``keys`` in a dict payload."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in keys:
            if isinstance(payload.get(key), list):
                return payload[key]
    return []


class WebullBroker:
    """The :class:`~live.broker.Broker` protocol over a Webull account (test env by default).

    Parameters
    ----------
    symbols : sequence of str
    connection : WebullConnection
    since : pandas.Timestamp, optional
        Orders placed before this time are not the run's (fills are derived from later ones).
    """

    name = "webull"

    def __init__(self, symbols: Sequence[str], connection: WebullConnection,
                 since: pd.Timestamp | None = None) -> None:
        self.symbols = tuple(symbols)
        self.conn = connection
        self.since = since
        self._ids: dict[str, str] = {}  # webull client order id -> runner client order id
        self._fills: list[FillRecord] = []
        self._base: dict[str, tuple[float, float]] = {}  # webull id -> (filled qty, notional)

    @property
    def account_id(self) -> str:
        return self.conn.account_id

    # -- ids and restart baseline ------------------------------------------------------------
    def remember(self, client_order_ids: Iterable[str]) -> None:
        """Learn the runner ids behind Webull ids (a resumed run passes its stored orders)."""
        for cid in client_order_ids:
            self._ids[webull_order_id(cid)] = cid

    def seed_fills(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Fills already stored (``store.fills``): the baseline new fills are measured from."""
        for row in rows:
            cid = row["client_order_id"]
            wid = webull_order_id(cid)
            self._ids.setdefault(wid, cid)
            qty, notional = self._base.get(wid, (0.0, 0.0))
            size = abs(float(row["quantity"]))
            self._base[wid] = (round(qty + size, 9), notional + size * float(row["price"]))
            self._fills.append(FillRecord(
                execution_id=row["execution_id"], client_order_id=cid, symbol=row["symbol"],
                quantity=float(row["quantity"]), price=float(row["price"]),
                commission=float(row.get("commission") or 0.0), time=row["time"]))

    def _client_id(self, webull_id: str) -> str:
        return self._ids.get(webull_id, f"webull:{webull_id}")

    # -- account ------------------------------------------------------------------------------
    def account(self) -> AccountSnapshot:
        data = self.conn.read_json(
            "GET /trading/assets/balances/get",
            lambda: self.conn.accounts.get_account_balance(self.account_id))
        cash = _first(data, "total_cash_balance", "cash_balance", "total_cash")
        equity = _first(data, "total_asset", "net_liquidation_value", "total_net_liquidation")
        if cash is None or equity is None:
            raise BrokerError(f"webull balance of account {self.account_id} lacks cash/equity "
                              f"fields (got {sorted(data)[:12]}); the API changed: report it.")
        return AccountSnapshot(cash=_float(cash), equity=_float(equity))

    def positions(self) -> Mapping[str, float]:
        data = self.conn.read_json(
            "GET /trading/assets/positions/list",
            lambda: self.conn.accounts.get_account_position(self.account_id))
        out: dict[str, float] = {}
        for row in _rows(data, "holdings", "positions"):
            qty = _float(_first(row, "quantity", "qty"))
            if str(row.get("position_side", row.get("side", ""))).upper() == "SHORT" and qty > 0:
                qty = -qty
            if qty != 0.0:
                out[row["symbol"]] = out.get(row["symbol"], 0.0) + qty
        return out

    def clock(self) -> pd.Timestamp:
        """Webull's current time (the HTTP ``Date`` header)."""
        return self.conn.server_time()

    # -- orders -------------------------------------------------------------------------------
    def open_orders(self) -> list[OrderRecord]:
        return [self._record(o) for o in self._paged(
            "GET /trading/orders/open-orders/list",
            lambda key: self.conn.orders.list_order_open(self.account_id, pagination_key=key))]

    def _paged(self, what: str, call: Callable[[str | None], Any]) -> list[dict]:
        out, key = [], None
        for _ in range(1000):  # a bound, in case a server repeated its pagination key forever
            payload = self.conn.read_json(what, lambda k=key: call(k))
            out.extend(_rows(payload, "orders"))
            key = payload.get("pagination_key") if isinstance(payload, dict) else None
            if not key:
                return out
        raise BrokerError(f"webull: {what} kept paging after 1000 pages; giving up.")

    def submit(self, order: OrderRequest, limit_price: float | None = None) -> OrderRecord:
        """Send a DAY market (or stop, or with ``limit_price`` limit) order; never resend blindly.

        Raises
        ------
        DuplicateOrderError
            Webull already has this client id (look it up).
        BrokerError
            A definitive rejection (buying power, bad symbol, ...).
        UnknownOutcomeError
            Neither the submit nor the lookups could tell whether Webull has the order.
        """
        if not (math.isfinite(order.quantity) and order.quantity != 0.0):
            raise BrokerError(f"order {order.client_order_id!r} has quantity {order.quantity!r}; "
                              "expected a finite non-zero number of shares.")
        wid = webull_order_id(order.client_order_id)
        self._ids[wid] = order.client_order_id
        body = [_order_body(order, wid, limit_price)]
        delay = self.conn.spec.backoff
        for attempt in range(1, self.conn.spec.attempts + 1):
            try:
                self.conn.request(lambda: self.conn.orders.place_order(self.account_id, body))
                # the reply holds only the ids; the fill state comes with the next poll
                return OrderRecord(order.client_order_id, order.symbol,
                                   float(order.quantity), 0.0, math.nan, "new")
            except self.conn.sdk.ServerException as exc:
                status = http_status(exc)
                if status == 429 and attempt < self.conn.spec.attempts:
                    self.conn._sleep(delay)  # rate-limited: the request was not processed
                    delay *= 2
                    continue
                if status is not None and status < 500 and status not in (408, 429):
                    raise self._rejected(order, exc) from exc
                reason = describe_error(exc)
            except self.conn.sdk.ClientException as exc:
                reason = describe_error(exc)
            seen = lookup_after_unclear(self, order, reason)
            if seen is not None:
                return seen
            self.conn._sleep(delay)  # Webull never got it: sending it again is safe
            delay *= 2
        raise UnknownOutcomeError(
            f"webull: order {order.client_order_id!r} was not confirmed after "
            f"{self.conn.spec.attempts} tries; it stays pending and is resolved by client id "
            "when the runner next starts or processes a bar.")

    def _rejected(self, order: OrderRequest, exc: BaseException) -> BrokerError:
        """A 4xx on place: a duplicate when Webull knows the id already, else a rejection."""
        try:
            known = self.order(order.client_order_id)
        except BrokerError:
            known = None
        if known is not None:
            return DuplicateOrderError(
                f"webull already has order {order.client_order_id!r} ({describe_error(exc)}); "
                "nothing new was sent.")
        return BrokerError(f"webull rejected order {order.client_order_id!r} ({order.symbol} "
                           f"{order.quantity:+g}): {describe_error(exc)}")

    def cancel(self, client_order_id: str) -> OrderRecord:
        found = self.order(client_order_id)
        if found is None:
            raise UnknownOrderError(f"webull has no order {client_order_id!r} to cancel.")
        if not found.is_open:
            return found
        wid = webull_order_id(client_order_id)
        try:
            self.conn.read("POST /trading/orders/cancel",
                           lambda: self.conn.orders.cancel_order(self.account_id, wid))
        except self.conn.sdk.ServerException as exc:
            if http_status(exc) not in (400, 409, 422):  # no longer cancelable: filled meanwhile
                raise BrokerError(f"webull: cancel of {client_order_id!r} failed: "
                                  f"{describe_error(exc)}") from exc
        return self.order(client_order_id) or found

    def order(self, client_order_id: str) -> OrderRecord | None:
        wid = webull_order_id(client_order_id)
        self._ids.setdefault(wid, client_order_id)
        try:
            raw = self.conn.read_json(
                "GET /trading/orders/get",
                lambda: self.conn.orders.get_order_detail(self.account_id, wid))
        except self.conn.sdk.ServerException as exc:
            if http_status(exc) == 404 or error_code(exc) in _NOT_FOUND:
                return None
            raise BrokerError(f"webull: lookup of order {client_order_id!r} failed: "
                              f"{describe_error(exc)}") from exc
        return self._record(raw)

    def _record(self, raw: Mapping[str, Any]) -> OrderRecord:
        item = _item(raw)
        wid = str(raw.get("client_order_id") or item.get("client_order_id"))
        side = -1.0 if str(item.get("side", "")).upper() == "SELL" else 1.0
        filled = _float(item.get("filled_qty"))
        return OrderRecord(
            client_order_id=self._client_id(wid), symbol=str(item.get("symbol")),
            quantity=side * _float(_first(item, "qty", "quantity")),
            filled_quantity=side * filled,
            average_price=_float(item.get("filled_price"), math.nan) if filled else math.nan,
            status=_STATUS.get(str(item.get("order_status", "")).upper(), "new"),
        )

    # -- fills --------------------------------------------------------------------------------
    def fills(self) -> list[FillRecord]:
        """Every fill since ``since``, oldest first, derived from the orders' cumulative fills."""
        start = pd.Timestamp(self.since).tz_convert("UTC") if self.since is not None else None
        text = start.strftime("%Y-%m-%dT%H:%M:%S.000Z") if start is not None else None
        orders = self._paged(
            "GET /trading/orders/historical-orders/list",
            lambda key: self.conn.orders.list_order_history(self.account_id, start_time=text,
                                                            pagination_key=key))
        new = []
        for raw in orders:
            fill = self._new_fill(raw)
            if fill is not None:
                new.append(fill)
        self._fills.extend(sorted(new, key=lambda f: f.time))
        return list(self._fills)

    def _new_fill(self, raw: Mapping[str, Any]) -> FillRecord | None:
        item = _item(raw)
        wid = str(raw.get("client_order_id") or item.get("client_order_id"))
        cumulative = round(_float(item.get("filled_qty")), 9)
        before, notional = self._base.get(wid, (0.0, 0.0))
        if cumulative <= before + 1e-9:
            return None
        average = _float(item.get("filled_price"))
        size = round(cumulative - before, 9)
        # one fill so far: its price is the average itself (no float round trip)
        price = average if before == 0.0 else (average * cumulative - notional) / size
        self._base[wid] = (cumulative, notional + size * price)
        sign = -1.0 if str(item.get("side", "")).upper() == "SELL" else 1.0
        when = item.get("last_filled_time") or item.get("place_time")
        return FillRecord(
            execution_id=f"{wid}@{cumulative:.9g}", client_order_id=self._client_id(wid),
            symbol=str(item.get("symbol")), quantity=sign * size, price=price,
            commission=0.0,  # the order detail reports no fees; Webull charges none on US stocks
            time=pd.Timestamp(when).tz_convert("UTC").isoformat())


def _item(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """The single leg of a simple order (v3 nests legs in ``items``; older replies are flat)."""
    items = raw.get("items") if isinstance(raw, Mapping) else None
    if isinstance(items, list) and items:
        return {**raw, **items[0]}
    return raw


def _decimal(value: float) -> str:
    """A decimal string without exponent, to 9 places (Webull takes quantities as strings)."""
    return f"{round(value, 9):.9f}".rstrip("0").rstrip(".")


def _order_body(order: OrderRequest, wid: str, limit_price: float | None) -> dict[str, Any]:
    body = {"client_order_id": wid, "combo_type": "NORMAL", "symbol": order.symbol,
            "instrument_type": "EQUITY", "market": "US", "order_type": "MARKET",
            "quantity": _decimal(abs(order.quantity)),
            "side": "BUY" if order.quantity > 0 else "SELL", "time_in_force": "DAY",
            "entrust_type": "QTY", "support_trading_session": "CORE"}
    if order.is_stop:
        # whole cents, rounded away from the market so the stop is never tighter than asked
        cents = order.stop_price * 100.0
        level = (math.floor(cents) if order.quantity < 0 else math.ceil(cents)) / 100.0
        body.update(order_type="STOP_LOSS", stop_price=f"{level:.2f}")
    elif limit_price is not None:
        if not (math.isfinite(limit_price) and limit_price > 0):
            raise BrokerError(f"limit price {limit_price!r} of {order.client_order_id!r}; "
                              "expected a positive number.")
        body.update(order_type="LIMIT", limit_price=f"{limit_price:.2f}")
    return body


# -- fw broker check --broker webull ---------------------------------------------------------------
def checks(environ: Mapping[str, str] | None = None, max_drift: float = 5.0,
           token_wait: int = 60) -> list[Check]:
    """Diagnose the Webull setup step by step: credentials, reachable, token, account, mode,
    clock. A failed step says what to do; the steps after it are reported as skipped.

    ``token_wait`` is how long (seconds) a new token may wait for approval in the Webull app
    before the token step fails; ``max_drift`` the clock difference accepted."""
    import os

    env = os.environ if environ is None else environ
    out: list[Check] = []
    steps = ("credentials", "reachable", "token", "account", "mode", "clock")

    def skip_rest(reason: str) -> list[Check]:
        done = {c.step for c in out}
        return out + [Check(s, False, f"skipped: {reason}") for s in steps if s not in done]

    try:
        spec = WebullSpec.from_environment(env, token_wait=token_wait,
                                           token_poll=max(1, min(5, token_wait)))
        credentials = webull_credentials(env)
    except ConfigError as exc:
        out.append(Check("credentials", False, str(exc)))
        return skip_rest("fix the credentials first")
    out.append(Check("credentials", True,
                     f"{KEY_VARIABLE}, {SECRET_VARIABLE} and {ACCOUNT_VARIABLE} are set "
                     f"(region {spec.region}, endpoint {spec.host})"))
    home = Path(env["FW_HOME"]).expanduser() if env.get("FW_HOME") else None
    try:
        conn = WebullConnection(spec, credentials, home=home, initialize=False)
        out.append(_check_reachable(conn))
    except (ConfigError, BrokerError) as exc:
        out.append(Check("reachable", False, str(exc)))
    if not out[-1].ok:
        return skip_rest("Webull is not reachable with these credentials")
    try:
        conn.initialize_token()
        status = token_status(conn.token_dir)
        out.append(Check("token", True, f"access token {status[0] if status else 'NORMAL'} "
                         f"(expires {_expiry(status)}), stored in {conn.token_file}"))
    except (ConfigError, BrokerError) as exc:
        out.append(Check("token", False, str(exc)))
        return skip_rest("the access token is not usable yet")
    out.append(_check_account(conn))
    if not out[-1].ok:
        return skip_rest("the account is not readable")
    out.append(_check_mode(spec))
    out.append(_check_clock(conn, max_drift))
    return out


def _check_reachable(conn: WebullConnection) -> Check:
    from webull.core.http.initializer.config.bean.query_config_request import GetConfigRequest

    try:
        response = conn.read("GET /openapi/config",
                             lambda: conn.api.get_response(GetConfigRequest()))
    except conn.sdk.ServerException as exc:
        if http_status(exc) in (401, 403):
            return Check("reachable", False,
                         f"{conn.spec.host} answered but refused the signature ({describe_error(exc)}). "
                         f"Check {KEY_VARIABLE}/{SECRET_VARIABLE}: keys of the test environment "
                         "only work on the test host and production keys only on production; "
                         "an IP whitelist in the Webull portal can also block you.")
        return Check("reachable", False, f"{conn.spec.host} answered {describe_error(exc)}.")
    except BrokerUnavailableError as exc:
        return Check("reachable", False, f"{exc} Check {ENDPOINT_VARIABLE} and {CA_VARIABLE}.")
    enabled = bool((response.json() or {}).get("token_check_enabled", False))
    return Check("reachable", True, f"{conn.spec.host} accepted a signed request (token check "
                 f"{'required' if enabled else 'not required'})")


def _check_account(conn: WebullConnection) -> Check:
    try:
        rows = _rows(conn.read_json("GET /trading/accounts/list",
                                    conn.accounts.get_account_list), "accounts")
        ids = [str(r.get("account_id")) for r in rows]
        if conn.account_id not in ids:
            return Check("account", False,
                         f"{ACCOUNT_VARIABLE}={conn.account_id} is not among this app's accounts "
                         f"({', '.join(ids) or 'none'}); set it to one of them.")
        snapshot = WebullBroker((), conn).account()
    except (BrokerError, conn.sdk.ServerException) as exc:
        return Check("account", False, f"account {conn.account_id} is not readable: {exc}")
    return Check("account", True, f"account {conn.account_id}: cash {snapshot.cash:,.2f}, "
                 f"equity {snapshot.equity:,.2f}")


def _check_mode(spec: WebullSpec) -> Check:
    if spec.is_production:
        return Check("mode", True, f"!!! LIVE TRADING: {spec.host} is a Webull PRODUCTION host; "
                     "orders trade REAL MONEY (allowed by broker.paper: false) !!!")
    return Check("mode", True, f"TEST environment at {spec.host}: Webull has no paper account; "
                 "orders here move no real money")


def _check_clock(conn: WebullConnection, max_drift: float) -> Check:
    try:
        before = _time.time()
        server = conn.server_time()
        local = (before + _time.time()) / 2.0
    except BrokerError as exc:
        return Check("clock", False, str(exc))
    drift = server.timestamp() - local
    ok = abs(drift) <= max_drift + 1.0  # the Date header has whole seconds
    detail = f"Webull's clock {server.isoformat()} is {drift:+.1f} s from the local clock"
    return Check("clock", ok, detail if ok else detail + f" (more than {max_drift:g} s): sync "
                 "the local clock (NTP), or run with --max-clock-drift off.")


def _expiry(status: tuple[str, str] | None) -> str:
    if status is None or not status[1].isdigit():
        return "unknown"
    return pd.Timestamp(int(status[1]), unit="ms", tz="UTC").isoformat()
