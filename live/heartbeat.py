"""Heartbeat alerts for unattended paper runs: a check that runs outside the runner.

A runner cannot report its own death (a crash, a kill, a hung feed, a full disk), so
``fw service install`` also installs a systemd timer (:func:`timer_units`) that runs
``fw service heartbeat`` every few minutes. Each check is a fresh process:
:func:`check_heartbeat` reads the run from the state database, judges its silence with
:func:`live.health.heartbeat_due` (market hours only, so nights, weekends and holidays never
alert), and alerts through the run's alert channel.

What a check must remember from the previous ones (a silence is open, when it last alerted) is
kept in the same database as events of kind ``heartbeat``: the store is the only state. Each such
event's message is a sentence for people followed by a JSON object for the next check, e.g.
``silent: no bar since ... ; alerted {"heartbeat": "silent", ...}``.

A silence alerts once when it starts, again every ``realert_seconds`` while it lasts, and once
more (level info) when bars resume.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from framework.errors import ConfigError, FwError
from live.health import default_grace, heartbeat_due
from live.service import (
    HEARTBEAT_EVERY,
    SCOPES,
    ServiceSpec,
    exec_line,
    heartbeat_unit_names,
    service_environment,
)
from live.state import Store

KIND = "heartbeat"  # the event kind of the check's memory, and the alert kind
STATUSES: tuple[str, ...] = ("ok", "silent", "recovered", "idle")
CHECK_TIMEOUT_SEC = 120  # a check (alert delivery included) that takes longer is killed
MIN_EVERY = 30.0
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeartbeatSpec:
    """How :func:`check_heartbeat` judges and alerts.

    Parameters
    ----------
    grace_seconds : float, optional
        Seconds a bar may be late after its close before the run counts as silent; None: the
        default of the run's interval (:func:`live.health.default_grace`).
    realert_seconds : float
        While a silence lasts, repeat its alert at most this often (0: at every check).
    unit : str, optional
        The service's unit name, named in the alert's hints (``fw service status --name``,
        ``journalctl -u``).
    scope : str
        ``"user"`` or ``"system"``: which systemctl/journalctl the hints use.
    """

    grace_seconds: float | None = None
    realert_seconds: float = 3600.0
    unit: str | None = None
    scope: str = "user"

    def __post_init__(self) -> None:
        if self.grace_seconds is not None and not _seconds_ok(self.grace_seconds):
            raise ConfigError(f"heartbeat grace {self.grace_seconds!r} is invalid; expected "
                              "seconds >= 0 (--grace), or none for the interval's default.")
        if not _seconds_ok(self.realert_seconds):
            raise ConfigError(f"heartbeat realert interval {self.realert_seconds!r} is invalid; "
                              "expected seconds >= 0 (--realert).")
        if self.scope not in SCOPES:
            raise ConfigError(f"service scope {self.scope!r} is unknown; expected 'user' or "
                              "'system'.")


@dataclass(frozen=True)
class HeartbeatResult:
    """The outcome of one check.

    Attributes
    ----------
    run_id : str
    status : str
        ``"ok"`` (bars arrive), ``"silent"`` (a bar is overdue in market hours),
        ``"recovered"`` (bars resumed after an alerted silence) or ``"idle"`` (nothing is
        expected: the run finished or was stopped, a replay run, the market is closed).
    lag_seconds : float or None
        Seconds from the last processed bar's close to the check (None: no bar yet).
    alerted : bool
        This check sent an alert (to a null alerter too, when alerts are off).
    message : str
        One sentence on what was found.
    last_bar : str or None
        The last processed bar's close label.
    checked_at : str
        The time of the check (ISO, UTC).
    """

    run_id: str
    status: str
    lag_seconds: float | None
    alerted: bool
    message: str
    last_bar: str | None
    checked_at: str

    @property
    def exit_code(self) -> int:
        """The process exit code of ``fw service heartbeat``: 1 when silent, else 0."""
        return 1 if self.status == "silent" else 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One line for people (the journal of the check)."""
        return f"{self.run_id}: {self.status}; {self.message}"


@dataclass(frozen=True)
class HeartbeatMemo:
    """What the last ``heartbeat`` event of a run says."""

    state: str  # "silent" (an alerted silence is open) or "recovered"
    last_bar: str | None  # the run's last bar when the event was written
    alerted_at: pd.Timestamp | None  # the last alert of an open silence
    first_alert_at: pd.Timestamp | None  # the first alert of an open silence


