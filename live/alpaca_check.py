"""``fw broker check --broker alpaca``: keys, host, account, paper vs live, clock.

Each step is one :class:`~live.broker_check.Check`; a step whose prerequisite failed is reported
as skipped, so the first failure is the one to fix. The steps reuse the adapter's own rules
(``live.alpaca``): keys from the environment or ``.env``, URL overrides from
``APCA_API_BASE_URL``, the live trading host refused, every request with a timeout and no
retries (a diagnosis should answer quickly, not wait out a backoff).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
import requests

from framework.errors import BrokerError, ConfigError
from live.alpaca import (
    KEY_VARIABLE,
    LIVE_HOST,
    PAPER_URL,
    SECRET_VARIABLE,
    TRADING_URL_VARIABLE,
    AlpacaConnection,
    AlpacaSpec,
    alpaca_keys,
    api_status,
)
from live.broker_check import Check, skipped
from live.clock import ClockDriftError, SyncedClock

NEW_YORK = "America/New_York"
_KEYS_HELP = (f"{KEY_VARIABLE} and {SECRET_VARIABLE} must be the keys of the PAPER account "
              "(paper and live keys differ): generate them at https://app.alpaca.markets under "
              "'Paper' and export them or put them in .env")


def checks(environ: Mapping[str, str], *, timeout: float = 5.0, max_drift: float = 5.0,
           now: Callable[[], pd.Timestamp] | None = None) -> list[Check]:
    """Diagnose the Alpaca paper connection described by ``environ``.

    Parameters
    ----------
    environ : mapping
        ``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY`` (or a ``.env`` file) and optionally
        ``APCA_API_BASE_URL``.
    timeout : float
        Seconds per request.
    max_drift : float
        Largest allowed offset in seconds between the broker's clock and the local one.
    now : callable, optional
        The local clock (tz-aware timestamps); default the system clock.

    Returns
    -------
    list of Check
        ``credentials``, ``reachable``, ``account``, ``mode``, ``clock``.
    """
    credentials, keys = _credentials(environ)
    try:
        spec = AlpacaSpec.from_environment(environ, timeout=timeout, attempts=1)
    except ConfigError as exc:  # the live host (or a bad override): refused before any request
        refused = "the trading host is refused (see mode)"
        return [credentials, skipped("reachable", refused), skipped("account", refused),
                _refused_mode(environ, exc), skipped("clock", refused)]
    reachable = _reachable(spec.trading_host, timeout)
    if keys is None or not reachable.ok:
        why = "no credentials" if keys is None else "the host is unreachable"
        return [credentials, reachable, skipped("account", why), _mode(spec, None),
                skipped("clock", why)]
    try:
        connection = AlpacaConnection(spec, keys, sleep=lambda _seconds: None)
    except ConfigError as exc:  # alpaca-py is not installed
        return [credentials, reachable, Check("account", False, str(exc)), _mode(spec, None),
                skipped("clock", "alpaca-py is missing")]
    account, raw = _account(connection)
    clock = (_clock(connection, max_drift, now) if account.ok
             else skipped("clock", "the account could not be read"))
    return [credentials, reachable, account, _mode(spec, raw), clock]


def _credentials(environ: Mapping[str, str]) -> tuple[Check, tuple[str, str] | None]:
    from framework.secrets import load_secrets, mask_secret

    try:
        keys = alpaca_keys(environ)
    except ConfigError as exc:
        return Check("credentials", False, str(exc)), None
    sources = load_secrets(environ=environ).sources
    where = sorted({sources.get(KEY_VARIABLE, "?"), sources.get(SECRET_VARIABLE, "?")})
    return Check("credentials", True, f"{KEY_VARIABLE} ({mask_secret(keys[0])}) and "
                                      f"{SECRET_VARIABLE} set (from {', '.join(where)})"), keys


def _reachable(host: str, timeout: float) -> Check:
    """Any HTTP answer counts: keys are judged by the account step."""
    started = time.monotonic()
    try:
        response = requests.get(f"{host.rstrip('/')}/v2/clock", timeout=timeout,
                                allow_redirects=False)
    except requests.RequestException as exc:
        return Check("reachable", False,
                     f"cannot reach {host} within {timeout:g} s ({_reason(exc)}). Check the "
                     "network, firewall or proxy"
                     + (f", and {TRADING_URL_VARIABLE}" if host != PAPER_URL else "")
                     + "; see https://status.alpaca.markets for outages.")
    elapsed = (time.monotonic() - started) * 1000.0
    return Check("reachable", True,
                 f"{host} answered (HTTP {response.status_code}) in {elapsed:.0f} ms")


def _reason(exc: requests.RequestException) -> str:
    """The root cause of a failed request, without urllib3's connection-object prefix."""
    inner = exc.args[0] if exc.args else exc
    inner = getattr(inner, "reason", inner)  # MaxRetryError wraps the real error
    text = str(inner).split("): ", 1)[-1]
    return f"{type(inner).__name__}: {text[:200]}"


