"""Alerts from the live runner through apprise: Discord, Telegram, Slack, email, webhooks.

The runner calls :meth:`Alerter.send` for trades, breaker trips and halts, regime changes,
rebalances, errors, daily summaries and heartbeats. ``send`` only enqueues: a background thread
delivers, so a slow or dead notification service never stalls trading. A delivery that fails is
reported to ``on_failure(title, reason)`` (the runner stores it as an error event), never raised
into the runner and never dropped without a trace.

Destinations are apprise URLs from the secret ``FW_APPRISE_URLS`` (several separated by
whitespace or commas). URLs carry tokens, so they are never shown unmasked, and the values of the
known secrets (broker API keys...) are scrubbed from every title, body and failure reason.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from framework.errors import ConfigError, unknown_name_message
from framework.secrets import KNOWN_SECRETS, Secrets, load_secrets, mask_secret

ALL_KINDS: frozenset[str] = frozenset(
    {"trade", "breaker", "halt", "regime", "rebalance", "error", "summary", "heartbeat"}
)
LEVELS: tuple[str, ...] = ("info", "warning", "failure")
HISTORY = 1000  # delivered alerts kept in ``Alerter.sent``
# Secret values shorter than this are not scrubbed: replacing a 2-letter value everywhere
# would mangle ordinary words, and real keys and tokens are far longer.
MIN_SCRUB_LENGTH = 6
_URL_PART = re.compile(r"[/:@?&=#]+")
# a comma followed by a scheme starts a new URL; other commas (e.g. ?to=a@x,b@x) belong to a URL
_URL_SEPARATORS = re.compile(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_STOP = object()
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertSpec:
    """Where alerts go and which are sent.

    Parameters
    ----------
    urls : tuple of str
        Apprise URLs; empty turns alerts off. Not shown by ``repr`` (URLs carry tokens).
    kinds : frozenset of str
        Kinds to send, a subset of :data:`ALL_KINDS`; others are ignored.
    min_interval : float
        Seconds; alerts of the same ``(kind, title)`` within this window of the first one are
        coalesced: counted, and reported once when the window ends (0 sends every alert).
    timeout : float
        Network connect and read timeout of one notification, in seconds.
    """

    urls: tuple[str, ...] = field(default=(), repr=False)
    kinds: frozenset[str] = ALL_KINDS
    min_interval: float = 0.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if isinstance(self.urls, str) or not all(isinstance(u, str) for u in self.urls):
            raise ConfigError(
                "AlertSpec.urls must be a tuple of apprise URL strings; got a "
                f"{type(self.urls).__name__}. Split several URLs with AlertSpec.from_environment "
                "or pass a tuple."
            )
        object.__setattr__(self, "urls", tuple(self.urls))
        object.__setattr__(self, "kinds", frozenset(self.kinds))
        for kind in self.kinds:
            if kind not in ALL_KINDS:
                raise ConfigError(unknown_name_message("alert kind", kind, ALL_KINDS))
        if not (math.isfinite(self.min_interval) and self.min_interval >= 0.0):
            raise ConfigError(
                f"AlertSpec.min_interval = {self.min_interval!r}; expected a finite number of "
                "seconds >= 0 (0 turns coalescing off)."
            )
        if not (math.isfinite(self.timeout) and self.timeout > 0.0):
            raise ConfigError(
                f"AlertSpec.timeout = {self.timeout!r}; expected a finite number of seconds > 0."
            )

    def __repr__(self) -> str:
        return (f"AlertSpec(urls=<{len(self.urls)} masked>, kinds={sorted(self.kinds)}, "
                f"min_interval={self.min_interval!r}, timeout={self.timeout!r})")

    @property
    def enabled(self) -> bool:
        """True when there is at least one destination."""
        return bool(self.urls)

    @classmethod
    def from_environment(cls, secrets: Secrets | None = None,
                         kinds: Iterable[str] | None = None) -> AlertSpec:
        """The spec for the URLs in the secret ``FW_APPRISE_URLS`` (unset: alerts off).

        Parameters
        ----------
        secrets : Secrets, optional
            Default :func:`framework.secrets.load_secrets` (environment, then ``.env`` files).
        kinds : iterable of str, optional
            Kinds to send (default all).

        Raises
        ------
        ConfigError
            A URL apprise does not understand (named masked, with its position) or an unknown kind.
        """
        secrets = load_secrets() if secrets is None else secrets
        urls = split_urls(secrets.get("FW_APPRISE_URLS") or "")
        for position, url in enumerate(urls, 1):
            _plugin(url, position, len(urls))
        return cls(urls=urls, kinds=ALL_KINDS if kinds is None else frozenset(kinds))


def split_urls(raw: str) -> tuple[str, ...]:
    """Split a ``FW_APPRISE_URLS`` value into URLs (separated by whitespace or commas)."""
    parts = (p.strip().strip(",") for p in _URL_SEPARATORS.split(raw.strip()))
    return tuple(p for p in parts if p)


def mask_url(url: str) -> str:
    """A URL fit for messages: its scheme and at most two more characters."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return mask_secret(url)
    return f"{scheme}://{mask_secret(rest)}"


