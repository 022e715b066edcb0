"""Options on the fake Alpaca: contracts, chain snapshots, option orders, positions, expiries.

Everything is driven by the fake's market time and the seeded bars of the underlying, so quotes
stay coherent with the stock: listed expiries and strike grids come from
:mod:`framework.options.synthetic` (or a fixed list in :class:`OptionsSpec`), prices from the
synthetic smile and Black-Scholes-Merton (:mod:`framework.options.bsm`), bid/ask from the
synthetic half-spread rounded to the tick.

Endpoints (routed here by ``rest.py`` before the stock handlers; stock requests pass through):

* ``GET /v2/options/contracts`` (underlying_symbols, status, expiration_date[_gte|_lte],
  root_symbol, type, style, strike_price_gte/lte, limit + page_token) and
  ``GET /v2/options/contracts/{symbol_or_id}``;
* ``GET /v1beta1/options/snapshots/{underlying}`` (the chain: latestQuote, latestTrade once the
  contract traded here, impliedVolatility, greeks), paged by ``page_token``;
* ``GET /v2/stocks/trades/latest`` (the underlying's mark, so a client can price the chain);
* ``POST /v2/orders`` with an OCC symbol (single leg) or ``order_class: mleg`` with ``legs``;
  ``GET /v2/orders[...]``, ``DELETE /v2/orders/{id}``, positions, account and activities are
  answered for options and stocks together.

Verified against alpaca-py 0.44.0 (the client parses what is sent here): the request and
response field names, ``legs``/``ratio_qty``/``position_intent``, mleg ``limit_price`` signed
(positive debit, negative credit: the ``LimitOrderRequest`` docstring), ``asset_class``
``us_option``, the activity types OPEXP/OPASN/OPEXC/OPTRD (``ActivityType``). From Alpaca's
"Non-Trade Activities for Option Events" page: the OPASN/OPEXC/OPTRD row fields (id,
activity_type, date, net_amount, description, symbol, qty, price, status) and that ITM options
are exercised automatically at expiry.

ASSUMED (not verified by ../shared/notes/alpaca.md; see each place):

* the OPEXP row has the OPASN shape with description "Option Expiry"; ``qty`` of OPEXP/OPASN/
  OPEXC is the change of the option position (e.g. "1" when a short contract goes away);
* assignment and exercise happen only at expiry, when ITM by at least $0.01 at the underlying's
  close (OCC exercise by exception), never early; the stock is delivered at the strike;
* mleg orders fill all legs at once at the quotes (buy at the ask, sell at the bid), checked
  only when a request reaches the fake while the market is open (no fills between requests);
  the parent's ``filled_avg_price`` is the signed net per spread (debit positive);
* mleg responses carry ``legs`` always (not only with ``nested``); leg ids are not orders of
  their own (``GET /v2/orders/{leg id}`` answers 404); option orders must be DAY orders;
* snapshot ``greeks`` use fw's conventions (theta per calendar day, vega and rho per point);
  Alpaca's scaling is unknown; snapshot pages hold at most 1000 rows, contract pages 10000;
* buying power is checked only against the net debit (no margin for short options); no trade
  updates are pushed on the websocket for option orders.
"""

from __future__ import annotations

import base64
import math
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import date

import numpy as np
import pandas as pd

from framework.errors import ConfigError
from framework.options.bsm import bsm_greeks
from framework.options.synthetic import (
    DEFAULT_SPEC,
    SyntheticChainSpec,
    atm_term_iv,
    half_spread,
    listed_expiries,
    strike_grid,
    surface_iv,
)

from . import trading
from .market import Market, asset_id
from .orders import CLOSED_STATUSES, ApiReject, client_order_id, malformed, number, positive
from .sessions import NEW_YORK, iso
from .trading import (
    Call,
    DropConnection,
    injected_body,
    query_bool,
    query_choice,
    query_int,
    query_list,
    query_time,
)

MULTIPLIER = 100
OCC = re.compile(r"(?P<root>[A-Z0-9]{1,6})(?P<day>\d{6})(?P<right>[CP])(?P<strike>\d{8})\Z")
NTA_TYPES = ("OPEXP", "OPASN", "OPEXC", "OPTRD")
ITM_CENTS = 0.01  # OCC exercise by exception: ITM by a cent or more is exercised
_CLOSE = pd.Timedelta(hours=16)
_YEAR_SECONDS = 365.0 * 86400.0
_INTENTS = ("buy_to_open", "buy_to_close", "sell_to_open", "sell_to_close")
_DESCRIPTIONS = {"OPEXP": "Option Expiry", "OPASN": "Option Assignment",
                 "OPEXC": "Option Exercise", "OPTRD": "Option Trade"}
# a smaller default grid than the backtest model's: tests page through it quickly
_FAKE_CHAIN = replace(DEFAULT_SPEC, iv_source="atm", weekly_max_days=35, monthly_max_days=70,
                      range_sd_put=3.0, range_sd_call=2.0, strikes_per_sd=10.0)