def _account(connection: AlpacaConnection) -> tuple[Check, Any]:
    try:
        raw = connection.read("GET /v2/account", connection.trading.get_account)
    except connection.api_error as exc:
        status = api_status(exc)
        if status in (401, 403):
            return Check("account", False, f"Alpaca rejected the keys (HTTP {status}): "
                                           f"{_KEYS_HELP}."), None
        return Check("account", False, f"GET /v2/account failed: HTTP {status} {exc}"), None
    except BrokerError as exc:
        return Check("account", False, str(exc)), None
    status = str(getattr(raw.status, "value", raw.status))
    blocked = [name for name in ("account_blocked", "trading_blocked", "trade_suspended_by_user")
               if getattr(raw, name, False)]
    facts = (f"account {raw.account_number}: status {status}, cash {_money(raw.cash)}, "
             f"buying power {_money(raw.buying_power)}, equity {_money(raw.equity)}")
    if status != "ACTIVE" or blocked:
        why = ", ".join(blocked) or f"status {status}"
        return Check("account", False, f"{facts}; it cannot trade ({why}). Resolve it in the "
                                       "Alpaca dashboard (https://app.alpaca.markets)."), raw
    return Check("account", True, facts), raw


def _money(value: Any) -> str:
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return str(value)


def _refused_mode(environ: Mapping[str, str], exc: ConfigError) -> Check:
    override = environ.get(TRADING_URL_VARIABLE, "")
    if LIVE_HOST in override.split("://", 1)[-1].split("/", 1)[0]:
        return Check("mode", False, f"LIVE TRADING HOST REFUSED: {exc}")
    return Check("mode", False, f"refused: {exc}")


def _mode(spec: AlpacaSpec, account: Any) -> Check:
    """PAPER, said loudly, with the host; the account number is a second opinion."""
    if spec.trading_host == PAPER_URL:
        text = f"PAPER: {PAPER_URL} (simulated money)"
    else:
        text = (f"PAPER: endpoint override {TRADING_URL_VARIABLE}={spec.trading_host} (the "
                f"client runs with paper=True; Alpaca's LIVE host {LIVE_HOST} is refused)")
    number = str(getattr(account, "account_number", "") or "")
    if number.startswith("PA"):
        text += f"; account {number} is a paper account"
    elif number:
        text += (f"; WARNING: account number {number} does not start with 'PA' like Alpaca "
                 "paper accounts; make sure these are paper keys")
    return Check("mode", True, text)


def _clock(connection: AlpacaConnection, max_drift: float,
           now: Callable[[], pd.Timestamp] | None) -> Check:
    answers: dict[str, Any] = {}

    def reference() -> pd.Timestamp:
        answers["clock"] = connection.read("GET /v2/clock", connection.trading.get_clock)
        return pd.Timestamp(answers["clock"].timestamp).tz_convert("UTC")

    local = time.time if now is None else (lambda: pd.Timestamp(now()).value / 1e9)
    synced = SyncedClock(reference, local=local, max_drift=max_drift)
    try:
        offset = synced.sync()
    except (BrokerError, connection.api_error) as exc:
        return Check("clock", False, f"GET /v2/clock failed: {exc}")
    raw = answers["clock"]
    side = "behind" if offset > 0 else "ahead of"  # offset = broker time - local time
    facts = (f"broker clock {pd.Timestamp(raw.timestamp).tz_convert('UTC'):%Y-%m-%d %H:%M:%S} "
             f"UTC, market {'OPEN' if raw.is_open else 'CLOSED'}; next open "
             f"{_new_york(raw.next_open)}, next close {_new_york(raw.next_close)}; local clock "
             f"{abs(offset):.2f} s {side} the broker")
    try:
        synced.check()
    except ClockDriftError as exc:
        return Check("clock", False, f"{facts}. {exc}")
    return Check("clock", True, f"{facts} (limit {max_drift:g} s)")


def _new_york(stamp: Any) -> str:
    return f"{pd.Timestamp(stamp).tz_convert(NEW_YORK):%Y-%m-%d %H:%M} New York"