def _plugin(url: str, position: int, count: int, timeout: float | None = None):
    """The apprise plugin for ``url`` with ``timeout``; ConfigError naming the URL masked."""
    import apprise  # only when alerts are on: apprise loads every plugin at import

    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        raise ConfigError(
            f"FW_APPRISE_URLS entry {position} of {count} ({mask_url(url)}) is not a URL apprise "
            "can send to; expected e.g. discord://ID/TOKEN, tgram://BOT_TOKEN/CHAT_ID, "
            "mailtos://user:password@host, json://host/path. Fix it in the environment or .env "
            "(see https://github.com/caronc/apprise/wiki)."
        )
    if timeout is not None:
        # the per-instance values win over the class defaults apprise reads in request_timeout
        plugin.socket_connect_timeout = timeout
        plugin.socket_read_timeout = timeout
    return plugin


class _Scrubber:
    """Replaces secret values by their masked form in any text."""

    def __init__(self, secrets: Secrets, urls: Iterable[str]) -> None:
        values = {secrets.values.get(name) for name in KNOWN_SECRETS}
        values.discard(None)
        for url in urls:
            values.add(url)
            split = urlsplit(url)
            # every part of an apprise URL but its scheme may be a token (discord://ID/TOKEN)
            # (those that look like one: with a digit, or long), not words like "webhooks"
            values.update(p for p in _URL_PART.split(url.partition("://")[2])
                          if any(c.isdigit() for c in p) or len(p) >= 20)
            values.update(v for v in (split.username, split.password) if v)
        self.values = sorted((v for v in values if v and len(v) >= MIN_SCRUB_LENGTH),
                             key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, mask_secret(value))
        return text