@dataclass(frozen=True)
class OptionsSpec:
    """How the fake lists and prices options.

    Attributes
    ----------
    atm_vol : float
        30-day at-the-money implied vol (decimal); the synthetic smile and term structure of
        ``chain`` are built around it.
    chain : SyntheticChainSpec
        Expiry horizons, strike grid density, spread model, rate and dividend yield.
    expiries : tuple of date or str, optional
        Fixed expiries (each listed until its close) instead of the weekly/monthly Fridays.
    strikes : tuple of float, optional
        Fixed strikes for every expiry instead of the synthetic grid around the spot.
    quote_size : int
        Contracts shown at the bid and at the ask.
    snapshot_page_max, contracts_page_max : int
        Largest page the snapshot and contract endpoints return (tests lower them to exercise
        pagination).
    """

    atm_vol: float = 0.18
    chain: SyntheticChainSpec = _FAKE_CHAIN
    expiries: tuple[date | str, ...] | None = None
    strikes: tuple[float, ...] | None = None
    quote_size: int = 10
    snapshot_page_max: int = 1000
    contracts_page_max: int = 10000

    def __post_init__(self) -> None:
        if not (math.isfinite(self.atm_vol) and 0 < self.atm_vol < 5):
            raise ConfigError(f"OptionsSpec.atm_vol={self.atm_vol!r}; expected a decimal vol "
                              "in (0, 5), e.g. 0.18")
        if self.expiries is not None:
            days = tuple(sorted({pd.Timestamp(str(e)).date() for e in self.expiries}))
            if not days:
                raise ConfigError("OptionsSpec.expiries is empty; give dates or leave it None")
            object.__setattr__(self, "expiries", days)
        if self.strikes is not None:
            strikes = tuple(sorted({float(k) for k in self.strikes}))
            if not strikes or strikes[0] <= 0 or not all(map(math.isfinite, strikes)):
                raise ConfigError(f"OptionsSpec.strikes={self.strikes!r}; expected positive "
                                  "finite strikes, or None for the synthetic grid")
            object.__setattr__(self, "strikes", strikes)
        for name in ("quote_size", "snapshot_page_max", "contracts_page_max"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"OptionsSpec.{name}={getattr(self, name)!r}; expected >= 1")