@dataclass(frozen=True)
class _Check:
    """Everything one check knows, passed between its steps."""

    store: Store
    run: Mapping[str, Any]
    now: pd.Timestamp
    spec: HeartbeatSpec
    alerter: Any

    @property
    def run_id(self) -> str:
        return self.run["run_id"]

    @property
    def last_bar(self) -> str | None:
        return self.run.get("last_bar") or None

    @property
    def lag(self) -> float | None:
        if self.last_bar is None:
            return None
        return (self.now - _utc(self.last_bar, "last bar")).total_seconds()

    def result(self, status: str, message: str, alerted: bool = False) -> HeartbeatResult:
        return HeartbeatResult(self.run_id, status, self.lag, alerted, message, self.last_bar,
                               self.now.isoformat())


# ---------------------------------------------------------------------------------------------
# the check


def check_heartbeat(store: Store, run_id: str, now: object, alerter: Any,
                    spec: HeartbeatSpec | None = None) -> HeartbeatResult:
    """Check once whether a paper run is still processing bars; alert on silence and recovery.

    Parameters
    ----------
    store : Store
        The run's state database (read, plus a ``heartbeat`` event when the check alerts).
    run_id : str
        The run to check.
    now : timestamp-like
        The time of the check (tz-aware).
    alerter : object with ``send(kind, title, body, level)``
        Where alerts go (``live.alerts.Alerter``); the caller flushes or closes it.
    spec : HeartbeatSpec, optional
        Grace, realert interval and the unit named in hints; default :class:`HeartbeatSpec`.

    Returns
    -------
    HeartbeatResult

    Raises
    ------
    ConfigError
        Unknown run id, a time without time zone, a run with an unknown bar interval.
    """
    spec = spec or HeartbeatSpec()
    run = store.run(run_id)
    if run is None:
        known = ", ".join(r["run_id"] for r in store.runs()) or "none"
        raise ConfigError(f"run id {run_id!r} is not in {store.url} (runs: {known}); check "
                          "--run-id and --db (they must match the service's fw paper).")
    check = _Check(store, run, _utc(now, "now"), spec, alerter)
    memo = last_memo(store, run_id)
    if memo is not None and memo.state == "silent" and _advanced(check.last_bar, memo.last_bar):
        return _recovered(check, memo)
    idle = _idle_reason(check)
    if idle is not None:
        return check.result("idle", idle)
    interval = str(run["config"].get("interval", "1Day"))
    grace = spec.grace_seconds if spec.grace_seconds is not None else default_grace(interval)
    since = check.last_bar or run["created_at"]  # no bar yet: the warm-up counts from the start
    if not heartbeat_due(since, check.now, interval, grace):
        return check.result("ok", f"last {interval} bar {check.last_bar or 'none yet'} is on "
                                  f"time (grace {grace:g} s)")
    return _silent(check, memo, interval, grace)


def _idle_reason(check: _Check) -> str | None:
    """Why no bar is expected now, or None when one is."""
    from live.clock import session_state

    status = check.run.get("status")
    if status != "running":
        return f"the run is {status}: no bars are expected until fw paper runs it again"
    broker = check.run["config"].get("broker", "sim")
    if broker != "alpaca":
        return f"a {broker} replay run has no market-hours schedule to miss"
    if session_state(check.now) != "open":
        return "the market is closed: no bars are expected"
    return None


def _silent(check: _Check, memo: HeartbeatMemo | None, interval: str,
            grace: float) -> HeartbeatResult:
    """A bar is overdue: alert when the silence is new or its last alert is old enough."""
    since = check.last_bar or "the start of the run"
    lag = f" ({_duration(check.lag)} ago)" if check.lag is not None else ""
    is_open = memo is not None and memo.state == "silent" and memo.alerted_at is not None
    if is_open and (check.now - memo.alerted_at).total_seconds() < check.spec.realert_seconds:
        due = memo.alerted_at + pd.Timedelta(seconds=check.spec.realert_seconds)
        return check.result("silent", f"no bar since {since}{lag}; alerted at "
                                      f"{memo.alerted_at.isoformat()}, next alert after "
                                      f"{due.isoformat()} if still silent")
    first = (memo.first_alert_at or memo.alerted_at) if is_open else check.now
    state = {"heartbeat": "silent", "last_bar": check.last_bar,
             "alerted_at": check.now.isoformat(), "first_alert_at": first.isoformat()}
    text = f"silent: no {interval} bar since {since}{lag}"
    problem = _remember(check, f"{text}; alerted {json.dumps(state, sort_keys=True)}")
    title = f"{check.run_id}: no bar since {_short(check.last_bar)}"
    if is_open:
        title += " (still silent)"
    body = (f"fw paper run {check.run_id} has processed no {interval} bar since {since}{lag}, "
            f"more than {grace:g} s after a bar close in market hours (checked at "
            f"{check.now.isoformat()}; first alert {first.isoformat()}; kill switch "
            f"{check.run.get('kill_switch')}). The runner may have crashed, hung or lost its "
            f"data feed.\n\nCheck: {_hints(check)}"
            + (f"\n\n{problem}" if problem else ""))
    check.alerter.send(KIND, title, body, "warning")
    again = f", again every {check.spec.realert_seconds:g} s while silent"
    return check.result("silent", f"no bar since {since}{lag}; alert sent{again}"
                        + (f"; {problem}" if problem else ""), alerted=True)