class _Reasons(logging.Handler):
    """Collects apprise's warnings during one delivery: they say why it failed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class _Window:
    """Coalescing state of one ``(kind, title)``."""

    start: float
    count: int = 0
    last_body: str = ""
    level: str = "info"


class Alerter:
    """Send alerts in the background through apprise.

    Parameters
    ----------
    spec : AlertSpec
    on_failure : callable, optional
        ``on_failure(title, reason)`` for each failed delivery (per URL), called on the worker
        thread; default: log a warning. Its own exceptions are logged, never propagated.
    clock : callable
        Seconds, monotonic; drives the coalescing window (tests pass a fake clock).
    secrets : Secrets, optional
        Values to scrub (default :func:`framework.secrets.load_secrets`).
    """

    def __init__(self, spec: AlertSpec, on_failure: Callable[[str, str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, secrets: Secrets | None = None) -> None:
        self.spec, self._clock = spec, clock
        self._on_failure = on_failure
        self._scrub = _Scrubber(load_secrets() if secrets is None else secrets, spec.urls)
        self._targets = self._build_targets(spec)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._cond = threading.Condition()
        self._pending = 0
        self._closed = False
        self._windows: dict[tuple[str, str], _Window] = {}
        self._sent: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self._worker: threading.Thread | None = None
        if self._targets:
            self._worker = threading.Thread(target=self._work, name="fw-alerts", daemon=True)
            self._worker.start()

    @staticmethod
    def _build_targets(spec: AlertSpec) -> list[tuple[str, Any]]:
        """One apprise object per URL, so a failure names its destination (masked)."""
        if not spec.urls:
            return []
        import apprise

        targets = []
        for position, url in enumerate(spec.urls, 1):
            bundle = apprise.Apprise()
            bundle.add(_plugin(url, position, len(spec.urls), spec.timeout))
            targets.append((mask_url(url), bundle))
        return targets

    @property
    def sent(self) -> list[dict[str, Any]]:
        """Delivered alerts, oldest first (the last :data:`HISTORY`): kind, title, body, level, ok."""
        with self._cond:
            return list(self._sent)

    # -- the caller's side ------------------------------------------------------------------
    def send(self, kind: str, title: str, body: str, level: str = "info") -> None:
        """Queue an alert; returns at once. Kinds not in ``spec.kinds`` are ignored.

        Raises
        ------
        ConfigError
            (a ValueError) for an unknown ``kind`` or ``level``: a bug in the caller.
        """
        _check(kind, level)
        if kind not in self.spec.kinds or not self._targets:
            return
        # apprise refuses an empty body; the title then says it all
        title, body = self._scrub(str(title)), self._scrub(str(body) or str(title))
        with self._cond:
            if self._coalesced(kind, title, body, level):
                return
            item = self._open_window(kind, title, body, level)
        self._enqueue(item)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every queued alert is delivered (or failed); False on timeout.

        Coalesced alerts whose window has ended are reported first.
        """
        self._sweep(force=False)
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Report every coalesced count, deliver the queue, stop the worker. Idempotent."""
        if self._closed:
            return
        self._sweep(force=True)
        if not self.flush(timeout):
            _log.warning("alerts: %d alert(s) still undelivered after %.3g s at close",
                         self._pending, timeout)
        with self._cond:
            self._closed = True
        if self._worker is not None:
            self._queue.put(_STOP)
            self._worker.join(timeout)

    def __enter__(self) -> Alerter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- coalescing -------------------------------------------------------------------------
    def _coalesced(self, kind: str, title: str, body: str, level: str) -> bool:
        """Count the alert in its open window; True when it must not be sent now."""
        window = self._windows.get((kind, title))
        if window is None or self._clock() - window.start >= self.spec.min_interval:
            return False
        window.count += 1
        window.last_body = body
        window.level = max(window.level, level, key=LEVELS.index)
        return True

    def _open_window(self, kind: str, title: str, body: str, level: str) -> dict[str, Any]:
        """Start a window for this alert; mention what an ended window counted."""
        old = self._windows.pop((kind, title), None)
        if old is not None and old.count:
            body += (f"\n\n({old.count} similar alert(s) coalesced in the previous "
                     f"{self.spec.min_interval:g} s)")
        if self.spec.min_interval > 0.0:
            self._windows[(kind, title)] = _Window(self._clock())
        return {"kind": kind, "title": title, "body": body, "level": level}

    def _sweep(self, force: bool) -> None:
        """Close ended windows (all with ``force``); queue one report per window that counted."""
        reports = []
        with self._cond:
            now = self._clock()
            for key, window in list(self._windows.items()):
                if force or now - window.start >= self.spec.min_interval:
                    del self._windows[key]
                    if window.count:
                        reports.append(_coalesced_report(key, window, self.spec.min_interval))
        for item in reports:
            self._enqueue(item)

    # -- delivery -----------------------------------------------------------------------------
    def _enqueue(self, item: dict[str, Any]) -> None:
        with self._cond:
            closed = self._closed
            if not closed:
                self._pending += 1
                self._queue.put(item)
        if closed:
            self._failed(item["title"], "the alerter was closed; alert not sent")

    def _work(self) -> None:
        # with coalescing on, wake up now and then to report windows that ended quietly
        tick = min(max(self.spec.min_interval / 4.0, 0.05), 1.0) if self.spec.min_interval else None
        while True:
            try:
                item = self._queue.get(timeout=tick)
            except queue.Empty:
                self._sweep(force=False)
                continue
            if item is _STOP:
                return
            try:
                self._deliver(item)
            except Exception:  # keep the worker alive whatever happens; say what happened
                _log.exception("alerts: unexpected error delivering %r", item["title"])
            finally:
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    def _deliver(self, item: dict[str, Any]) -> None:
        failures = []
        for label, bundle in self._targets:
            reason = self._notify(bundle, item)
            if reason is not None:
                failures.append(f"{label}: {reason}")
        with self._cond:
            self._sent.append({**item, "ok": not failures})
        for reason in failures:
            self._failed(item["title"], reason)

    def _notify(self, bundle: Any, item: dict[str, Any]) -> str | None:
        """Send to one destination; None on success, else why it failed (scrubbed)."""
        from apprise import NotifyType

        reasons = _Reasons()
        apprise_log = logging.getLogger("apprise")
        apprise_log.addHandler(reasons)
        try:
            ok = bundle.notify(body=item["body"], title=item["title"],
                               notify_type=NotifyType(item["level"]))
        except Exception as exc:  # a plugin bug must not kill the worker: report it
            return self._scrub(f"{type(exc).__name__}: {exc}")
        finally:
            apprise_log.removeHandler(reasons)
        if ok:
            return None
        said = "; ".join(m.strip() for m in reasons.messages if m.strip())
        return self._scrub(said or "apprise reported the notification as not delivered")

    def _failed(self, title: str, reason: str) -> None:
        if self._on_failure is None:
            _log.warning("alert %r not delivered: %s", title, reason)
            return
        try:
            self._on_failure(title, reason)
        except Exception:
            _log.exception("alerts: on_failure raised for %r (reason: %s)", title, reason)


class NullAlerter:
    """Alerts off: the :class:`Alerter` interface, doing nothing (kinds are still checked)."""

    spec = AlertSpec()

    def send(self, kind: str, title: str, body: str, level: str = "info") -> None:
        _check(kind, level)

    def flush(self, timeout: float = 30.0) -> bool:
        return True

    def close(self, timeout: float = 30.0) -> None:
        return None

    @property
    def sent(self) -> list[dict[str, Any]]:
        return []

    def __enter__(self) -> NullAlerter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


def make_alerter(spec: AlertSpec, on_failure: Callable[[str, str], None] | None = None
                 ) -> Alerter | NullAlerter:
    """An :class:`Alerter` when ``spec`` has URLs, else a :class:`NullAlerter`."""
    return Alerter(spec, on_failure) if spec.enabled else NullAlerter()


def _check(kind: str, level: str) -> None:
    if kind not in ALL_KINDS:
        raise ConfigError(unknown_name_message("alert kind", kind, ALL_KINDS))
    if level not in LEVELS:
        raise ConfigError(unknown_name_message("alert level", level, LEVELS))


def _coalesced_report(key: tuple[str, str], window: _Window, interval: float) -> dict[str, Any]:
    kind, title = key
    body = (f"{window.count} more alert(s) like this within {interval:g} s; the last one said:"
            f"\n\n{window.last_body}")
    return {"kind": kind, "title": f"{title} (x{window.count} more)", "body": body,
            "level": window.level}


# -- formatters -------------------------------------------------------------------------------
def format_fill(fill: Mapping[str, Any]) -> tuple[str, str]:
    """Title and body for a fill record (the shape of ``Store.fills`` rows).

    Costs (commission, slippage, impact) are in account currency, as the broker reports them.
    """
    quantity, price = float(fill["quantity"]), float(fill["price"])
    side = "BUY" if quantity > 0 else "SELL"
    costs = {name: float(fill.get(name) or 0.0) for name in ("commission", "slippage", "impact")}
    title = f"{side} {_qty(abs(quantity))} {fill['symbol']} @ {_money(price)}"
    lines = [
        f"{side} {_qty(abs(quantity))} {fill['symbol']} at {_money(price)} "
        f"(notional {_money(abs(quantity) * price)})",
        "costs: " + ", ".join(f"{k} {_money(v)}" for k, v in costs.items())
        + f" (total {_money(sum(costs.values()))})",
    ]
    if fill.get("time"):
        lines.append(f"time: {fill['time']}")
    if fill.get("client_order_id"):
        lines.append(f"order: {fill['client_order_id']}")
    return title, "\n".join(lines)


def format_daily_summary(run: Mapping[str, Any], equity: pd.DataFrame,
                         fills: list[Mapping[str, Any]], events: list[Mapping[str, Any]],
                         day: date | str | None = None) -> tuple[str, str]:
    """Title and body of the daily summary of a run.

    Parameters
    ----------
    run : mapping
        ``Store.run``; ``kill_switch`` is shown, and ``breaker`` too when the caller adds it.
    equity : DataFrame
        ``Store.equity``: columns ``time`` (ISO, UTC) and ``equity`` (and ``cash``).
    fills : list of mapping
        ``Store.fills``: every fill of the run; positions are their sums, the day's fills and
        costs those dated ``day``.
    events : list of mapping
        ``Store.events`` and, optionally, ``Store.errors`` rows (no ``kind``); those dated ``day``
        are counted. Errors: error rows plus events whose kind starts with ``error``.
    day : date or str, optional
        The UTC day to summarise (default: the day of the last equity snapshot, else today).
    """
    frame = equity
    if len(frame):
        frame = frame.assign(time=pd.to_datetime(frame["time"], utc=True, format="ISO8601"))
        frame = frame.sort_values("time", kind="stable")
    day = _summary_day(frame, day)
    pnl, pct, last = _day_pnl(frame, day)
    todays = [f for f in fills if _day_of(f.get("time")) == day]
    costs = sum(float(f.get(k) or 0.0) for f in todays for k in ("commission", "slippage", "impact"))
    dated = [e for e in events if _day_of(e.get("time")) in (day, None)]
    errors = sum(1 for e in dated if "kind" not in e or str(e["kind"]).startswith("error"))
    risk = sum(1 for e in dated if str(e.get("kind", "")).startswith("risk:"))
    held = _positions(fills)
    run_id = run.get("run_id", "?")
    if last is None:
        title = f"{run_id} {day}: no equity snapshot yet"
        lines = ["no equity snapshot yet"]
    else:
        title = f"{run_id} {day}: {_signed_money(pnl)} ({pct:+.2%})"
        lines = [f"P&L today: {_signed_money(pnl)} ({pct:+.2%})", f"equity: {_money(last)}"]
    state = f"kill switch {run.get('kill_switch', '?')}"
    if run.get("breaker"):
        state += f", breaker {run['breaker']}"
    lines += [
        f"positions: {len(held)}" + (f" ({', '.join(f'{s} {_qty(q)}' for s, q in held.items())})"
                                     if held else ""),
        f"fills today: {len(todays)}, costs {_money(costs)}",
        f"state: {state}; risk events today: {risk}",
        f"errors today: {errors}",
    ]
    if run.get("strategy"):
        lines.insert(0, f"run {run_id} ({run['strategy']}), {day}")
    return title, "\n".join(lines)


def _day_of(stamp: Any) -> date | None:
    """The UTC day of an ISO time stamp (naive ones are taken as UTC); None when missing."""
    if stamp is None or stamp == "":
        return None
    when = pd.Timestamp(stamp)
    return (when.tz_convert("UTC") if when.tzinfo is not None else when).date()


def _summary_day(frame: pd.DataFrame, day: date | str | None) -> date:
    if day is not None:
        return pd.Timestamp(day).date()
    if len(frame):
        return frame["time"].iloc[-1].date()
    return pd.Timestamp.now(tz="UTC").date()


def _day_pnl(frame: pd.DataFrame, day: date) -> tuple[float, float, float | None]:
    """P&L of ``day``: last equity of the day minus the last one before it (else its first)."""
    if not len(frame):
        return 0.0, 0.0, None
    dates = frame["time"].dt.date
    today = frame[dates == day]
    before = frame[dates < day]
    if not len(today):
        return 0.0, 0.0, None
    last = float(today["equity"].iloc[-1])
    base = float(before["equity"].iloc[-1]) if len(before) else float(today["equity"].iloc[0])
    pnl = last - base
    return pnl, (pnl / base if base else 0.0), last


def _positions(fills: list[Mapping[str, Any]]) -> dict[str, float]:
    held: dict[str, float] = {}
    for f in fills:
        held[f["symbol"]] = held.get(f["symbol"], 0.0) + float(f["quantity"])
    return {s: q for s, q in sorted(held.items()) if abs(q) > 1e-9}


def _qty(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.6g}"


def _money(value: float) -> str:
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def _signed_money(value: float) -> str:
    return _money(value) if value < 0 else "+" + _money(value)