@dataclass(frozen=True)
class Contract:
    """One listed option contract."""

    symbol: str
    underlying: str
    expiry: date
    right: str
    strike: float

    @property
    def id(self) -> str:
        """Stable UUID of the contract (like asset ids)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-alpaca/option/{self.symbol}"))

    @property
    def call(self) -> bool:
        return self.right == "C"


def occ(underlying: str, expiry: date, right: str, strike: float) -> str:
    """OCC symbol: root, YYMMDD, C/P, strike x 1000 on 8 digits."""
    return f"{underlying}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def parse_occ(symbol: str) -> Contract | None:
    """The contract an OCC symbol names, None when it is not one."""
    match = OCC.fullmatch(symbol or "")
    if not match:
        return None
    try:
        day = pd.Timestamp("20" + match["day"]).date()
    except ValueError:
        return None
    return Contract(symbol, match["root"], day, match["right"], int(match["strike"]) / 1000.0)


# ------------------------------------------------------------------ order state
@dataclass
class _LegState:
    contract: Contract
    side: str
    ratio: int
    intent: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    filled_qty: float = 0.0
    notional: float = 0.0

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0


@dataclass
class _OrderState:
    client_order_id: str
    order_class: str
    order_type: str
    qty: int
    limit_price: float | None
    legs: list[_LegState]
    submitted_ns: int
    seq: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "new"
    updated_ns: int = 0
    filled_qty: int = 0
    filled_ns: int | None = None
    canceled_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None
    expire_ns: int | None = None
    last_fill_ns: int | None = None
    schedule: tuple[float, ...] = (1.0,)
    fills_done: int = 0
    forced: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    def wire(self) -> dict:
        """Order JSON: mleg parents carry ``legs`` and blank symbol/side (as alpaca-py expects)."""
        stamp = lambda ns: None if ns is None else iso(ns)  # noqa: E731
        base = {
            "id": self.id, "client_order_id": self.client_order_id,
            "created_at": iso(self.submitted_ns), "submitted_at": iso(self.submitted_ns),
            "updated_at": iso(self.updated_ns or self.submitted_ns),
            "filled_at": stamp(self.filled_ns), "expired_at": stamp(self.expired_ns),
            "canceled_at": stamp(self.canceled_ns), "failed_at": stamp(self.failed_ns),
            "replaced_at": None, "replaced_by": None, "replaces": None, "notional": None,
            "order_class": self.order_class, "order_type": self.order_type,
            "type": self.order_type, "time_in_force": "day", "status": self.status,
            "extended_hours": False, "expires_at": stamp(self.expire_ns),
            "trail_percent": None, "trail_price": None, "hwm": None, "stop_price": None,
            "limit_price": None if self.limit_price is None else number(self.limit_price),
        }
        if self.order_class == "simple":
            leg = self.legs[0]
            return {**base, **_leg_fields(leg), "qty": number(self.qty), "legs": None,
                    "ratio_qty": None}
        filled = self.filled_qty
        net = (sum(leg.sign * leg.notional for leg in self.legs) / filled) if filled else None
        legs = [{**base, **_leg_fields(leg), "id": leg.id, "client_order_id": leg.id,
                 "qty": number(leg.ratio * self.qty), "ratio_qty": str(leg.ratio),
                 "order_type": "", "type": "", "limit_price": None, "legs": None}
                for leg in self.legs]
        return {**base, "asset_id": "", "symbol": "", "asset_class": "", "side": "",
                "position_intent": "", "qty": number(self.qty), "filled_qty": number(filled),
                "filled_avg_price": None if net is None else number(net), "legs": legs,
                "ratio_qty": None}


def _leg_fields(leg: _LegState) -> dict:
    avg = leg.notional / leg.filled_qty if leg.filled_qty else None
    return {"asset_id": leg.contract.id, "symbol": leg.contract.symbol,
            "asset_class": "us_option", "side": leg.side, "position_intent": leg.intent,
            "filled_qty": number(leg.filled_qty),
            "filled_avg_price": None if avg is None else number(avg)}


@dataclass(frozen=True)
class _Quote:
    bid: float
    ask: float
    iv: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2.0


# ----------------------------------------------------------------------- the book
class OptionBook:
    """Option listings, orders, positions and expiry activities of one fake account.

    Shares the :class:`Market`'s lock, cash, FILL activities and stock positions (assignment
    delivers shares). State is brought up to the market time lazily by :meth:`sync`, which
    every options-aware request calls: expiries whose close has passed are settled then.
    """

    def __init__(self, market: Market, spec: OptionsSpec | None = None) -> None:
        self.market = market
        self.spec = spec or OptionsSpec()
        self.activities: list[dict] = []  # OPEXP/OPASN/OPEXC/OPTRD rows (with "_ns")
        self._listings: dict[tuple[str, date], tuple[Contract, ...]] = {}
        self._known: dict[str, Contract] = {}
        self._orders: dict[str, _OrderState] = {}
        self._by_client_id: dict[str, str] = {}
        self._positions: dict[str, list[float]] = {}  # symbol -> [signed qty, avg premium]
        self._last_trade: dict[str, tuple[float, int]] = {}
        self._seq = 0
        market.option_book = self  # the REST handlers only get the Market

    # -------------------------------------------------------------- time and listing
    def _today(self) -> date:
        return pd.Timestamp(self.market.now_ns, tz="UTC").tz_convert(NEW_YORK).date()

    def expiry_close_ns(self, expiry: date) -> int:
        """When ``expiry`` settles: that session's close (13:00 on half days), else 16:00 NY."""
        dates = self.market.sessions.dates
        day = pd.Timestamp(expiry)
        position = int(dates.searchsorted(day))
        if position < len(dates) and dates[position] == day:
            return int(self.market.sessions.closes[position])
        return (day + _CLOSE).tz_localize(NEW_YORK).tz_convert("UTC").value

    def _years(self, expiry: date, now_ns: int) -> float:
        # New York wall clock to 16:00 on the expiry day, ACT/365, like OptionChain.t_years
        start = pd.Timestamp(now_ns, tz="UTC").tz_convert(NEW_YORK).tz_localize(None)
        return max(0.0, (pd.Timestamp(expiry) + _CLOSE - start).total_seconds() / _YEAR_SECONDS)

    def listing(self, underlying: str) -> tuple[Contract, ...]:
        """Contracts listed today on ``underlying`` (cached per New York date)."""
        key = (underlying, self._today())
        if key not in self._listings:
            self._listings[key] = self._build_listing(underlying, key[1])
            self._known.update({c.symbol: c for c in self._listings[key]})
        return self._listings[key]

    def _build_listing(self, underlying: str, day: date) -> tuple[Contract, ...]:
        chain, now = self.spec.chain, self.market.now_ns
        midnight = pd.Timestamp(day).tz_localize(NEW_YORK).value
        spot = self.market.series[underlying].reference_price(midnight)  # the last close
        if self.spec.expiries is not None:
            expiries = [e for e in self.spec.expiries if self.expiry_close_ns(e) > now]
        else:
            expiries = listed_expiries(day, chain, sessions=self.market.sessions.dates)
        contracts = []
        for expiry in expiries:
            t = max(self._years(expiry, midnight), 1.0 / 365.0)
            if self.spec.strikes is not None:
                strikes = self.spec.strikes
            else:
                forward = spot * math.exp((chain.rate - chain.dividend_yield) * t)
                atm = float(atm_term_iv(self.spec.atm_vol, np.array(t), chain))
                strikes = tuple(float(k) for k in strike_grid(spot, forward, atm, t, chain))
            for right in ("C", "P"):
                contracts += [Contract(occ(underlying, expiry, right, k), underlying, expiry,
                                       right, k) for k in strikes]
        return tuple(sorted(contracts, key=lambda c: c.symbol))

    def contract(self, symbol: str) -> Contract:
        """A tradable contract by OCC symbol; 422 when unknown or expired."""
        found = self._known.get(symbol)
        if found is None:
            parsed = parse_occ(symbol)
            if parsed is not None and parsed.underlying in self.market.series:
                self.listing(parsed.underlying)
                found = self._known.get(symbol)
        if found is None:
            raise malformed(f"asset {symbol!r} not found (not a listed option contract)")
        if self.expiry_close_ns(found.expiry) <= self.market.now_ns:
            raise malformed(f"asset {symbol} is not tradable: the contract expired")
        return found

    def known(self, symbol_or_id: str) -> Contract | None:
        """A contract seen by this fake (listed or traded), by symbol or id."""
        if symbol_or_id in self._known:
            return self._known[symbol_or_id]
        return next((c for c in self._known.values() if c.id == symbol_or_id), None)

    # ------------------------------------------------------------------- pricing
    def quotes(self, contracts: list[Contract]) -> list[_Quote]:
        """Bid/ask, surface vol and greeks of ``contracts`` at the current market time."""
        out: list[_Quote | None] = [None] * len(contracts)
        chain, now, vol = self.spec.chain, self.market.now_ns, self.spec.atm_vol
        for underlying in sorted({c.underlying for c in contracts}):
            picks = [i for i, c in enumerate(contracts) if c.underlying == underlying]
            spot = self.market.series[underlying].reference_price(now)
            strike = np.array([contracts[i].strike for i in picks])
            call = np.array([contracts[i].call for i in picks])
            t = np.array([self._years(contracts[i].expiry, now) for i in picks])
            live = t > 0
            intrinsic = np.where(call, np.maximum(spot - strike, 0), np.maximum(strike - spot, 0))
            bid, ask = intrinsic.copy(), intrinsic.copy()
            values = {name: np.full(len(picks), np.nan) for name in
                      ("iv", "delta", "gamma", "theta", "vega", "rho")}
            if live.any():
                tl, kl, cl = t[live], strike[live], call[live]
                moneyness = np.log(kl / (spot * np.exp((chain.rate - chain.dividend_yield) * tl)))
                iv = surface_iv(vol, tl, moneyness, chain)
                z = moneyness / (atm_term_iv(vol, tl, chain) * np.sqrt(tl))
                greeks = bsm_greeks(spot, kl, tl, chain.rate, chain.dividend_yield, iv, cl)
                half = half_spread(greeks.price, z, vol, chain)
                tick = chain.tick
                bid[live] = np.maximum(np.floor((greeks.price - half) / tick + 1e-9), 0) * tick
                ask[live] = np.maximum(np.ceil((greeks.price + half) / tick - 1e-9), 1) * tick
                values["iv"][live] = iv
                for name in ("delta", "gamma", "theta", "vega", "rho"):
                    values[name][live] = getattr(greeks, name)
            for j, i in enumerate(picks):
                out[i] = _Quote(round(float(bid[j]), 4), round(float(ask[j]), 4),
                                *(float(values[n][j]) for n in
                                  ("iv", "delta", "gamma", "theta", "vega", "rho")))
        return out  # type: ignore[return-value]

    # --------------------------------------------------------------------- orders
    def submit(self, body: object) -> dict:
        """Validate and accept an option order; its JSON as of acceptance."""
        with self.market.lock:
            self.sync()
            order = self._parse(body)
            if (order.client_order_id in self._by_client_id
                    or _equity_has(self.market, order.client_order_id)):
                raise malformed("client_order_id must be unique")
            self._check_buying_power(order)
            schedule = self.market.faults.partial_fills
            if schedule:
                order.schedule = tuple(float(p) for p in schedule)
            order.forced = self.market.faults.take_force_outcome()
            order.expire_ns = self.market.sessions.next_close(self.market.now_ns)
            self._orders[order.id] = order
            self._by_client_id[order.client_order_id] = order.id
            if order.forced == "rejected":
                self._finish(order, "rejected", self.market.now_ns)
            snapshot = order.wire()
            self._run_orders()
            return snapshot

    def _parse(self, body: object) -> _OrderState:
        if not isinstance(body, dict):
            raise ApiReject(400, 40010000,
                            "request body format is invalid (expected a JSON object)")
        if body.get("notional") is not None:
            raise malformed("notional is not supported for options; send qty in contracts")
        qty = _whole(positive(body, "qty"), "qty")
        order_type = body.get("type", body.get("order_type"))
        if order_type not in ("market", "limit"):
            raise malformed(f"order type {order_type!r} is not supported for options "
                            "(market, limit)")
        if body.get("time_in_force") != "day":
            raise malformed(f"invalid time_in_force {body.get('time_in_force')!r}: options "
                            "orders must be DAY orders")
        limit = _limit(body, order_type)
        order_class = body.get("order_class") or "simple"
        if order_class == "mleg":
            legs = self._mleg_legs(body.get("legs"), qty)
        elif order_class == "simple":
            if limit is not None and limit <= 0:
                raise malformed(f"limit_price must be > 0, got {limit!r}")
            legs = [self._leg(body, qty, ratio=1)]
        else:
            raise malformed(f"order_class {order_class!r} is not supported for options "
                            "(simple, mleg)")
        self._seq += 1
        return _OrderState(client_order_id(body.get("client_order_id")), order_class,
                           order_type, qty, limit, legs, self.market.now_ns, self._seq,
                           updated_ns=self.market.now_ns)

    def _mleg_legs(self, raw: object, qty: int) -> list[_LegState]:
        if not isinstance(raw, list) or not 2 <= len(raw) <= 4:
            raise malformed("mleg orders need 2 to 4 legs")
        legs = [self._leg(item, qty, ratio=_whole(positive(item, "ratio_qty"), "ratio_qty"))
                if isinstance(item, dict) else _bad_leg(item) for item in raw]
        if len({leg.contract.symbol for leg in legs}) != len(legs):
            raise malformed("all legs must have unique symbols")
        if len({leg.contract.underlying for leg in legs}) != 1:
            raise malformed("all legs of an mleg order must share one underlying")
        return legs

    def _leg(self, item: dict, qty: int, ratio: int) -> _LegState:
        contract = self.contract(str(item.get("symbol") or ""))
        side, intent = item.get("side"), item.get("position_intent")
        if side is None and intent is None:
            raise malformed("each leg needs side or position_intent")
        if intent is not None and intent not in _INTENTS:
            raise malformed(f"invalid position_intent {intent!r} (expected one of {_INTENTS})")
        side = side or intent.split("_")[0]
        if side not in ("buy", "sell"):
            raise malformed(f"invalid side: {side!r} (expected 'buy' or 'sell')")
        held = self._positions.get(contract.symbol, [0.0, 0.0])[0]
        if intent is None:  # like Alpaca: a sell against a long closes it, otherwise it opens
            closing = (held > 0) if side == "sell" else (held < 0)
            intent = f"{side}_to_{'close' if closing else 'open'}"
        if not intent.startswith(side):
            raise malformed(f"position_intent {intent} contradicts side {side}")
        wanted = ratio * qty
        if intent.endswith("close"):
            available = held if side == "sell" else -held
            if available < wanted:
                raise ApiReject(403, 40310000, "insufficient qty available for order "
                                f"(requested: {wanted}, available: {number(max(available, 0))})")
        return _LegState(contract, side, ratio, intent)

    def _check_buying_power(self, order: _OrderState) -> None:
        if order.limit_price is not None:
            pays = order.order_class == "mleg" or order.legs[0].side == "buy"
            debit = order.limit_price if pays else 0.0
        else:
            debit = self._natural(order)
        cost = max(debit, 0.0) * order.qty * MULTIPLIER
        if cost > self.market.buying_power():
            raise ApiReject(403, 40310000, "insufficient options buying power")

    def _natural(self, order: _OrderState) -> float:
        """Net price per spread at the quotes, debit positive (buy at ask, sell at bid)."""
        quotes = self.quotes([leg.contract for leg in order.legs])
        return sum(leg.ratio * (q.ask if leg.side == "buy" else -q.bid)
                   for leg, q in zip(order.legs, quotes, strict=True))

    def cancel(self, order_id: str) -> bool:
        """Cancel an open option order (True), False when ``order_id`` is not an option order."""
        with self.market.lock:
            self.sync()
            order = self._orders.get(order_id)
            if order is None:
                return False
            if not order.is_open:
                raise ApiReject(422, 42210000, f"order is not cancelable (status {order.status})")
            self._finish(order, "canceled", self.market.now_ns)
            return True

    def order(self, order_id: str | None = None, client_id: str | None = None) -> dict | None:
        """Wire JSON of an option order (None when unknown; 404 when it 'disappeared')."""
        with self.market.lock:
            self.sync()
            if client_id is not None:
                order_id = self._by_client_id.get(client_id)
            order = self._orders.get(order_id or "")
            if order is None:
                return None
            if order.client_order_id in self.market.faults.disappear:
                raise ApiReject(404, 40410000, f"order not found for {client_id or order_id}")
            return order.wire()

    def orders(self) -> list[dict]:
        """Every option order in wire format, oldest first."""
        with self.market.lock:
            return [o.wire() for o in sorted(self._orders.values(), key=lambda o: o.seq)]

    def _finish(self, order: _OrderState, status: str, when: int) -> None:
        order.status, order.updated_ns = status, when
        setattr(order, {"canceled": "canceled_ns", "expired": "expired_ns",
                        "rejected": "failed_ns"}[status], when)

    # ------------------------------------------------------------------ time passes
    def sync(self) -> None:
        """Bring the book to market time: DAY expiries, contract settlement, then fills."""
        with self.market.lock:
            now = self.market.now_ns
            for order in self._open_orders():
                if order.expire_ns is not None and order.expire_ns <= now:
                    self._finish(order, "expired", order.expire_ns)
            self._settle(now)
            self._run_orders()

    def _open_orders(self) -> list[_OrderState]:
        return sorted((o for o in self._orders.values() if o.is_open), key=lambda o: o.seq)

    def _run_orders(self) -> None:
        now = self.market.now_ns
        for order in self._open_orders():
            if order.forced in ("canceled", "expired"):
                self._finish(order, order.forced, now)
            # options trade in regular hours only: DAY orders sent outside them wait
            elif (self.market.sessions.is_open(now) and order.last_fill_ns != now
                  and self._marketable(order)):
                self._fill_part(order, now)

    def _marketable(self, order: _OrderState) -> bool:
        if order.limit_price is None:
            return True
        if order.order_class == "mleg":
            return self._natural(order) <= order.limit_price + 1e-9
        quote = self.quotes([order.legs[0].contract])[0]
        if order.legs[0].side == "buy":
            return quote.ask <= order.limit_price + 1e-9
        return quote.bid >= order.limit_price - 1e-9

    def _fill_part(self, order: _OrderState, now: int) -> None:
        """Fill the next part of the schedule on every leg at once, at the quotes."""
        remaining = order.qty - order.filled_qty
        last = order.fills_done >= len(order.schedule) - 1
        share = round(order.qty * order.schedule[order.fills_done])
        part = remaining if last else min(remaining, max(1, share))
        order.fills_done += 1
        order.filled_qty += part
        order.last_fill_ns = order.updated_ns = now
        done = order.filled_qty >= order.qty
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_ns = now
        quotes = self.quotes([leg.contract for leg in order.legs])
        for leg, quote in zip(order.legs, quotes, strict=True):
            qty = part * leg.ratio
            price = quote.ask if leg.side == "buy" else quote.bid
            leg.filled_qty += qty
            leg.notional += qty * price
            self.market.cash -= leg.sign * qty * price * MULTIPLIER
            self._apply_position(leg.contract.symbol, leg.sign * qty, price)
            self._last_trade[leg.contract.symbol] = (price, now)
            self.market.activities.append(_fill_activity(self.market.account_id, order, leg, qty,
                                                         price, now, done))

    def _apply_position(self, symbol: str, signed: float, price: float) -> None:
        qty, avg = self._positions.get(symbol, [0.0, 0.0])
        new_qty = qty + signed
        if qty == 0 or (new_qty != 0 and (qty > 0) != (new_qty > 0)):
            avg = price
        elif abs(new_qty) > abs(qty):
            avg = (abs(qty) * avg + abs(signed) * price) / abs(new_qty)
        if new_qty == 0:
            self._positions.pop(symbol, None)
        else:
            self._positions[symbol] = [new_qty, avg]

    def _settle(self, now: int) -> None:
        """Expire, exercise or assign every held contract whose expiry close has passed."""
        due = sorted((self.expiry_close_ns(self._known[s].expiry), s) for s in self._positions
                     if self.expiry_close_ns(self._known[s].expiry) <= now)
        for close_ns, symbol in due:
            contract, held = self._known[symbol], self._positions.pop(symbol)[0]
            settle = self.market.series[contract.underlying].reference_price(close_ns)
            itm = (settle - contract.strike) if contract.call else (contract.strike - settle)
            if itm < ITM_CENTS:
                self._nta("OPEXP", close_ns, symbol, -held)
                continue
            self._nta("OPEXC" if held > 0 else "OPASN", close_ns, symbol, -held)
            shares = held * MULTIPLIER * (1.0 if contract.call else -1.0)
            self._nta("OPTRD", close_ns, contract.underlying, shares, price=contract.strike,
                      net=-shares * contract.strike)
            # market.py has no public hook for deliveries that are not order fills
            self.market.cash -= shares * contract.strike
            self.market._apply_position(contract.underlying, shares, contract.strike)

    def _nta(self, kind: str, when: int, symbol: str, qty: float, price: float | None = None,
             net: float = 0.0) -> None:
        row = {"id": f"{_id_prefix(when)}::{uuid.uuid4()}", "activity_type": kind,
               "date": pd.Timestamp(when, tz="UTC").tz_convert(NEW_YORK).strftime("%Y-%m-%d"),
               "net_amount": number(net), "description": _DESCRIPTIONS[kind], "symbol": symbol,
               "qty": number(qty), "status": "executed", "_ns": when}
        if price is not None:
            row["price"] = number(price)
        self.activities.append(row)

    # ------------------------------------------------------------------ positions
    def positions_json(self) -> list[dict]:
        """``GET /v2/positions`` rows of the option positions."""
        with self.market.lock:
            symbols = sorted(self._positions)
            quotes = self.quotes([self._known[s] for s in symbols])
            return [self._position_json(s, q) for s, q in zip(symbols, quotes, strict=True)]

    def position_json(self, symbol: str) -> dict | None:
        with self.market.lock:
            if symbol not in self._positions:
                return None
            return self._position_json(symbol, self.quotes([self._known[symbol]])[0])

    def _position_json(self, symbol: str, quote: _Quote) -> dict:
        qty, avg = self._positions[symbol]
        value, cost = qty * quote.mid * MULTIPLIER, qty * avg * MULTIPLIER
        return {"asset_id": self._known[symbol].id, "symbol": symbol, "exchange": "",
                "asset_class": "us_option", "asset_marginable": False,
                "avg_entry_price": number(avg), "qty": number(qty), "qty_available": number(qty),
                "side": "long" if qty > 0 else "short", "market_value": number(value),
                "cost_basis": number(cost), "unrealized_pl": number(value - cost),
                "unrealized_plpc": number((value - cost) / abs(cost)) if cost else "0",
                "unrealized_intraday_pl": "0", "unrealized_intraday_plpc": "0",
                "current_price": number(quote.mid), "lastday_price": number(quote.mid),
                "change_today": "0"}

    def position_qty(self) -> dict[str, float]:
        """{OCC symbol: signed contracts} of open option positions."""
        with self.market.lock:
            self.sync()
            return {s: q for s, (q, _) in self._positions.items()}

    def market_value(self) -> tuple[float, float]:
        """(long, short) market value of the option positions in dollars."""
        rows = self.positions_json()
        values = [float(r["market_value"]) for r in rows]
        return sum(v for v in values if v > 0), sum(v for v in values if v < 0)


