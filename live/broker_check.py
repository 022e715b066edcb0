"""``fw broker check``: diagnose a broker connection step by step.

Each broker adapter provides ``checks(environ) -> list[Check]`` covering, in order: credentials
present, endpoint reachable, account readable, paper vs live mode, market clock. A failed step
says precisely what is wrong and how to fix it; later steps that depend on it are skipped.

:func:`run_checks` picks the broker's checks (the simulated broker's are here, Alpaca's in
``live.alpaca_check``, Webull's in ``live.webull``); :func:`render` and :func:`to_json` present
them and :func:`exit_code` turns them into the command's exit status.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from framework.errors import ConfigError, FwError, unknown_name_message

STEPS: tuple[str, ...] = ("credentials", "reachable", "account", "mode", "clock")
BROKERS: tuple[str, ...] = ("sim", "alpaca", "webull")
NEW_YORK = "America/New_York"

Now = Callable[[], pd.Timestamp]


@dataclass(frozen=True)
class Check:
    """One diagnosed step.

    Attributes
    ----------
    step : str
        One of :data:`STEPS` (or a broker-specific extra step such as ``"token"``).
    ok : bool
        Whether the step passed; ``None``-like skips are reported as ``ok=False`` with a
        detail starting with ``"skipped:"``.
    detail : str
        What was found; on failure, what was expected and how to fix it.
    """

    step: str
    ok: bool
    detail: str


def skipped(step: str, because: str) -> Check:
    """A step that could not run because an earlier one failed (counts as a failure)."""
    return Check(step, False, f"skipped: {because}")


def run_checks(broker: str, environ: Mapping[str, str], *, timeout: float = 5.0,
               max_drift: float = 5.0, now: Now | None = None) -> list[Check]:
    """Diagnose ``broker`` with the settings in ``environ``.

    Parameters
    ----------
    broker : str
        One of :data:`BROKERS`.
    environ : mapping
        Environment variables to read (credentials, URL overrides, ``FW_DB_URL``).
    timeout : float
        Seconds to wait for each network request (alpaca).
    max_drift : float
        Largest allowed difference in seconds between the broker's clock and the local one
        (alpaca).
    now : callable, optional
        The local clock (tz-aware UTC timestamps); tests pin it. Default: the system clock.

    Returns
    -------
    list of Check
        In the broker's step order.

    Raises
    ------
    ConfigError
        When ``broker`` is not one of :data:`BROKERS`.
    """
    if broker == "sim":
        return sim_checks(environ, now=now)
    if broker == "alpaca":
        from live.alpaca_check import checks as alpaca_checks

        return alpaca_checks(environ, timeout=timeout, max_drift=max_drift, now=now)
    if broker == "webull":
        return _webull_checks(environ, max_drift)
    raise ConfigError(unknown_name_message("broker", broker, BROKERS)
                      + " Fix: pass --broker sim, alpaca or webull.")


def _webull_checks(environ: Mapping[str, str], max_drift: float) -> list[Check]:
    """Webull's own checks, or one clear failure when this build has no Webull adapter."""
    try:
        from live.webull import checks as webull_checks
    except ImportError as exc:  # the module (or its ``checks``) is absent from this build
        return [Check("adapter", False,
                      f"webull adapter not installed in this build ({exc}). Install an fw "
                      "version that includes the webull broker (live/webull.py), or check "
                      "another broker with --broker alpaca or --broker sim.")]
    if "max_drift" in inspect.signature(webull_checks).parameters:
        return list(webull_checks(environ, max_drift=max_drift))
    return list(webull_checks(environ))


# -- the simulated broker ------------------------------------------------------------------------
def sim_checks(environ: Mapping[str, str], *, now: Now | None = None) -> list[Check]:
    """The simulated broker: nothing to log in to; the state database and the XNYS calendar.

    Steps: ``credentials`` (n/a), ``store`` (the state database named by ``FW_DB_URL``, else
    ``FW_HOME/state/fw.sqlite``), ``mode`` (simulated, offline) and ``clock`` (next open and
    close from the XNYS calendar of exchange_calendars).
    """
    return [
        Check("credentials", True, "n/a: the simulated broker needs no credentials"),
        _store_check(environ),
        Check("mode", True, "SIMULATED (offline): orders fill against stored bars on this "
                            "machine; no broker is contacted and no money moves"),
        _calendar_check(now or _utc_now),
    ]


