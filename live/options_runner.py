"""The credit-spread paper runner: one step per session near the close, on live option quotes.

:class:`OptionsRunner` applies the backtest's rules (:mod:`framework.options.rules`, shared with
:mod:`framework.options.backtest`) to the chain Alpaca quotes now. Each :meth:`OptionsRunner.step`,
in this order:

1. resolve the spread orders still in flight: look each one up by its client id, cancel what a
   previous step left unfilled, adopt partial fills (an opening order filled in part opens that
   many spreads; a closing order filled in part leaves the rest open);
2. settle expiries and assignments from the account's option activities (OPEXP / OPASN /
   OPEXC): a spread whose legs all left closes with reason ``"expiry"`` (``"assignment"`` when a
   short leg was assigned) at the intrinsic value against the expiry close, as the backtest
   settles it; shares delivered by an assignment or exercise are sold / bought back with a
   market order (the backtest closes them at the expiry close; here they go at the next open);
3. reconcile the book with the broker's option positions on the underlying: a spread the broker
   no longer holds is closed (with an event); a leg the book does not explain halts the run
   (:class:`OptionsHalted`: a foreign position, nothing more is traded);
4. exits: each open spread is priced at its executable closing debit (buy shorts at the ask,
   sell longs at the bid) and closed when :func:`~framework.options.rules.exit_reason` says so,
   with the exit rules of the spec it was opened with; a spread expiring today is left to
   expire (the backtest settles it at that close before any exit check);
5. entry: IV rank of ``iv_history`` with today's ATM IV appended, ``max_open`` and
   ``entry_every_days`` (:func:`~framework.options.rules.entry_gate`), then
   :func:`~framework.options.rules.build_entry` and the backtest's sizing on the account equity.

Orders are limit orders at the NATURAL price (credit = short bids - wing asks when opening,
debit = short asks - wing bids when closing). The backtest fills at the natural price (its
close-fill model), so this keeps paper and backtest comparable; a mid-price limit would rest
unfilled on many days (Alpaca's paper fills need a marketable limit) and make the two diverge.
Alpaca may still fill better than the limit.

Crash safety: the book (``store.save_broker_state(run_id, "options_book", ...)``) is written
BEFORE an order is sent; a restarted runner finds the order by its deterministic client id
(:func:`~live.alpaca_options.spread_client_id`): unknown to Alpaca -> sent now (only on the
day it was decided), known -> its status is adopted. Nothing is ever resent blindly.
P&L is ``(credit - debit) x 100 x contracts`` (Alpaca charges no option commission).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from framework.errors import BrokerError, ConfigError, DataError
from framework.options.backtest import CreditSpreadSpec
from framework.options.chains import NEW_YORK, OptionChain
from framework.options.legs import Leg, OptionPosition
from framework.options.occ import occ_symbol
from framework.options.rules import (
    IV_TENOR_DAYS,
    atm_iv_30,
    build_entry,
    closing_debit,
    entry_credit,
    entry_gate,
    exit_reason,
    iv_rank_today,
    max_loss_per_contract,
    sessions_since,
    size_contracts,
)
from live.alpaca_options import AlpacaOptions, OptionOrderRecord, spread_client_id
from live.broker import DuplicateOrderError, OrderRequest, UnknownOutcomeError
from live.state import Store

BOOK_KEY = "options_book"
BOOK_VERSION = 1
MULTIPLIER = 100
ACTIVE = ("opening", "open", "closing")  # statuses of spreads that hold (or may hold) contracts


class OptionsHalted(BrokerError):
    """The run is halted (foreign position, failed reconciliation); nothing more is traded."""


def new_book(underlying: str, started: pd.Timestamp | None = None) -> dict[str, Any]:
    """An empty book: no spreads, no entry yet; account activities are counted from
    ``started`` (default: the market time of the first step)."""
    return {"version": BOOK_VERSION, "underlying": underlying.upper(), "next_id": 1,
            "spreads": [], "last_entry": None, "iv_seen": {}, "seen_activities": [],
            "activities_since": None if started is None else pd.Timestamp(started).isoformat(),
            "flatten": [],
            "halted": None}


class OptionsRunner:
    """Manages credit spreads on an Alpaca paper account, one :meth:`step` per session.

    Parameters
    ----------
    spec : CreditSpreadSpec
        Rules for new entries (open spreads keep the spec they were opened with).
    options : AlpacaOptions
    store : Store
        Holds the book (``broker_state`` blob ``"options_book"``) and the events.
    run_id : str
        Prefix of every client order id.
    underlying : str
    iv_history : Series
        Daily ATM IV (decimals) before the run, dated; each step appends today's ATM IV of the
        chain (kept in the book) and ranks over ``spec.iv_rank_window`` sessions.
    alerter : Alerter, optional
        Receives ``trade``, ``halt`` and ``error`` alerts.
    dry_run : bool
        Decide and record events, but send nothing and change no spread.
    rate, div : float
        Continuous rate and dividend yield for the deltas and the forward (as in
        :func:`~framework.options.backtest.backtest_options`, default 0).
    sessions : DatetimeIndex, optional
        Exchange session dates (naive) for ``entry_every_days``; default XNYS.
    """

    def __init__(self, spec: CreditSpreadSpec, options: AlpacaOptions, store: Store, run_id: str,
                 underlying: str, iv_history: pd.Series, alerter=None, dry_run: bool = False,
                 rate: float = 0.0, div: float = 0.0,
                 sessions: pd.DatetimeIndex | None = None) -> None:
        if not isinstance(spec, CreditSpreadSpec):
            raise ConfigError(f"spec is a {type(spec).__name__}; expected a CreditSpreadSpec "
                              "(framework.options.backtest).")
        self.spec, self.options, self.store, self.run_id = spec, options, store, run_id
        self.underlying = underlying.upper()
        self.iv_history = pd.Series(iv_history, dtype=np.float64)
        self.alerter, self.dry_run, self.rate, self.div = alerter, dry_run, rate, div
        if sessions is None:
            from framework.data.calendars import xnys_sessions

            sessions = xnys_sessions()[0]
        self.sessions = sessions
        self.book = self._load_book()
        self._stock = None

    # -- the book -----------------------------------------------------------------------------
    def _load_book(self) -> dict[str, Any]:
        stored = self.store.broker_state(self.run_id)
        if stored is None:
            return new_book(self.underlying)
        if stored.get("version") != BOOK_VERSION or stored.get("underlying") != self.underlying:
            raise ConfigError(
                f"run {self.run_id!r} holds a broker state that is not an options book for "
                f"{self.underlying} (version {stored.get('version')!r}, underlying "
                f"{stored.get('underlying')!r}); use another run id.")
        return stored

    def _save(self) -> None:
        self.store.save_broker_state(self.run_id, BOOK_KEY, self.book)

    def spreads(self, *statuses: str) -> list[dict[str, Any]]:
        """Spreads of the book (all, or those with one of ``statuses``)."""
        return [s for s in self.book["spreads"] if not statuses or s["status"] in statuses]

    # -- the step -------------------------------------------------------------------------------
    def step(self, now: pd.Timestamp) -> dict[str, Any]:
        """One session's management at market time ``now`` (near the close).

        Returns
        -------
        dict
            ``{"day", "entered", "exited", "settled", "open"}`` for the session.

        Raises
        ------
        OptionsHalted
            The book and the broker disagree (a foreign position) or the run was halted before.
        """
        now = pd.Timestamp(now)
        today = now.tz_convert(NEW_YORK).date()
        if self.book["halted"]:
            raise OptionsHalted(f"run {self.run_id} is halted: {self.book['halted']}")
        report: dict[str, Any] = {"day": today.isoformat(), "entered": [], "exited": [],
                                  "settled": []}
        if self.book["activities_since"] is None:  # a new run: older activities are not its own
            self.book["activities_since"] = now.isoformat()
        self._resolve_orders(today, report)
        self._settle(today, report)
        self._resolve_flatten(today)
        self._reconcile(today, report)
        chain = self._chain(today)
        if chain is not None:
            self._exits(today, chain, report)
            self._entry(today, chain, report)
        self._save()
        report["open"] = len(self.spreads(*ACTIVE))
        return report

    # -- 1. orders in flight ------------------------------------------------------------------
    def _resolve_orders(self, today: date, report: dict) -> None:
        for spread in self.spreads("opening", "closing"):
            which = "open" if spread["status"] == "opening" else "close"
            order = spread[which]
            if order["state"] == "done":
                continue
            record = self.options.order(order["cid"])
            if record is None:
                if order["date"] == today.isoformat() and not self.dry_run:
                    self._send(spread, which, report)  # stored, never sent (a crash): send now
                else:
                    self._void(spread, which, f"order {order['cid']} never reached Alpaca and "
                                              f"its day {order['date']} is over; not sent")
                continue
            if record.is_open and order["date"] < today.isoformat() and not self.dry_run:
                record = self.options.cancel(order["cid"]) or record  # unfilled by the next step
            self._adopt(spread, which, record, today, report)

    def _send(self, spread: dict, which: str, report: dict) -> None:
        """Submit the stored order of ``spread`` (the book was saved before this call)."""
        order = spread[which]
        sign = 1 if which == "open" else -1  # a closing order trades every leg the other way
        position = self._position(spread, sign * order["quantity"])
        try:
            record = self.options.submit_spread(position, order["cid"],
                                                 limit_price=order["limit"], intent=which)
        except DuplicateOrderError:
            record = self.options.order(order["cid"])
        except UnknownOutcomeError as exc:
            # left as it is: the next step looks the client id up before anything is resent
            self._event("options_order", f"spread {spread['id']}: {which} order {order['cid']} "
                                         f"outcome unknown ({exc}); resolved at the next step")
            return
        except BrokerError as exc:
            self._void(spread, which, f"Alpaca rejected {order['cid']}: {exc}")
            self._alert("error", f"{self.run_id}: option order rejected", str(exc), "warning")
            return
        if record is not None and record.is_open:
            record = self.options.order(order["cid"]) or record  # filled since it was accepted?
        if record is not None:
            self._adopt(spread, which, record, pd.Timestamp(order["date"]).date(), report)

    def _adopt(self, spread: dict, which: str, record: OptionOrderRecord, today: date,
               report: dict) -> None:
        """Take the broker's view of an order; a final one settles the spread's status."""
        order = spread[which]
        order["filled"] = float(record.filled_quantity)
        order["broker_status"] = record.broker_status
        if record.is_open:
            order["state"] = "sent"
            return
        order["state"] = "done"
        filled = int(round(record.filled_quantity))
        price = record.net_price  # per share of one spread, debit positive
        if which == "open":
            if filled == 0:
                self._void(spread, which, f"opening order {order['cid']} ended "
                                          f"{record.broker_status} unfilled")
                return
            spread.update(status="open", contracts=filled, entry_credit=round(-float(price), 6))
            spread["max_loss"] = max_loss_per_contract(self._position(spread, 1),
                                                       spread["entry_credit"]) * filled
            report["entered"].append(spread["id"])
            self._event("options_entry", f"spread {spread['id']} opened: {self._describe(spread)} "
                                         f"x{filled} for a credit of {-price:.2f} "
                                         f"(order {order['cid']}, {record.broker_status})")
            self._alert("trade", f"{self.run_id}: opened {self.book['underlying']} spread",
                        self._describe(spread))
            return
        if filled:
            spread["closed_contracts"] += filled
            spread["exit_value"] += filled * round(float(price), 6)
            spread["contracts"] -= filled
        if spread["contracts"] <= 0:
            self._close(spread, order["reason"], spread["exit_value"] / spread["closed_contracts"],
                        order["date"], report)
        else:  # some or none filled: the rest stays open, exits are checked again
            spread["status"] = "open"
            self._event("options_exit", f"spread {spread['id']}: closing order {order['cid']} "
                                        f"ended {record.broker_status} with {filled} filled; "
                                        f"{spread['contracts']} still open")

    def _void(self, spread: dict, which: str, why: str) -> None:
        spread[which]["state"] = "done"
        if which == "open" and not spread[which].get("filled"):
            spread["status"] = "void"
        else:
            spread["status"] = "open"
        self._event("options_order", f"spread {spread['id']}: {why}")

    # -- 2. expiries and assignments ---------------------------------------------------------
    def _settle(self, today: date, report: dict) -> None:
        events = self.options.expiry_events(since=self.book["activities_since"])
        seen = set(self.book["seen_activities"])
        fresh = [e for e in events if e.activity_id not in seen]
        deliveries = [e for e in fresh if e.kind == "delivery" and e.symbol == self.underlying]
        if deliveries:
            self._queue_flatten(deliveries, today)
        for event in fresh:
            self.book["seen_activities"].append(event.activity_id)
            if event.kind == "delivery":
                continue
            if event.contract is None or event.contract.underlying != self.underlying:
                continue
            for spread in self.spreads(*ACTIVE):
                symbols = {self._symbol(leg): leg for leg in spread["legs"]}
                if event.symbol in symbols:
                    spread.setdefault("settled", {})[event.symbol] = event.kind
                    if set(spread["settled"]) == set(symbols):
                        self._settle_spread(spread, event.day, report)
                    break

    def _settle_spread(self, spread: dict, day: date, report: dict) -> None:
        """All legs left at expiry: close at the intrinsic value against the expiry close."""
        kinds = spread["settled"]
        assigned = any(kinds.get(self._symbol(leg)) == "assigned" for leg in spread["legs"]
                       if leg["ratio"] < 0)
        itm = any(k in ("assigned", "exercised") for k in kinds.values())
        debit = 0.0
        if itm:
            try:
                settle = self._expiry_close(day)
                debit = sum(-leg["ratio"] * _intrinsic(leg, settle) for leg in spread["legs"])
            except DataError as exc:
                debit = math.nan  # the spread is gone either way; its P&L stays unknown
                self._event("options_settle", f"spread {spread['id']}: {exc}")
        held = spread["contracts"] if spread["status"] != "opening" else int(spread["open"]["filled"])
        spread["closed_contracts"] += held
        spread["exit_value"] += held * debit
        spread["contracts"] = 0
        reason = "assignment" if assigned else "expiry"
        self._close(spread, reason, spread["exit_value"] / max(spread["closed_contracts"], 1),
                    day.isoformat(), report)

    def _expiry_close(self, day: date) -> float:
        """The underlying's close on ``day`` (daily bar), for the intrinsic value."""
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        conn = self.options.conn
        start = pd.Timestamp(day).tz_localize(NEW_YORK).tz_convert("UTC")
        request = StockBarsRequest(symbol_or_symbols=[self.underlying], timeframe=TimeFrame.Day,
                                   start=start.to_pydatetime(), end=start.to_pydatetime(),
                                   feed=conn.spec.feed)
        raw = conn.read("GET /v2/stocks/bars", lambda: conn.data.get_stock_bars(request))
        rows = raw.get(self.underlying, []) if isinstance(raw, dict) else []
        if not rows:
            raise DataError(f"alpaca has no daily bar of {self.underlying} on {day}; the "
                            "settlement price of the assigned spread is unknown.")
        return float(rows[-1]["c"])

    def _queue_flatten(self, deliveries: list, today: date) -> None:
        """Shares delivered by assignments/exercises: queue one order closing their net.

        A spread assigned on its short leg and exercised on its wing delivers and takes shares
        at the two strikes; only what is left over is traded."""
        shares = sum(float(e.quantity) for e in deliveries)
        text = ", ".join(f"{e.quantity:+g} at {e.price:g} ({e.activity_type})" for e in deliveries)
        if abs(shares) < 1e-9:
            self._event("options_settle", f"{self.underlying} shares delivered and taken net to "
                                          f"zero ({text}); nothing to close")
            return
        digest = hashlib.sha256("|".join(e.activity_id for e in deliveries).encode()).hexdigest()
        cid = f"{self.run_id}:flat:{digest[:20]}"
        self.book["flatten"].append({"cid": cid, "qty": -shares, "date": today.isoformat(),
                                     "state": "pending"})
        self._event("options_settle", f"{self.underlying} shares delivered: {text}; closing "
                                      f"{shares:+g} with market order {cid}")

    def _resolve_flatten(self, today: date) -> None:
        pending = [f for f in self.book["flatten"] if f["state"] == "pending"]
        if not pending or self.dry_run:
            return
        self._save()  # the intent is stored before anything is sent
        broker = self._stock_broker()
        for item in pending:
            found = broker.order(item["cid"])
            if found is None:
                try:
                    found = broker.submit(OrderRequest(item["cid"], self.underlying, item["qty"]))
                except DuplicateOrderError:
                    found = broker.order(item["cid"])
                except UnknownOutcomeError as exc:
                    self._event("options_order", f"share order {item['cid']}: {exc}")
                    continue
                except BrokerError as exc:
                    item["state"] = "failed"
                    self._event("options_order", f"share order {item['cid']} rejected: {exc}")
                    self._alert("error", f"{self.run_id}: delivered shares not closed",
                                f"{exc}; close {item['qty']:+g} {self.underlying} by hand",
                                "warning")
                    continue
            item["state"] = "sent" if found is not None else "pending"

    def _stock_broker(self):
        if self._stock is None:
            from live.alpaca import AlpacaBroker

            self._stock = AlpacaBroker((self.underlying,), self.options.conn)
        return self._stock

    # -- 3. reconciliation --------------------------------------------------------------------
    def _held(self, spread: dict) -> int:
        if spread["status"] == "opening":
            return int(round(spread["open"].get("filled", 0.0)))
        if spread["status"] == "closing":
            return spread["contracts"] - int(round(spread["close"].get("filled", 0.0)))
        return spread["contracts"]

    def _expected(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for spread in self.spreads(*ACTIVE):
            held = self._held(spread)
            for leg in spread["legs"]:
                symbol = self._symbol(leg)
                out[symbol] = out.get(symbol, 0) + leg["ratio"] * held
        return {k: v for k, v in out.items() if v}

    def _broker_legs(self) -> dict[str, int]:
        return {h.symbol: h.quantity for group in self.options.positions()
                if group.underlying == self.underlying for h in group.legs}

    def _mismatches(self, broker: Mapping[str, int]) -> list[str]:
        expected = self._expected()
        return sorted(f"{s}: Alpaca {broker.get(s, 0):+d}, book {expected.get(s, 0):+d}"
                      for s in set(broker) | set(expected)
                      if broker.get(s, 0) != expected.get(s, 0))

    def _reconcile(self, today: date, report: dict) -> None:
        broker = self._broker_legs()
        for spread in self.spreads("open", "closing"):
            held = self._held(spread)
            if held and not any(self._symbol(leg) in broker for leg in spread["legs"]):
                expired = pd.Timestamp(spread["expiry"]).date() <= today
                reason = "expiry" if expired else "external"
                self._event("options_reconcile",
                            f"spread {spread['id']} ({self._describe(spread)}) is no longer held "
                            f"at Alpaca; closed as {reason!r}")
                if not expired:
                    self._alert("error", f"{self.run_id}: spread closed outside the runner",
                                self._describe(spread), "warning")
                spread["closed_contracts"] += held
                spread["contracts"] = 0
                self._close(spread, reason, math.nan, today.isoformat(), report)
        wrong = self._mismatches(broker)
        if wrong and self.spreads("opening", "closing"):
            # an order in flight may have filled between its lookup and the positions: look
            # again before calling anything foreign
            self._resolve_orders(today, report)
            wrong = self._mismatches(self._broker_legs())
        if wrong:
            self._halt(f"option positions on {self.underlying} the book does not explain "
                       f"(foreign or changed outside the runner): {'; '.join(wrong)}. Close them "
                       "or restore the book, then clear the halt.")

    def _halt(self, why: str) -> None:
        self.book["halted"] = why
        self._save()
        self._event("halt", why)
        self._alert("halt", f"{self.run_id}: options runner halted", why, "failure")
        raise OptionsHalted(why)

    # -- 4. exits -------------------------------------------------------------------------------
    def _chain(self, today: date) -> OptionChain | None:
        horizon = max([self.spec.dte_max, IV_TENOR_DAYS + 7]
                      + [(pd.Timestamp(s["expiry"]).date() - today).days
                         for s in self.spreads(*ACTIVE)])
        try:
            return self.options.chain(self.underlying,
                                      expiry_to=today + timedelta(days=int(horizon)))
        except DataError as exc:
            self._event("options_quote", f"no chain for {self.underlying} on {today}: {exc}; "
                                         "no exit or entry this session")
            self._alert("error", f"{self.run_id}: no option chain", str(exc), "warning")
            return None

    def _exits(self, today: date, chain: OptionChain, report: dict) -> None:
        for spread in self.spreads("open"):
            expiry = pd.Timestamp(spread["expiry"]).date()
            if expiry <= today or spread["contracts"] <= 0:
                continue  # expiring today: settled at this close, as in the backtest
            try:
                debit = closing_debit(self._position(spread, 1), chain)
            except DataError as exc:
                self._event("options_quote", f"spread {spread['id']}: {exc}")
                continue
            spec = CreditSpreadSpec(**spread["spec"])
            reason = exit_reason(spread["entry_credit"], debit, (expiry - today).days, spec)
            if reason is None:
                continue
            message = (f"spread {spread['id']} exit ({reason}): closing debit {debit:.2f} vs "
                       f"credit {spread['entry_credit']:.2f}, {(expiry - today).days} DTE")
            if self.dry_run:
                self._event("options_exit", f"dry run, not sent: {message}")
                continue
            spread["close_seq"] += 1
            quantity = spread["contracts"]
            cid = spread_client_id(self.run_id, self._position(spread, -quantity),
                                   tag=f"close:{spread['id']}:{today}:{spread['close_seq']}")
            spread["status"] = "closing"
            spread["close"] = {"cid": cid, "date": today.isoformat(), "limit": round(debit, 2),
                               "quantity": quantity, "reason": reason, "state": "pending",
                               "filled": 0.0}
            self._event("options_exit", f"{message}; order {cid}")
            self._save()  # stored before it is sent
            self._send(spread, "close", report)

    def _close(self, spread: dict, reason: str, debit: float, day: str, report: dict) -> None:
        spread.update(status="closed", exit_reason=reason, exit_date=day,
                      exit_debit=None if math.isnan(debit) else float(debit))
        contracts = spread["closed_contracts"]
        pnl = (spread["entry_credit"] - debit) * MULTIPLIER * contracts
        spread["pnl"] = None if math.isnan(pnl) else round(float(pnl), 6)
        report["exited" if reason not in ("expiry", "assignment") else "settled"].append(
            spread["id"])
        shown = "unknown" if spread["pnl"] is None else f"{spread['pnl']:+.2f}"
        self._event("options_exit", f"spread {spread['id']} closed ({reason}) on {day}: "
                                    f"{self._describe(spread)} x{contracts}, P&L {shown}")
        self._alert("trade", f"{self.run_id}: spread {spread['id']} closed ({reason})",
                    f"P&L {shown}")

    # -- 5. entry -------------------------------------------------------------------------------
    def _entry(self, today: date, chain: OptionChain, report: dict) -> None:
        spec = self.spec
        try:
            iv = atm_iv_30(chain, today, self.rate, self.div)
        except DataError as exc:
            iv = math.nan
            self._event("options_quote", f"no ATM IV on {today}: {exc}")
        if math.isfinite(iv):
            self.book["iv_seen"][today.isoformat()] = iv
        rank = iv_rank_today(self._iv_history(), today, iv, spec.iv_rank_window)
        since = sessions_since(self.book["last_entry"], today, self.sessions)
        ok, why = entry_gate(rank, len(self.spreads(*ACTIVE)), since, spec)
        if not ok:
            self._event("options_skip", f"{today}: no entry, {why}")
            return
        position = build_entry(chain, today, spec, self.rate, self.div)
        if position is None:
            self._event("options_skip", f"{today}: no entry, the chain offers no {spec.kind} "
                                        f"with {spec.dte_min}-{spec.dte_max} DTE and a credit")
            return
        credit = entry_credit(position)
        per_contract = max_loss_per_contract(position)
        equity = self._equity()
        at_risk = sum(s.get("max_loss", 0.0) for s in self.spreads(*ACTIVE))
        contracts = size_contracts(spec, equity, per_contract, at_risk)
        legs = "; ".join(leg.describe() for leg in position.legs)
        if contracts == 0:
            self._event("options_skip", f"{today}: no entry, max loss {per_contract:.0f} per "
                                        f"contract does not fit equity {equity:.0f} ({legs})")
            return
        if self.dry_run:
            self._event("options_entry", f"dry run, not sent: {spec.kind} x{contracts} {legs} "
                                         f"credit {credit:.2f} (iv rank {rank:.3f})")
            return
        spread = self._new_spread(position, contracts, credit, per_contract, today)
        self._event("options_entry", f"{today}: entering spread {spread['id']} {spec.kind} "
                                     f"x{contracts} {legs}, natural credit {credit:.2f}, iv rank "
                                     f"{rank:.3f}; order {spread['open']['cid']}")
        self._save()  # stored before it is sent: a crash from here is resolved by client id
        self._send(spread, "open", report)

    def _new_spread(self, position: OptionPosition, contracts: int, credit: float,
                    per_contract: float, today: date) -> dict[str, Any]:
        ident = self.book["next_id"]
        self.book["next_id"] += 1
        legs = [{"right": leg.right, "strike": leg.strike, "expiry": leg.expiry.isoformat(),
                 "ratio": int(np.sign(leg.quantity))} for leg in position.legs]
        spread = {"id": ident, "status": "opening", "kind": self.spec.kind, "legs": legs,
                  "expiry": position.front_expiry.isoformat(), "entry_date": today.isoformat(),
                  "contracts": contracts, "entry_credit": round(credit, 6),
                  "max_loss": per_contract * contracts, "spec": asdict(self.spec),
                  "close_seq": 0, "closed_contracts": 0, "exit_value": 0.0, "close": None,
                  "exit_reason": None, "exit_date": None, "exit_debit": None, "pnl": None}
        cid = spread_client_id(self.run_id, self._position(spread, contracts),
                               tag=f"open:{ident}:{today}")
        spread["open"] = {"cid": cid, "date": today.isoformat(), "limit": -round(credit, 2),
                          "quantity": contracts, "state": "pending", "filled": 0.0}
        self.book["spreads"].append(spread)
        self.book["last_entry"] = today.isoformat()
        return spread

    def _iv_history(self) -> pd.Series:
        seen = pd.Series(self.book["iv_seen"], dtype=np.float64)
        seen.index = pd.DatetimeIndex(seen.index)
        past = self.iv_history.copy()
        past.index = pd.DatetimeIndex(past.index)
        if past.index.tz is not None:
            past.index = past.index.tz_convert(NEW_YORK).tz_localize(None)
        past = past[~past.index.normalize().isin(seen.index)]
        return pd.concat([past, seen]).sort_index()

    def _equity(self) -> float:
        conn = self.options.conn
        account = conn.read("GET /v2/account", conn.trading.get_account)
        return float(account.equity)

    # -- helpers --------------------------------------------------------------------------------
    def _symbol(self, leg: Mapping[str, Any]) -> str:
        return occ_symbol(self.underlying, leg["expiry"], leg["right"], leg["strike"])

    def _position(self, spread: Mapping[str, Any], contracts: int) -> OptionPosition:
        return OptionPosition(self.underlying, tuple(
            Leg(leg["right"], leg["strike"], leg["expiry"], leg["ratio"] * int(contracts), 0.0)
            for leg in spread["legs"]))

    def _describe(self, spread: Mapping[str, Any]) -> str:
        return " / ".join(f"{'+' if leg['ratio'] > 0 else '-'}{leg['right']} {leg['strike']:g}"
                          for leg in spread["legs"]) + f" {spread['expiry']}"

    def _event(self, kind: str, message: str) -> None:
        self.store.event(self.run_id, kind, message)

    def _alert(self, kind: str, title: str, body: str, level: str = "info") -> None:
        if self.alerter is not None:
            self.alerter.send(kind, title, body, level)


def _intrinsic(leg: Mapping[str, Any], settle: float) -> float:
    if leg["right"] == "C":
        return max(settle - float(leg["strike"]), 0.0)
    return max(float(leg["strike"]) - settle, 0.0)