# ------------------------------------------------------------------ small helpers
def _book(market: Market) -> OptionBook:
    book = getattr(market, "option_book", None)
    if book is None:
        raise ConfigError("this Market has no OptionBook; FakeAlpaca creates one")
    return book


def _whole(value: float, key: str) -> int:
    if value != int(value):
        raise malformed(f"{key} must be a whole number of contracts, got {value!r}")
    return int(value)


def _limit(body: dict, order_type: str) -> float | None:
    value = body.get("limit_price")
    if order_type == "market":
        if value is not None:
            raise malformed("limit_price must not be set for market orders")
        return None
    try:
        limit = float(value)
    except (TypeError, ValueError):
        raise malformed(f"invalid limit_price: {value!r} (expected a number)") from None
    if not math.isfinite(limit):
        raise malformed(f"invalid limit_price: {value!r}")
    return limit


def _bad_leg(item: object) -> _LegState:
    raise malformed(f"invalid leg {item!r} (expected an object with symbol and ratio_qty)")


def _equity_has(market: Market, client_id: str) -> bool:
    try:
        market.order_by_client_id(client_id)
    except ApiReject:
        return False
    return True


def _id_prefix(when: int) -> str:
    stamp = pd.Timestamp(when, tz="UTC")
    return stamp.strftime("%Y%m%d%H%M%S") + f"{stamp.microsecond // 1000:03d}"