def _recovered(check: _Check, memo: HeartbeatMemo) -> HeartbeatResult:
    """Bars resumed after an alerted silence: one info alert, and the silence is closed."""
    state = {"heartbeat": "recovered", "last_bar": check.last_bar, "at": check.now.isoformat()}
    text = f"recovered: bars resumed, last bar {check.last_bar}"
    problem = _remember(check, f"{text}; {json.dumps(state, sort_keys=True)}")
    began = memo.first_alert_at.isoformat() if memo.first_alert_at is not None else "?"
    body = (f"fw paper run {check.run_id} processes bars again: last bar {check.last_bar} "
            f"(silent after bar {memo.last_bar or 'none'}, first alert {began}; checked at "
            f"{check.now.isoformat()}). Bars missed meanwhile were read as history, not "
            f"traded.\n\nSee: {_hints(check)}" + (f"\n\n{problem}" if problem else ""))
    check.alerter.send(KIND, f"{check.run_id}: bars resumed", body, "info")
    return check.result("recovered", f"bars resumed after a silence that began after bar "
                        f"{memo.last_bar or 'none'}; recovery alert sent"
                        + (f"; {problem}" if problem else ""), alerted=True)


def _remember(check: _Check, message: str) -> str | None:
    """Store the check's memory; on failure (a full or read-only disk: the very case to alert
    about) say so instead of raising, so the alert still goes out."""
    try:
        check.store.event(check.run_id, KIND, message)
    except (FwError, sa.exc.SQLAlchemyError) as exc:
        _log.warning("heartbeat of %s not recorded in %s: %s", check.run_id, check.store.url, exc)
        return (f"This check could not record its alert in the state database ({exc}), so the "
                "alert repeats at every check until the database is writable again.")
    return None


def _hints(check: _Check) -> str:
    user = check.spec.scope == "user"
    unit = check.spec.unit
    name = f" --name {unit}" if unit else ""
    scope = "" if user else " --scope system"
    journal = f"journalctl {'--user ' if user else ''}-u {unit or '<the fw unit>'}"
    return (f"`fw service status{name}{scope}`, `fw logs errors --run-id {check.run_id}`, "
            f"`{journal}`")


def last_memo(store: Store, run_id: str) -> HeartbeatMemo | None:
    """The memory of the previous checks: the run's latest ``heartbeat`` event, parsed.

    An event that cannot be read (edited by hand) counts as no memory, with a warning: the
    worst outcome is one alert too many.
    """
    event = store.last_event(run_id, KIND)  # a busy run writes many events between checks
    if event is None:
        return None
    message = event["message"]
    try:
        state = json.loads(message[message.rindex(" {") + 1:])
        return HeartbeatMemo(state["heartbeat"], state.get("last_bar"),
                     _optional_time(state.get("alerted_at")),
                     _optional_time(state.get("first_alert_at")))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        _log.warning("heartbeat event of %s unreadable (%s): %r; treated as none",
                     run_id, exc, message)
        return None


def _advanced(last_bar: str | None, before: str | None) -> bool:
    if last_bar is None:
        return False
    return before is None or _utc(last_bar, "last bar") > _utc(before, "last bar")


# ---------------------------------------------------------------------------------------------
# the systemd timer


def heartbeat_command(spec: ServiceSpec) -> tuple[str, ...]:
    """The ``ExecStart`` words of the check: ``fw service heartbeat`` for the spec's run.

    ``--db`` is passed only when ``fw paper`` has one: otherwise both units find the same
    database through the same environment (``FW_HOME``, ``FW_DB_URL`` from the environment
    file).
    """
    words = [*spec.fw_words, "service", "heartbeat", "--run-id", spec.paper_run_id]
    if spec.paper_db is not None:
        words += ["--db", spec.paper_db]
    return (*words, "--name", spec.unit_name, "--scope", spec.scope)


