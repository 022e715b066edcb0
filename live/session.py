"""Services that run beside a paper session's bars: scheduled backups, replay reports, and a clean
stop when the state database cannot be written.

Both brokers' sessions call :meth:`SessionServices.after_bar` after every processed bar (through
the runner's progress callback), so the rules here hold for a replay and a live account alike:

* **Backups**: an online backup of the state database and the model registry
  (:func:`live.backup.backup_store`) when the newest one is older than ``backup_every`` of wall
  time, into ``FW_HOME/backups`` (the newest 14 kept). A failed backup is an error and an alert;
  it never stops trading.
* **Replay reports**: a simulated replay writes the weekly/monthly reports (the live session
  writes them itself after each week's last session) when the replay crosses into a new
  week/month, for the period that just ended.
* **Storage failure**: :func:`stop_on_storage_failure` turns a :class:`StorageError` (disk full,
  read-only, I/O error) into a failure alert; the error then ends the command with exit code 74.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from framework.errors import ConfigError, FwError, StorageError
from live.state import Store

_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NY = "America/New_York"
_log = logging.getLogger(__name__)


def parse_every(text: str | None) -> timedelta | None:
    """``"1d"``, ``"12h"``, ``"30m"`` -> timedelta; ``"off"``/``"never"``/None -> None."""
    if text is None or str(text).strip().lower() in ("off", "never", "none", "0"):
        return None
    match = _EVERY.match(str(text).lower())
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(f"backup interval {text!r} is invalid; expected a positive number with "
                          "a unit (s, m, h, d) such as 1d or 12h, or 'off'.")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


@dataclass(frozen=True)
class SessionSpec:
    """What runs beside the bars of one paper session.

    Parameters
    ----------
    backup_every : timedelta or None
        Wall time between online backups of a SQLite state database (None: no backups).
    replay_reports : bool
        A simulated replay writes weekly/monthly reports as it crosses period ends.
    """

    backup_every: timedelta | None = timedelta(days=1)
    replay_reports: bool = False


class SessionServices:
    """Per-bar services of one session (see the module docstring).

    Parameters
    ----------
    store : Store
    run_id : str
    spec : SessionSpec
    alerter : live.alerts.Alerter
    reporter : callable, optional
        ``reporter(db_url, run_id, period, today) -> (path, headline)``, for replay reports.
    clock : callable
        Wall clock (tests pass a fake one).
    backup : callable
        ``backup(url) -> BackupResult`` (default :func:`live.backup.backup_store`).
    """

    def __init__(self, store: Store, run_id: str, spec: SessionSpec, alerter,
                 reporter: Callable[..., tuple[str, str]] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 backup: Callable[[str], Any] | None = None) -> None:
        self.store, self.run_id, self.spec, self.alerter = store, run_id, spec, alerter
        self.reporter, self.clock = reporter, clock
        self._backup = backup
        run = store.run(run_id)  # a resumed replay still reports the period it resumes across
        self._previous: pd.Timestamp | None = (
            pd.Timestamp(run["last_bar"]) if run is not None and run["last_bar"] else None)
        self._last_backup: datetime | None = None
        self.backups: list[str] = []

    def progress(self, per_bar: Callable[..., None] | None) -> Callable[[int, Any], None]:
        """A runner progress callback that also runs the services after each bar."""
        def callback(n_bars: int, bar) -> None:
            if per_bar is not None:
                per_bar(n_bars, bar)
            self.after_bar(bar)
        return callback

    def after_bar(self, bar) -> None:
        """Run what is due after a processed bar."""
        if not bar.warmup:
            if self.spec.replay_reports and self.reporter is not None:
                self._replay_reports(pd.Timestamp(bar.time))
            self._previous = pd.Timestamp(bar.time)
        self.maybe_backup()

    # -- backups ------------------------------------------------------------------------------
    def maybe_backup(self) -> str | None:
        """Back up when the newest backup is older than ``backup_every``; returns its folder."""
        every = self.spec.backup_every
        if every is None or self.store.database_path() is None:
            return None
        now = self.clock()
        if self._last_backup is None:
            self._last_backup = self._newest_backup()
        if self._last_backup is not None and now - self._last_backup < every:
            return None
        self._last_backup = now  # a failing backup is retried after `every`, not every bar
        try:
            result = (self._backup or _default_backup)(self.store.url)
        except StorageError:
            raise
        except FwError as exc:  # a backup must never stop trading; it is recorded and alerted
            self._failed(str(exc))
            return None
        except OSError as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            return None
        folder = str(getattr(result, "path", result))
        self.backups.append(folder)
        self.store.event(self.run_id, "backup", f"scheduled backup: {folder}")
        return folder

    def _newest_backup(self) -> datetime | None:
        """Time of the newest scheduled backup event of this run (the store remembers across
        restarts, so a restart loop does not take a backup each time)."""
        event = self.store.last_event(self.run_id, "backup")
        return datetime.fromisoformat(event["time"]) if event is not None else None

    def _failed(self, message: str) -> None:
        self.store.error(self.run_id, "scheduled backup failed", message)
        self.alerter.send("error", f"{self.run_id}: scheduled backup failed", message, "warning")

    # -- replay reports -----------------------------------------------------------------------
    def _replay_reports(self, close: pd.Timestamp) -> None:
        """Reports for the week/month that ended before ``close``'s session."""
        if self._previous is None:
            return
        before, here = self._previous.tz_convert(_NY), close.tz_convert(_NY)
        due = []
        if here.isocalendar()[:2] != before.isocalendar()[:2]:
            due.append(("weekly", (before + pd.Timedelta(days=5 - before.weekday())).date()))
        if (here.year, here.month) != (before.year, before.month):
            due.append(("monthly", (before + pd.offsets.MonthBegin(1)).date()))
        for period, today in due:
            try:
                path, headline = self.reporter(self.store.url, self.run_id, period, today)
            except StorageError:
                raise
            except Exception as exc:  # a report must never stop trading; the error is recorded
                self.store.error(self.run_id, f"{period} report failed",
                                 f"{type(exc).__name__}: {exc}")
                continue
            self.store.event(self.run_id, "report", f"{period} report: {path}")
            self.alerter.send("summary", f"{self.run_id}: {period} report", f"{headline}\n{path}")


def _default_backup(url: str):
    from live.backup import backup_store

    return backup_store(url)


@contextlib.contextmanager
def stop_on_storage_failure(alerter, run_id: str) -> Iterator[None]:
    """Alert when the state database cannot be written, then let the error end the command.

    Nothing is lost by stopping: orders are stored before they are sent, so the broker has
    nothing the store does not know; the restart after the disk is fixed reconciles.
    """
    try:
        yield
    except StorageError as exc:
        _log.error("storage failure: %s", exc)
        alerter.send("halt", f"{run_id}: trading stopped, state database unwritable", str(exc),
                     "failure")
        raise