def _fill_activity(account_id: str, order: _OrderState, leg: _LegState, qty: float,
                   price: float, when: int, done: bool) -> dict:
    return {"id": f"{_id_prefix(when)}::{uuid.uuid4()}", "account_id": account_id,
            "activity_type": "FILL", "transaction_time": iso(when),
            "type": "fill" if done else "partial_fill", "price": number(price),
            "qty": number(qty), "side": leg.side, "symbol": leg.contract.symbol,
            "leaves_qty": number(order.qty * leg.ratio - leg.filled_qty), "order_id": leg.id,
            "cum_qty": number(leg.filled_qty), "order_status": order.status, "_ns": when}


def _is_option_order(body: object) -> bool:
    if not isinstance(body, dict):
        return False
    return body.get("order_class") == "mleg" or bool(OCC.fullmatch(str(body.get("symbol") or "")))


def _encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        raise malformed(f"invalid page_token: {token!r}") from None


def _number_query(call: Call, key: str) -> float | None:
    value = call.query.get(key)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise malformed(f"invalid {key}: {value!r} (expected a number)") from None


def _date_query(call: Call, key: str) -> date | None:
    value = call.query.get(key)
    if value in (None, ""):
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise malformed(f"invalid {key}: {value!r} (expected YYYY-MM-DD)")
    return date.fromisoformat(value)