def timer_units(spec: ServiceSpec, every_seconds: float = HEARTBEAT_EVERY) -> dict[str, str]:
    """The heartbeat units of ``spec``: file name -> text.

    ``<name>-heartbeat.service`` runs one check (``Type=oneshot``, with the main unit's user,
    environment and working directory); ``<name>-heartbeat.timer`` starts it every
    ``every_seconds``.

    Parameters
    ----------
    spec : ServiceSpec
        The ``fw paper`` service whose run is checked.
    every_seconds : float
        Seconds between checks, >= 30.

    Raises
    ------
    ConfigError
        ``every_seconds`` is not a number of seconds >= 30.
    """
    if not (_seconds_ok(every_seconds) and every_seconds >= MIN_EVERY):
        raise ConfigError(f"heartbeat interval {every_seconds!r} is invalid; expected seconds "
                          f">= {MIN_EVERY:g} (a check every {HEARTBEAT_EVERY} s is the default).")
    check, timer = heartbeat_unit_names(spec.unit_name)
    return {check: _check_text(spec), timer: _timer_text(spec, every_seconds, check)}


def _header(spec: ServiceSpec) -> str:
    return (f"# written by `fw service install` beside {spec.unit_name}; "
            "`fw service uninstall` removes it")


def _check_text(spec: ServiceSpec) -> str:
    lines = [
        _header(spec),
        "[Unit]",
        f"Description=fw heartbeat check of {spec.unit_name}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        *service_environment(spec),
        f"ExecStart={exec_line(heartbeat_command(spec))}",
        "# exit 1: the run is silent (an alert was sent, or is repeated later); the unit shows",
        "# as failed until a check passes",
        "# a check that hangs (a notification service that never answers) must not block the",
        "# next ones: a oneshot service has no start timeout unless given one",
        f"TimeoutStartSec={CHECK_TIMEOUT_SEC}",
    ]
    return "\n".join(lines) + "\n"


def _timer_text(spec: ServiceSpec, every: float, check: str) -> str:
    period = _period(every)
    lines = [
        _header(spec),
        "[Unit]",
        f"Description=fw heartbeat timer of {spec.unit_name} (every {period})",
        "",
        "[Timer]",
        "# the first check one period after the timer starts (at install, and at boot or login",
        "# through timers.target)",
        f"OnActiveSec={period}",
        "# then one period after each check ended (OnUnitActiveSec= would not repeat: a oneshot",
        "# service never becomes active, it goes from activating back to inactive)",
        f"OnUnitInactiveSec={period}",
        "AccuracySec=30s",
        f"Unit={check}",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# helpers


def heartbeat_alerter(store: Store, run_id: str):
    """The alerter of ``fw service heartbeat``: the config's notification switch and the
    ``FW_APPRISE_URLS`` channels, for heartbeat alerts (a null alerter when alerts are off).
    An alert that cannot be delivered is stored as an error of the run."""
    from framework.config import load_config
    from live.alerts import AlertSpec, NullAlerter, make_alerter

    if not load_config().notifications.enabled:
        return NullAlerter()
    spec = AlertSpec.from_environment(kinds=frozenset({KIND}))

    def undelivered(title: str, reason: str) -> None:
        store.error(run_id, f"heartbeat alert {title!r} not delivered", reason)

    return make_alerter(spec, on_failure=undelivered)


def _seconds_ok(value: object) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)


def _utc(value: object, what: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} {value!r} is not a time; expected an ISO time such as "
                          "2024-01-09T15:00:00Z.") from exc
    if stamp is pd.NaT or stamp.tzinfo is None:
        raise ConfigError(f"{what} {value!r} has no time zone (or is no time); expected a "
                          "tz-aware time such as 2024-01-09T15:00:00Z.")
    return stamp.tz_convert("UTC")


def _optional_time(value: object) -> pd.Timestamp | None:
    return None if value is None else _utc(value, "heartbeat time")


def _period(seconds: float) -> str:
    """Seconds as a systemd time span (``300s``, ``2.5s``)."""
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{seconds:.3f}".rstrip("0") + "s"


def _short(last_bar: str | None) -> str:
    if last_bar is None:
        return "the start"
    return _utc(last_bar, "last bar").strftime("%Y-%m-%d %H:%MZ")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{hours // 24} days"