def _utc_now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def database_url(environ: Mapping[str, str]) -> str:
    """``FW_DB_URL`` from ``environ``, else SQLite at ``FW_HOME/state/fw.sqlite``."""
    url = environ.get("FW_DB_URL", "").strip()
    if url:
        return url
    from framework.paths import fw_home

    home = environ.get("FW_HOME", "").strip()
    base = Path(home).expanduser() if home else fw_home()
    return f"sqlite:///{base / 'state' / 'fw.sqlite'}"


def _store_check(environ: Mapping[str, str]) -> Check:
    url = database_url(environ)
    where = "FW_DB_URL" if environ.get("FW_DB_URL", "").strip() else "default"
    missing = _missing_sqlite_file(url)
    if missing is not None:
        return _new_sqlite_check(url, missing)
    import sqlalchemy as sa

    from live.state import Store

    try:
        store = Store(url)
        try:
            version, runs = store.schema_version(), len(store.runs())
        finally:
            store.close()
    except (FwError, sa.exc.SQLAlchemyError, OSError) as exc:
        return Check("store", False, f"state database {url} ({where}) cannot be opened: {exc}. "
                                     "Fix FW_DB_URL (or --db), or the file's permissions.")
    return Check("store", True, f"state database {url} ({where}) reachable: schema version "
                                f"{version}, {runs} run(s)")


def _missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file of ``url`` when it does not exist yet (None otherwise)."""
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None  # Store() reports the malformed URL with its own message
    name = parsed.database
    if not parsed.drivername.startswith("sqlite") or not name or name == ":memory:":
        return None
    if name.startswith("file:"):
        return None
    path = Path(name)
    return None if path.exists() else path


def _new_sqlite_check(url: str, path: Path) -> Check:
    """A database that does not exist yet is fine when its folder can be created and written."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
        return Check("store", True, f"state database {url} does not exist yet; the first "
                                    f"`fw paper` creates it ({folder} is writable)")
    return Check("store", False, f"state database {url} does not exist and {folder} is not "
                                 "writable; make it writable or point FW_DB_URL (or --db) "
                                 "elsewhere")


def _calendar_check(now: Now) -> Check:
    from live.clock import BarSchedule, session_state

    try:
        moment = pd.Timestamp(now()).tz_convert("UTC")
        daily = BarSchedule("1Day")
        close = daily.next_close(moment)
        state = session_state(moment)
        # in a session the next open is tomorrow's; outside one it is the next session's
        upcoming = daily.next_close(close) if state == "open" else close
        opening = daily.bar_open(upcoming)
    except FwError as exc:
        return Check("clock", False, f"XNYS calendar unavailable: {exc}")
    return Check("clock", True, f"XNYS calendar (exchange_calendars, offline) at "
                                f"{_new_york(moment)}: market {state.upper()}; next open "
                                f"{_new_york(opening)}, next close {_new_york(close)}")


def _new_york(stamp: pd.Timestamp) -> str:
    return f"{pd.Timestamp(stamp).tz_convert(NEW_YORK):%Y-%m-%d %H:%M} New York"


# -- presentation -----------------------------------------------------------------------------------
def exit_code(checks: Sequence[Check]) -> int:
    """0 when every step passed, 1 when any failed (or nothing was checked)."""
    return 0 if checks and all(c.ok for c in checks) else 1


def summary(checks: Sequence[Check]) -> str:
    """One line: how many steps passed."""
    failed = sum(not c.ok for c in checks)
    if not checks:
        return "no checks ran"
    if failed == 0:
        return f"all {len(checks)} checks passed"
    return f"{failed} of {len(checks)} checks failed"


def render(broker: str, checks: Sequence[Check]) -> str:
    """Plain lines: the step, OK/FAIL and the detail, then a summary line."""
    width = max([len(c.step) for c in checks] + [4])
    lines = [f"fw broker check --broker {broker}"]
    lines += [f"  {c.step:<{width}}  {'OK' if c.ok else 'FAIL':<4}  {c.detail}" for c in checks]
    lines.append(f"{broker}: {summary(checks)}")
    return "\n".join(lines)


def to_json(broker: str, checks: Sequence[Check]) -> str:
    """``{"broker", "ok", "summary", "checks": [{"step", "ok", "detail"}]}`` as JSON text."""
    return json.dumps({"broker": broker, "ok": exit_code(checks) == 0,
                       "summary": summary(checks), "checks": [asdict(c) for c in checks]},
                      indent=2)