def _filtered(contracts: tuple[Contract, ...], call: Call) -> list[Contract]:
    """Filters shared by the contracts and snapshot endpoints."""
    kind = call.query.get("type")
    if kind not in (None, "", "call", "put"):
        raise malformed(f"invalid type: {kind!r} (expected call or put)")
    low, high = _number_query(call, "strike_price_gte"), _number_query(call, "strike_price_lte")
    exact = _date_query(call, "expiration_date")
    first, last = _date_query(call, "expiration_date_gte"), _date_query(call, "expiration_date_lte")
    root = call.query.get("root_symbol")
    return [c for c in contracts
            if (not kind or c.right == kind[0].upper())
            and (low is None or c.strike >= low) and (high is None or c.strike <= high)
            and (exact is None or c.expiry == exact)
            and (first is None or c.expiry >= first) and (last is None or c.expiry <= last)
            and (not root or c.underlying == root)]


def _page(items: list[Contract], call: Call, default: int, maximum: int,
          cap: int) -> tuple[list[Contract], str | None]:
    token = call.query.get("page_token")
    if token:
        after = _decode(token)
        items = [c for c in items if c.symbol > after]
    size = min(query_int(call, "limit", default, maximum), cap)
    page = items[:size]
    following = _encode(page[-1].symbol) if len(items) > size else None
    return page, following


