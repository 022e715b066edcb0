"""Options paper trading on Alpaca through alpaca-py: contracts, chains, spreads, positions,
expiries.

Built on :class:`~live.alpaca.AlpacaConnection` (its timeout, shared rate limiter and retry policy
apply to every call here, the option data client included). Facts it relies on
(``../shared/notes/alpaca.md`` and the alpaca-py 0.44.0 source):

* contracts come from ``GET /v2/options/contracts`` (paged by ``next_page_token``), the chain from
  ``GET /v1beta1/options/snapshots/{underlying}`` (latestQuote, latestTrade, impliedVolatility,
  greeks; the SDK pages it); the underlying's price from its latest stock trade (else bar);
* a spread is ONE order: ``order_class="mleg"`` with 2-4 ``legs`` (symbol, ratio_qty, side,
  position_intent) and ``qty`` = number of spreads; its ``limit_price`` is the net price per
  share of one spread, **positive for a debit, negative for a credit** (alpaca-py's
  ``LimitOrderRequest`` docstring). A single leg is a simple order on the OCC symbol;
* the SDK would resend a submit on 429/504 (its retries are off here); a submit whose outcome is
  unclear (timeout, dropped connection, 5xx) is resolved by looking the client order id up and
  is sent again only when Alpaca says it never got it; 422/40010001 means "already have it";
* expiries, exercises and assignments are account activities OPEXP, OPEXC, OPASN with OPTRD for
  the shares delivered (Alpaca's "Non-Trade Activities for Option Events").

Greeks are not taken from Alpaca's snapshots (their scaling is not documented); call
:meth:`framework.options.chains.OptionChain.with_greeks` on the chain instead.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import Any

import numpy as np
import pandas as pd
import requests

from framework.errors import BrokerError, ConfigError, DataError
from framework.options.chains import CHAIN_COLUMNS, NEW_YORK, OptionChain
from framework.options.legs import Leg, OptionPosition, as_date
from framework.options.occ import OCC_PATTERN, RIGHT_CODES, OccContract, occ_symbol, parse_occ
from live.alpaca import (
    _STATUS,
    DUPLICATE_CODE,
    AlpacaConnection,
    _float,
    _message,
    _PacedAdapter,
    _value,
    api_code,
    api_status,
)
from live.broker import (
    OPEN_STATUSES,
    BrokerUnavailableError,
    DuplicateOrderError,
    UnknownOutcomeError,
)

MAX_CLIENT_ORDER_ID = 128
FEEDS = ("indicative", "opra")
EXPIRY_ACTIVITIES = {"OPEXP": "expired", "OPASN": "assigned", "OPEXC": "exercised",
                     "OPTRD": "delivery"}


def spread_client_id(prefix: str, position: OptionPosition, tag: str = "") -> str:
    """A deterministic client order id for ``position``: the same legs and tag give the same id.

    Parameters
    ----------
    prefix : str
        Usually the run id, e.g. ``"r1"``.
    position : OptionPosition
        The legs to trade (symbols and signed quantities are hashed).
    tag : str
        Distinguishes intentional repeats, e.g. the decision bar's timestamp.
    """
    parts = sorted(f"{_leg_symbol(position, leg)}:{leg.quantity}" for leg in position.legs)
    digest = hashlib.sha256("|".join([*parts, tag]).encode()).hexdigest()[:20]
    identifier = f"{prefix}:{digest}"
    if len(identifier) > MAX_CLIENT_ORDER_ID:
        raise ConfigError(f"client order id prefix {prefix[:40]!r}... is too long; Alpaca takes "
                          f"at most {MAX_CLIENT_ORDER_ID} characters.")
    return identifier


# -- records --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ContractInfo:
    """One tradable contract from ``GET /v2/options/contracts``."""

    symbol: str
    underlying: str
    expiry: date
    right: str
    strike: float
    multiplier: int
    style: str
    tradable: bool
    contract_id: str


@dataclass(frozen=True)
class OrderLeg:
    """One leg of an option order as the broker reports it (prices per share)."""

    symbol: str
    side: str
    ratio: int
    intent: str
    filled_quantity: float
    average_price: float


@dataclass(frozen=True)
class OptionOrderRecord:
    """The broker's view of an option order (one spread order or a single leg).

    ``quantity`` and ``filled_quantity`` count spreads (contracts for a single leg);
    ``net_price`` and ``limit_price`` are per share of one spread, debit positive, credit
    negative (NaN / None when not filled / a market order); ``status`` uses the runner's
    vocabulary (:data:`live.broker.OPEN_STATUSES`), ``broker_status`` Alpaca's own.
    """

    client_order_id: str
    order_id: str
    status: str
    broker_status: str
    quantity: float
    filled_quantity: float
    net_price: float
    limit_price: float | None
    legs: tuple[OrderLeg, ...]

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class HeldLeg:
    """One option position of the account (quantity in contracts, + long / - short)."""

    symbol: str
    contract: OccContract
    quantity: int
    average_price: float
    current_price: float
    market_value: float


@dataclass(frozen=True)
class HeldGroup:
    """Option positions on one underlying and expiry (e.g. the two legs of a vertical)."""

    underlying: str
    expiry: date
    legs: tuple[HeldLeg, ...]

    def position(self) -> OptionPosition:
        """The group as an :class:`OptionPosition` (premium = average entry price)."""
        return OptionPosition(self.underlying, tuple(
            Leg(h.contract.right, h.contract.strike, h.contract.expiry, h.quantity,
                max(h.average_price, 0.0)) for h in self.legs))


@dataclass(frozen=True)
class ExpiryEvent:
    """An expiry-related account activity.

    ``kind`` is ``"expired"`` (OPEXP), ``"assigned"`` (OPASN), ``"exercised"`` (OPEXC) or
    ``"delivery"`` (OPTRD: shares bought or sold at the strike). ``quantity`` is the change of
    the position in ``symbol`` (contracts for options, shares for deliveries); ``contract`` is
    the parsed option (None for deliveries).
    """

    activity_id: str
    kind: str
    activity_type: str
    symbol: str
    day: date
    quantity: float
    price: float
    net_amount: float
    contract: OccContract | None


# -- the adapter --------------------------------------------------------------------------------
class AlpacaOptions:
    """Option contracts, chains, spread orders, positions and expiries on an Alpaca paper account.

    Parameters
    ----------
    conn : AlpacaConnection
        Its timeout, rate limiter and retry policy are used for every call.
    keys : (str, str), optional
        Key id and secret for the option data client; default the connection's own.
    feed : {"indicative", "opra"}
        Option data feed (``indicative`` is the free one).
    """

    def __init__(self, conn: AlpacaConnection, keys: tuple[str, str] | None = None,
                 feed: str = "indicative") -> None:
        if feed not in FEEDS:
            raise ConfigError(f"option feed {feed!r}; expected one of {FEEDS} ('indicative' is "
                              "the free plan's).")
        self.conn, self.feed = conn, feed
        if keys is None:  # AlpacaConnection keeps the keys only inside the SDK clients
            keys = (conn.trading._api_key, conn.trading._secret_key)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="websockets.legacy is deprecated")
            from alpaca.data.historical import OptionHistoricalDataClient
        self.data = OptionHistoricalDataClient(keys[0], keys[1], raw_data=True,
                                               url_override=conn.spec.data_url)
        self.data._retry = 0  # the SDK would retry on its own; the connection's policy decides
        adapter = _PacedAdapter(conn.spec.timeout, conn.limiter)
        for prefix in ("http://", "https://"):
            self.data._session.mount(prefix, adapter)

    # -- contracts and chains ---------------------------------------------------------------
    def contracts(self, underlying: str, expiry_from: object = None, expiry_to: object = None,
                  right: str | None = None, strike_min: float | None = None,
                  strike_max: float | None = None, page_size: int = 1000) -> list[ContractInfo]:
        """Active contracts on ``underlying`` matching the filters (every page), by symbol."""
        from alpaca.trading.requests import GetOptionContractsRequest

        fields = self._filters(expiry_from, expiry_to, right, strike_min, strike_max)
        for key in ("strike_price_gte", "strike_price_lte"):
            if key in fields:  # the trading API's request takes strike bounds as strings
                fields[key] = f"{fields[key]:g}"
        out: list[ContractInfo] = []
        token = None
        while True:
            request = GetOptionContractsRequest(underlying_symbols=[underlying.upper()],
                                                limit=page_size, page_token=token, **fields)
            page = self.conn.read("GET /v2/options/contracts",
                                  lambda r=request: self.conn.trading.get_option_contracts(r))
            out += [_contract_info(c) for c in page.option_contracts or []]
            token = page.next_page_token
            if not token:
                return sorted(out, key=lambda c: c.symbol)

    def chain(self, underlying: str, expiry_from: object = None, expiry_to: object = None,
              right: str | None = None, strike_min: float | None = None,
              strike_max: float | None = None) -> OptionChain:
        """The chain of ``underlying`` from Alpaca's option snapshots.

        Returns
        -------
        OptionChain
            bid/ask from each contract's latest quote, ``last`` from its latest trade, ``iv``
            Alpaca's implied vol; ``underlying_price`` the stock's latest trade; ``snapshot``
            the newest quote time. Volume and open interest are NaN (not in snapshots).

        Raises
        ------
        DataError
            No snapshots (no contracts listed, or none match the filters), or no stock price.
        """
        from alpaca.data.enums import OptionsFeed
        from alpaca.data.requests import OptionChainRequest

        fields = self._filters(expiry_from, expiry_to, right, strike_min, strike_max)
        request = OptionChainRequest(underlying_symbol=underlying.upper(),
                                     feed=OptionsFeed(self.feed), **fields)
        raw = self.conn.read(f"GET /v1beta1/options/snapshots/{underlying.upper()}",
                             lambda: self.data.get_option_chain(request))
        if not raw:
            raise DataError(f"alpaca returned no option snapshots for {underlying.upper()} "
                            f"with filters {fields or 'none'}; check the symbol and the filters.")
        spot, _ = self.spot(underlying)
        return _chain_from_snapshots(underlying.upper(), raw, spot)

    def spot(self, underlying: str) -> tuple[float, pd.Timestamp]:
        """(price, time) of the stock's latest trade, else of its latest bar's close."""
        from alpaca.data.requests import StockLatestBarRequest, StockLatestTradeRequest

        symbol, feed = underlying.upper(), self.conn.spec.feed
        trades = self.conn.read("GET /v2/stocks/trades/latest", lambda: self.conn.data
                                .get_stock_latest_trade(StockLatestTradeRequest(
                                    symbol_or_symbols=symbol, feed=feed)))
        row = (trades or {}).get(symbol)
        if row and _float(row.get("p"), math.nan) > 0:
            return float(row["p"]), _utc(row.get("t"))
        bars = self.conn.read("GET /v2/stocks/bars/latest", lambda: self.conn.data
                              .get_stock_latest_bar(StockLatestBarRequest(
                                  symbol_or_symbols=symbol, feed=feed)))
        bar = (bars or {}).get(symbol)
        if bar and _float(bar.get("c"), math.nan) > 0:
            return float(bar["c"]), _utc(bar.get("t"))
        raise DataError(f"alpaca has no latest trade or bar for {symbol} on the {feed} feed; "
                        "the chain needs the underlying's price.")

    @staticmethod
    def _filters(expiry_from: object, expiry_to: object, right: str | None,
                 strike_min: float | None, strike_max: float | None) -> dict[str, Any]:
        from alpaca.trading.enums import ContractType

        fields: dict[str, Any] = {}
        if expiry_from is not None:
            fields["expiration_date_gte"] = as_date(expiry_from, "expiry_from")
        if expiry_to is not None:
            fields["expiration_date_lte"] = as_date(expiry_to, "expiry_to")
        if right is not None:
            code = RIGHT_CODES.get(str(right).strip().upper())
            if code is None:
                raise ConfigError(f"right {right!r}; expected 'C'/'call' or 'P'/'put'.")
            fields["type"] = ContractType.CALL if code == "C" else ContractType.PUT
        for key, value in (("strike_price_gte", strike_min), ("strike_price_lte", strike_max)):
            if value is not None:
                number = _float(value, math.nan)
                if not (math.isfinite(number) and number >= 0):
                    raise ConfigError(f"{key} {value!r}; expected a strike >= 0.")
                fields[key] = number
        return fields

    # -- orders -----------------------------------------------------------------------------
    def submit_spread(self, position: OptionPosition, client_order_id: str,
                      limit_price: float | None = None, intent: str = "open") -> OptionOrderRecord:
        """Send ``position``'s legs as one order (mleg for 2-4 legs, simple for one), DAY.

        Parameters
        ----------
        position : OptionPosition
            Options only (no stock); quantities in contracts, + buy / - sell. The order quantity
            is the greatest common divisor of the leg sizes, each leg's ratio the rest.
        client_order_id : str
            Deterministic id (see :func:`spread_client_id`); the idempotency key.
        limit_price : float, optional
            Net price per share of one spread: positive pays a debit, negative asks for a credit
            (e.g. ``-1.20`` sells a put spread for at least $1.20). None sends a market order.
        intent : {"open", "close"}
            Opens (buy_to_open / sell_to_open) or closes the legs.

        Raises
        ------
        ConfigError
            A position Alpaca cannot take as one order, or a limit whose sign contradicts a
            single leg's side.
        DuplicateOrderError
            Alpaca already has this client id (look it up with :meth:`order`).
        BrokerError
            A definitive rejection (buying power, unknown contract, ...).
        UnknownOutcomeError
            Neither the submit nor the lookups could tell whether Alpaca has the order.
        """
        request = self._order_request(position, client_order_id, limit_price, intent)
        return self._submit(request, client_order_id)

    def _order_request(self, position: OptionPosition, client_order_id: str,
                       limit_price: float | None, intent: str):
        from alpaca.trading.enums import OrderClass, OrderSide, PositionIntent, TimeInForce
        from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, OptionLegRequest

        legs = _checked_legs(position, client_order_id, intent)
        size = reduce(math.gcd, (abs(leg.quantity) for leg in legs))
        fields: dict[str, Any] = {"time_in_force": TimeInForce.DAY,
                                  "client_order_id": client_order_id}
        limit = None if limit_price is None else _cents(limit_price)
        if len(legs) == 1:
            leg = legs[0]
            side = OrderSide.BUY if leg.quantity > 0 else OrderSide.SELL
            if limit is not None and (limit > 0) != (leg.quantity > 0):
                raise ConfigError(
                    f"limit_price {limit_price!r} contradicts the single leg {leg.describe()}: "
                    "buying takes a positive limit (debit), selling a negative one (credit).")
            fields.update(symbol=_leg_symbol(position, leg), qty=abs(leg.quantity), side=side,
                          position_intent=PositionIntent(f"{side.value}_to_{intent}"))
            limit = None if limit is None else abs(limit)
        else:
            fields.update(qty=size, order_class=OrderClass.MLEG, legs=[OptionLegRequest(
                symbol=_leg_symbol(position, leg), ratio_qty=abs(leg.quantity) // size,
                side=OrderSide.BUY if leg.quantity > 0 else OrderSide.SELL,
                position_intent=PositionIntent(
                    f"{'buy' if leg.quantity > 0 else 'sell'}_to_{intent}"))
                for leg in legs])
        if limit is None:
            return MarketOrderRequest(**fields)
        return LimitOrderRequest(**fields, limit_price=limit)

    def _submit(self, request: Any, client_order_id: str) -> OptionOrderRecord:
        """Submit once; on an unclear outcome look the client id up before any resend."""
        delay = self.conn.spec.backoff
        for attempt in range(1, self.conn.spec.attempts + 1):
            try:
                return _order_record(self.conn.trading.submit_order(request))
            except self.conn.api_error as exc:
                status = api_status(exc)
                if status == 422 and api_code(exc) == DUPLICATE_CODE and "unique" in _message(exc):
                    raise DuplicateOrderError(
                        f"alpaca already has option order {client_order_id!r} (422 "
                        "client_order_id must be unique); nothing new was sent.") from exc
                if status == 429 and attempt < self.conn.spec.attempts:
                    self.conn._sleep(delay)  # rate-limited: the request was not processed
                    delay *= 2
                    continue
                if status is not None and status < 500 and status != 408:
                    raise BrokerError(f"alpaca rejected option order {client_order_id!r}: HTTP "
                                      f"{status} {_message(exc)}") from exc
                reason = f"HTTP {status}"
            except (requests.RequestException, OSError) as exc:
                reason = f"network error: {type(exc).__name__}"
            seen = self._lookup_after_unclear(client_order_id, reason)
            if seen is not None:
                return seen
            self.conn._sleep(delay)  # Alpaca says it never got it: sending again is safe
            delay *= 2
        raise UnknownOutcomeError(
            f"alpaca: option order {client_order_id!r} was not confirmed after "
            f"{self.conn.spec.attempts} tries; resolve it later with order({client_order_id!r}) "
            "before sending anything again.")

    def _lookup_after_unclear(self, client_order_id: str, reason: str) -> OptionOrderRecord | None:
        try:
            return self.order(client_order_id)
        except BrokerUnavailableError as exc:
            raise UnknownOutcomeError(
                f"alpaca: submit of option order {client_order_id!r} ended with {reason} and the "
                f"lookup failed too ({exc}); resolve it later by client id.") from exc

    def order(self, client_order_id: str) -> OptionOrderRecord | None:
        """The order with ``client_order_id``; None when Alpaca has none."""
        try:
            raw = self.conn.read("GET /v2/orders:by_client_order_id",
                                 lambda: self.conn.trading.get_order_by_client_id(client_order_id))
        except self.conn.api_error as exc:
            if api_status(exc) == 404:
                return None
            raise BrokerError(f"alpaca: lookup of option order {client_order_id!r} failed: HTTP "
                              f"{api_status(exc)} {_message(exc)}") from exc
        return _order_record(raw)

    def cancel(self, client_order_id: str) -> OptionOrderRecord | None:
        """Cancel the order if still open; its record afterwards (None when unknown)."""
        found = self.order(client_order_id)
        if found is None or not found.is_open:
            return found
        try:
            self.conn.read(f"DELETE /v2/orders/{found.order_id}",
                           lambda: self.conn.trading.cancel_order_by_id(found.order_id))
        except self.conn.api_error as exc:
            if api_status(exc) != 422:  # 422: no longer cancelable (filled meanwhile)
                raise BrokerError(f"alpaca: cancel of option order {client_order_id!r} failed: "
                                  f"HTTP {api_status(exc)} {_message(exc)}") from exc
        return self.order(client_order_id)

    # -- positions and expiries ---------------------------------------------------------------
    def positions(self) -> list[HeldGroup]:
        """Option positions grouped by underlying and expiry (stock positions are left out)."""
        rows = self.conn.read("GET /v2/positions", self.conn.trading.get_all_positions)
        groups: dict[tuple[str, date], list[HeldLeg]] = {}
        for row in rows:
            if _value(row.asset_class) != "us_option":
                continue
            contract = parse_occ(row.symbol)
            qty = _float(row.qty)
            if _value(row.side) == "short" and qty > 0:
                qty = -qty
            held = HeldLeg(row.symbol, contract, int(round(qty)), _float(row.avg_entry_price),
                           _float(row.current_price, math.nan),
                           _float(row.market_value, math.nan))
            groups.setdefault((contract.underlying, contract.expiry), []).append(held)
        return [HeldGroup(u, e, tuple(sorted(legs, key=lambda h: (h.contract.right,
                                                                   h.contract.strike))))
                for (u, e), legs in sorted(groups.items())]

    def expiry_events(self, since: object = None) -> list[ExpiryEvent]:
        """Expiries, exercises, assignments and their share deliveries, oldest first.

        Parameters
        ----------
        since : time-like, optional
            Only activities after this moment (tz-aware, or UTC when naive).
        """
        params: dict[str, Any] = {"activity_types": ",".join(EXPIRY_ACTIVITIES),
                                  "direction": "asc", "page_size": 100}
        if since is not None:
            params["after"] = _utc(since).isoformat()
        events: list[ExpiryEvent] = []
        while True:
            page = self.conn.read("GET /v2/account/activities",
                                  lambda p=dict(params): self.conn.trading.get(
                                      "/account/activities", p))
            events += [_expiry_event(row) for row in page or []]
            if not page or len(page) < params["page_size"]:
                return events
            params["page_token"] = page[-1]["id"]


# -- helpers --------------------------------------------------------------------------------------
def _utc(value: object) -> pd.Timestamp:
    if value is None:
        return pd.Timestamp.now(tz="UTC")
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _cents(price: float) -> float:
    value = _float(price, math.nan)
    if not math.isfinite(value):
        raise ConfigError(f"limit_price {price!r} is not a finite number.")
    return round(value, 2)


def _leg_symbol(position: OptionPosition, leg: Leg) -> str:
    if leg.multiplier != 100:
        raise ConfigError(f"leg {leg.describe()} has multiplier {leg.multiplier}; Alpaca lists "
                          "standard 100-share contracts only.")
    return occ_symbol(position.underlying, leg.expiry, leg.right, leg.strike)


def _checked_legs(position: OptionPosition, client_order_id: str, intent: str) -> tuple[Leg, ...]:
    if intent not in ("open", "close"):
        raise ConfigError(f"intent {intent!r}; expected 'open' or 'close'.")
    if not position.underlying:
        raise ConfigError("the position has no underlying; OCC symbols need its ticker.")
    if position.stock_shares:
        raise ConfigError(f"the position holds {position.stock_shares} shares; send the stock "
                          "as its own order and only the option legs here.")
    if not 1 <= len(position.legs) <= 4:
        raise ConfigError(f"the position has {len(position.legs)} legs; one Alpaca order takes "
                          "1 to 4 option legs.")
    symbols = [_leg_symbol(position, leg) for leg in position.legs]
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"legs repeat a contract ({symbols}); merge them into one leg.")
    if not client_order_id or len(client_order_id) > MAX_CLIENT_ORDER_ID:
        raise ConfigError(f"client_order_id {client_order_id!r} must be 1-{MAX_CLIENT_ORDER_ID} "
                          "characters; see spread_client_id().")
    return position.legs


def _contract_info(raw: Any) -> ContractInfo:
    parsed = parse_occ(raw.symbol)
    return ContractInfo(raw.symbol, str(raw.underlying_symbol), raw.expiration_date,
                        parsed.right, float(raw.strike_price), int(_float(raw.size, 100)),
                        _value(raw.style), bool(raw.tradable), str(raw.id))


def _order_record(raw: Any) -> OptionOrderRecord:
    if raw.legs:
        legs = tuple(_order_leg(leg, int(round(_float(leg.ratio_qty, 1.0)))) for leg in raw.legs)
    else:
        legs = (_order_leg(raw, 1),)
    filled = _float(raw.filled_qty)
    net = math.nan
    if filled and all(math.isfinite(leg.average_price) for leg in legs):
        net = sum((1 if leg.side == "buy" else -1) * leg.ratio * leg.average_price for leg in legs)
    limit = None if raw.limit_price is None else _float(raw.limit_price)
    if limit is not None and not raw.legs and legs[0].side == "sell":
        limit = -limit  # one convention for every order: credits are negative
    status = _value(raw.status)
    return OptionOrderRecord(raw.client_order_id, str(raw.id), _STATUS.get(status, "new"), status,
                             _float(raw.qty), filled, net, limit, legs)


def _order_leg(raw: Any, ratio: int) -> OrderLeg:
    filled = _float(raw.filled_qty)
    average = _float(raw.filled_avg_price, math.nan) if filled else math.nan
    return OrderLeg(raw.symbol, _value(raw.side), ratio, _value(raw.position_intent), filled,
                    average)


def _expiry_event(row: dict) -> ExpiryEvent:
    kind = str(row.get("activity_type", ""))
    symbol = str(row.get("symbol", ""))
    contract = parse_occ(symbol) if OCC_PATTERN.fullmatch(symbol) else None
    return ExpiryEvent(str(row["id"]), EXPIRY_ACTIVITIES.get(kind, kind.lower()), kind, symbol,
                       as_date(str(row.get("date", ""))[:10], "activity date"),
                       _float(row.get("qty")), _float(row.get("price"), math.nan),
                       _float(row.get("net_amount")), contract)


def _chain_from_snapshots(underlying: str, raw: dict, spot: float) -> OptionChain:
    """Rows of :data:`CHAIN_COLUMNS` from ``{symbol: snapshot}`` (alpaca-py's raw chain)."""
    rows, stamps = [], []
    for symbol, snap in raw.items():
        contract = parse_occ(symbol)
        quote, trade = snap.get("latestQuote") or {}, snap.get("latestTrade") or {}
        bid, ask = _float(quote.get("bp"), math.nan), _float(quote.get("ap"), math.nan)
        if not (0.0 <= bid <= ask):
            bid = ask = math.nan  # one-sided or crossed: treat as not quoted
        if quote.get("t"):
            stamps.append(_utc(quote["t"]))
        rows.append({
            "underlying": underlying, "expiry": contract.expiry, "right": contract.right,
            "strike": contract.strike, "bid": bid, "ask": ask,
            "last": _float(trade.get("p"), math.nan), "volume": math.nan,
            "open_interest": math.nan, "iv": _float(snap.get("impliedVolatility"), math.nan),
            "contract": symbol,
            "last_trade_time": _utc(trade["t"]) if trade.get("t") else pd.NaT})
    snapshot = max(stamps) if stamps else pd.Timestamp.now(tz="UTC")
    today = snapshot.tz_convert(NEW_YORK).date()
    frame = pd.DataFrame(rows)
    frame = frame[frame["expiry"] >= today]  # expired contracts still quoted: not in a chain
    if frame.empty:
        raise DataError(f"every {underlying} option snapshot is for an expired contract.")
    frame = frame.assign(snapshot=snapshot, underlying_price=float(spot))
    frame["iv"] = frame["iv"].where(np.isfinite(frame["iv"]) & (frame["iv"] > 0))
    frame["last_trade_time"] = pd.to_datetime(frame["last_trade_time"], utc=True)
    return OptionChain(frame[[*CHAIN_COLUMNS, "last_trade_time"]].reset_index(drop=True),
                       f"alpaca:{underlying}")