# ------------------------------------------------------------------ endpoints
def _contract_json(contract: Contract) -> dict:
    kind = "call" if contract.call else "put"
    return {
        "id": contract.id, "symbol": contract.symbol,
        "name": f"{contract.underlying} {contract.expiry:%b %d %Y} {contract.strike:g} "
                f"{kind.title()}",
        "status": "active", "tradable": True, "expiration_date": contract.expiry.isoformat(),
        "root_symbol": contract.underlying, "underlying_symbol": contract.underlying,
        "underlying_asset_id": asset_id(contract.underlying), "type": kind, "style": "american",
        "strike_price": number(contract.strike), "multiplier": str(MULTIPLIER),
        "size": str(MULTIPLIER), "open_interest": None, "open_interest_date": None,
        "close_price": None, "close_price_date": None}


def list_contracts(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/options/contracts``: listed contracts, paged by ``page_token``."""
    book = _book(market)
    status = call.query.get("status") or "active"
    if status not in ("active", "inactive"):
        raise malformed(f"invalid status: {status!r} (expected active or inactive)")
    style = call.query.get("style")
    if style not in (None, "", "american", "european"):
        raise malformed(f"invalid style: {style!r} (expected american or european)")
    with market.lock:
        book.sync()
        wanted = query_list(call, "underlying_symbols") or sorted(market.series)
        listed = tuple(c for u in wanted if u in market.series for c in book.listing(u))
    if status == "inactive" or style == "european":
        listed = ()  # every fake contract is an active American option
    rows, following = _page(_filtered(listed, call), call, 100, 10000,
                            book.spec.contracts_page_max)
    return 200, {"option_contracts": [_contract_json(c) for c in rows],
                 "next_page_token": following}


def get_contract(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/options/contracts/{symbol_or_id}``: 404 when unknown."""
    book = _book(market)
    key = call.match.group("key")
    with market.lock:
        parsed = parse_occ(key)
        if parsed is not None and parsed.underlying in market.series:
            book.listing(parsed.underlying)
        found = book.known(key)
    if found is None:
        raise ApiReject(404, 40410000, f"option contract not found for {key}")
    return 200, _contract_json(found)


def snapshots(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v1beta1/options/snapshots/{underlying}``: quotes, vol and greeks of the chain."""
    book = _book(market)
    feed = (call.query.get("feed") or "indicative").lower()
    if feed not in ("indicative", "opra"):
        raise ApiReject(400, None, f"invalid feed: {call.query.get('feed')!r} "
                        "(expected indicative or opra)")
    underlying = call.match.group("underlying").upper()
    with market.lock:
        book.sync()
        listed = book.listing(underlying) if underlying in market.series else ()
        rows, following = _page(_filtered(listed, call), call, 100, 1000,
                                book.spec.snapshot_page_max)
        quotes = book.quotes(rows)
        now = iso(market.now_ns)
        trades = {c.symbol: book._last_trade.get(c.symbol) for c in rows}
    size = book.spec.quote_size
    result = {}
    for contract, quote in zip(rows, quotes, strict=True):
        entry: dict = {"latestQuote": {"ap": quote.ask, "as": size, "ax": "C", "bp": quote.bid,
                                       "bs": size, "bx": "C", "c": "A", "t": now}}
        trade = trades[contract.symbol]
        if trade is not None:
            entry["latestTrade"] = {"c": "I", "p": trade[0], "s": 1, "t": iso(trade[1]),
                                    "x": "C"}
        if math.isfinite(quote.iv):
            entry["impliedVolatility"] = quote.iv
            entry["greeks"] = {name: getattr(quote, name) for name in
                               ("delta", "gamma", "rho", "theta", "vega")}
        result[contract.symbol] = entry
    return 200, {"snapshots": result, "next_page_token": following}


def latest_trades(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/stocks/trades/latest``: the stock's mark as its last trade."""
    symbols = query_list(call, "symbols")
    if not symbols:
        raise ApiReject(400, None, "missing symbols (pass symbols=SPY,QQQ)")
    with market.lock:
        now = market.now_ns
        result = {}
        for symbol in symbols:
            series = market.series.get(symbol)
            price = None if series is None else series.mark(now)
            if price is not None:
                result[symbol] = {"t": iso(now), "x": "V", "p": price, "s": 100, "c": ["@"],
                                  "i": 1, "z": "B"}
    return 200, {"trades": result}


def submit_order(market: Market, call: Call) -> tuple[int, object]:
    """``POST /v2/orders``: option orders here, stock orders to the stock handler."""
    book = _book(market)
    if not _is_option_order(call.body):
        cid = call.body.get("client_order_id") if isinstance(call.body, dict) else None
        if cid and cid in book._by_client_id:
            raise malformed("client_order_id must be unique")
        return trading.submit_order(market, call)
    order = book.submit(call.body)
    failure = market.faults.take_accept_then_fail()
    if failure == "drop":
        raise DropConnection()
    if failure is not None:
        return int(failure), injected_body(int(failure))
    return 200, order


def order_by_client_id(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/orders:by_client_order_id``: option orders first, then stock orders."""
    client_id = call.query.get("client_order_id")
    found = _book(market).order(client_id=client_id) if client_id else None
    return (200, found) if found is not None else trading.order_by_client_id(market, call)


def get_order(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/orders/{id}``."""
    found = _book(market).order(order_id=call.match.group("id"))
    return (200, found) if found is not None else trading.get_order(market, call)


def cancel_order(market: Market, call: Call) -> tuple[int, object]:
    """``DELETE /v2/orders/{id}``."""
    if _book(market).cancel(call.match.group("id")):
        return 204, None
    return trading.cancel_order(market, call)


def list_orders(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/orders``: stock and option orders merged (same filters)."""
    status, stock_orders = trading.list_orders(market, call)
    book = _book(market)
    book.sync()
    wanted = query_choice(call, "status", ("open", "closed", "all"), "open")
    after, until = query_time(call, "after"), query_time(call, "until")
    newest_first = query_choice(call, "direction", ("asc", "desc"), "desc") == "desc"
    query_bool(call, "nested")
    symbols, side = set(query_list(call, "symbols")), call.query.get("side")
    chosen = []
    for order in book.orders():
        closed = order["status"] in CLOSED_STATUSES
        leg_symbols = {leg["symbol"] for leg in order["legs"] or []} | {order["symbol"]}
        stamp = pd.Timestamp(order["submitted_at"]).value
        if ((wanted == "all" or (wanted == "closed") == closed)
                and (after is None or stamp > after) and (until is None or stamp < until)
                and (not symbols or leg_symbols & symbols)
                and (not side or order["side"] == side)):
            chosen.append(order)
    merged = sorted(stock_orders + chosen, key=lambda o: o["submitted_at"], reverse=newest_first)
    return status, merged[:query_int(call, "limit", 50, 500)]


def positions(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/positions``: stock positions, then option positions."""
    book = _book(market)
    with market.lock:
        book.sync()
        status, stock = trading.positions(market, call)
        return status, stock + book.positions_json()


def position(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/positions/{symbol}``."""
    book = _book(market)
    with market.lock:
        book.sync()
        found = book.position_json(call.match.group("symbol"))
    return (200, found) if found is not None else trading.position(market, call)


def account(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/account`` with option positions in equity and options enabled (level 3)."""
    book = _book(market)
    with market.lock:
        book.sync()
        status, body = trading.account(market, call)
        longs, shorts = book.market_value()
    total = longs + shorts
    for key in ("equity", "portfolio_value"):
        body[key] = number(float(body[key]) + total)
    body["long_market_value"] = number(float(body["long_market_value"]) + longs)
    body["short_market_value"] = number(float(body["short_market_value"]) + shorts)
    body["options_approved_level"] = body["options_trading_level"] = 3
    return status, body


def activities(market: Market, call: Call) -> tuple[int, object]:
    """``GET /v2/account/activities[/{type}]``: FILL alone goes to the stock handler unchanged;
    option activities (OPEXP, OPASN, OPEXC, OPTRD) and mixed requests are answered here."""
    kind = call.match.group("kind") if call.match else None
    kinds = {k.upper() for k in ([kind] if kind else query_list(call, "activity_types"))}
    book = _book(market)
    book.sync()
    if kinds == {"FILL"} or (not kinds and not book.activities):
        return trading.activities(market, call)
    after, until = query_time(call, "after"), query_time(call, "until")
    newest_first = query_choice(call, "direction", ("asc", "desc"), "desc") == "desc"
    size = query_int(call, "page_size", 100, 100)
    with market.lock:
        book.sync()
        rows = [a for a in market.activities + book.activities
                if not kinds or a["activity_type"] in kinds]
    rows = [a for a in rows if (after is None or a["_ns"] > after)
            and (until is None or a["_ns"] < until)]
    rows.sort(key=lambda a: a["_ns"])  # stable: same-instant rows keep the order they happened
    if newest_first:
        rows.reverse()
    token = call.query.get("page_token")
    if token:
        ids = [a["id"] for a in rows]
        if token not in ids:
            raise malformed(f"invalid page_token: {token!r} (use the id of the last activity "
                            "of the previous page)")
        rows = rows[ids.index(token) + 1:]
    return 200, [{k: v for k, v in a.items() if k != "_ns"} for a in rows[:size]]


ROUTES: list = [
    (method, re.compile(pattern + r"/?\Z"), handler) for method, pattern, handler in (
        ("GET", r"/v2/options/contracts", list_contracts),
        ("GET", r"/v2/options/contracts/(?P<key>[^/]+)", get_contract),
        ("GET", r"/v1beta1/options/snapshots/(?P<underlying>[^/]+)", snapshots),
        ("GET", r"/v2/stocks/trades/latest", latest_trades),
        ("POST", r"/v2/orders", submit_order),
        ("GET", r"/v2/orders", list_orders),
        ("GET", r"/v2/orders:by_client_order_id", order_by_client_id),
        ("GET", r"/v2/orders/(?P<id>[^/]+)", get_order),
        ("DELETE", r"/v2/orders/(?P<id>[^/]+)", cancel_order),
        ("GET", r"/v2/positions", positions),
        ("GET", r"/v2/positions/(?P<symbol>[^/]+)", position),
        ("GET", r"/v2/account", account),
        ("GET", r"/v2/account/activities(?:/(?P<kind>[A-Za-z_]+))?", activities),
    )]
