"""live.session beside a paper session: scheduled backups, replay reports, uptime wiring.

Bars are generated on XNYS sessions and written as CSV into ``tmp_path`` (``--data-dir``);
FW_HOME is a fresh temporary folder per test (tests/conftest.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.cli import main
from framework.data.calendars import xnys_sessions
from framework.errors import ConfigError, StorageError
from framework.paths import fw_home
from framework.registry import resolve_strategy
from live.command import PaperSpec, halt_run, resume_run, run_paper, run_status, run_uptime
from live.feeds import ReplayFeed
from live.session import SessionServices, SessionSpec, parse_every
from live.state import Store
from strategies import REGISTRY
from tests.barsgen import make_bars
from tests.live.helpers import bars, play, session

SYMBOLS = ("AAA", "BBB")
FAST = ("--set", "fast=3", "--set", "slow=8")
STAMP = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")  # backup folder names (live.backup)


# -- fakes and data ---------------------------------------------------------------------------------
@dataclass
class Alerts:
    """A recording alerter (the ``live.alerts.Alerter`` interface)."""

    sent: list

    def send(self, kind: str, title: str, body: str, level: str = "info") -> None:
        self.sent.append({"kind": kind, "title": title, "body": body, "level": level})

    def close(self, timeout: float = 30.0) -> None:
        return None

    def of(self, kind: str) -> list[dict]:
        return [a for a in self.sent if a["kind"] == kind]


class Clock:
    """A settable wall clock. It starts at the real time: the store stamps events with the real
    clock, and a restarted service compares its clock with the newest ``backup`` event."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeBackup:
    """Stands in for ``live.backup.backup_store``: records calls, optionally fails."""

    def __init__(self, error: Exception | None = None) -> None:
        self.urls: list[str] = []
        self.error = error

    def __call__(self, url: str):
        self.urls.append(url)
        if self.error is not None:
            raise self.error
        return SimpleNamespace(path=Path(f"/backups/{len(self.urls)}"))


def _write_csv(folder: Path, first: str, last: str, seed: int = 5) -> Path:
    """Random-walk daily bars of SYMBOLS on every XNYS session in [first, last]."""
    sessions, _, _ = xnys_sessions()
    days = sessions[(sessions >= first) & (sessions <= last)]
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in SYMBOLS:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, len(days))))
        open_ = close * np.exp(rng.normal(0.0, 0.005, len(days)))
        pd.DataFrame({
            "date": [str(d.date()) for d in days], "open": open_,
            "high": np.maximum(open_, close) * 1.01, "low": np.minimum(open_, close) * 0.99,
            "close": close, "volume": 1e6,
        }).to_csv(folder / f"{symbol}.csv", index=False)
    return folder


def _fw(*args, code: int = 0):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, result.output + repr(result.exception)
    return result


def _paper_cli(data: Path, run_id: str, *args, code: int = 0):
    return _fw("paper", "sma_cross", "--symbols", ",".join(SYMBOLS), "--data-dir", data,
               "--risk-off", *FAST, "--run-id", run_id, *args, code=code)


def _kinds(store: Store, run_id: str, kind: str) -> list[dict]:
    return [e for e in store.events(run_id, limit=100_000) if e["kind"] == kind]


def _file_store(tmp_path: Path, name: str = "s.sqlite") -> Store:
    return Store(f"sqlite:///{tmp_path / name}")


def _bars_of(n: int = 3):
    return list(ReplayFeed(make_bars(n=n, m=1, seed=1)))


# -- parse_every ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("1d", timedelta(days=1)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
    ("90s", timedelta(seconds=90)), ("1.5h", timedelta(minutes=90)), (" 2D ", timedelta(days=2)),
    ("1 d", timedelta(days=1)), ("off", None), ("OFF", None), ("never", None), ("0", None),
    (None, None),
])
def test_parse_every_accepts(text, expected):
    assert parse_every(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "1w", "-1d", "0.0h", "0h", "abc", "d", "1dd", "1e3s"])
def test_parse_every_refuses_naming_the_value(text):
    with pytest.raises(ConfigError) as caught:
        parse_every(text)
    message = str(caught.value)
    assert repr(text) in message and "1d" in message and "'off'" in message


@settings(max_examples=50, deadline=None)
@given(amount=st.integers(1, 10**6), unit=st.sampled_from("smhd"))
def test_parse_every_is_amount_times_unit(amount, unit):
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_every(f"{amount}{unit}") == timedelta(seconds=amount * seconds)


# -- scheduled backups with a fake clock and a fake backup -------------------------------------------
def _services(store, clock, backup, every=timedelta(days=1), alerts=None, run_id="r"):
    alerts = alerts if alerts is not None else Alerts([])
    return SessionServices(store, run_id, SessionSpec(backup_every=every), alerts,
                           clock=clock, backup=backup), alerts


def test_first_bar_backs_up_then_only_after_the_interval(tmp_path):
    store, clock, backup = _file_store(tmp_path), Clock(), FakeBackup()
    services, _ = _services(store, clock, backup)
    first, second, third = _bars_of(3)
    services.after_bar(first)
    assert backup.urls == [store.url] and services.backups == ["/backups/1"]
    clock.advance(hours=23, minutes=59)
    services.after_bar(second)
    assert len(backup.urls) == 1  # within the interval
    clock.advance(minutes=1)
    services.after_bar(third)
    assert len(backup.urls) == 2 and services.backups == ["/backups/1", "/backups/2"]
    events = _kinds(store, "r", "backup")
    assert [e["message"] for e in events] == ["scheduled backup: /backups/1",
                                              "scheduled backup: /backups/2"]


def test_a_restart_does_not_back_up_again_within_the_interval(tmp_path):
    store, clock, backup = _file_store(tmp_path), Clock(), FakeBackup()
    services, _ = _services(store, clock, backup)
    assert services.maybe_backup() == "/backups/1"
    clock.advance(hours=1)
    # a new process on the same database: the newest "backup" event is the reference
    restarted, _ = _services(_file_store(tmp_path), clock, backup)
    assert restarted.maybe_backup() is None and len(backup.urls) == 1
    clock.advance(days=1)
    assert restarted.maybe_backup() == "/backups/2"
    # another run's backups do not count for this one
    other, _ = _services(_file_store(tmp_path), clock, backup, run_id="other")
    assert other.maybe_backup() == "/backups/3"


def test_the_progress_callback_runs_the_callers_callback_and_the_services(tmp_path):
    store, clock, backup = _file_store(tmp_path), Clock(), FakeBackup()
    services, _ = _services(store, clock, backup)
    seen = []
    callback = services.progress(lambda n, bar: seen.append((n, bar.time)))
    bar = _bars_of(1)[0]
    callback(7, bar)
    assert seen == [(7, bar.time)] and len(backup.urls) == 1
    services.progress(None)(8, bar)  # no caller callback: the services alone
    assert len(backup.urls) == 1


@pytest.mark.parametrize("error", [
    ConfigError("no state database at /x; nothing to back up."),
    OSError(28, "No space left on device"),
])
def test_a_failing_backup_is_an_error_and_a_warning_never_a_stop(tmp_path, error):
    store, clock, backup = _file_store(tmp_path), Clock(), FakeBackup(error)
    services, alerts = _services(store, clock, backup)
    services.after_bar(_bars_of(1)[0])  # must not raise
    errors = store.errors("r")
    assert [e["message"] for e in errors] == ["scheduled backup failed"]
    assert str(error.args[-1]) in errors[0]["detail"]
    if isinstance(error, OSError):
        assert errors[0]["detail"].startswith("OSError: ")
    warning = alerts.of("error")
    assert len(warning) == 1 and warning[0]["level"] == "warning"
    assert "scheduled backup failed" in warning[0]["title"] and "r" in warning[0]["title"]
    assert _kinds(store, "r", "backup") == [] and services.backups == []
    # retried after the interval, not at every bar
    clock.advance(hours=1)
    assert services.maybe_backup() is None and len(backup.urls) == 1
    clock.advance(days=1)
    backup.error = None
    assert services.maybe_backup() == "/backups/2"


def test_a_storage_error_of_the_backup_is_not_swallowed(tmp_path):
    store, clock = _file_store(tmp_path), Clock()
    services, alerts = _services(store, clock, FakeBackup(StorageError("disk is full")))
    with pytest.raises(StorageError, match="disk is full"):
        services.maybe_backup()
    assert store.errors("r") == [] and alerts.sent == []


def test_no_backups_when_off(tmp_path):
    store, clock, backup = _file_store(tmp_path), Clock(), FakeBackup()
    services, _ = _services(store, clock, backup, every=None)
    for bar in _bars_of(3):
        services.after_bar(bar)
        clock.advance(days=2)
    assert backup.urls == [] and _kinds(store, "r", "backup") == []


@pytest.mark.filterwarnings("ignore:Selection of the SingletonThreadPool")  # the URI form
@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:",
                                 "sqlite:///file:mem1?mode=memory&cache=shared&uri=true"])
def test_no_backups_of_a_store_without_a_file(url):
    store, clock, backup = Store(url), Clock(), FakeBackup()
    assert store.database_path() is None
    services, _ = _services(store, clock, backup)
    for bar in _bars_of(2):
        services.after_bar(bar)
        clock.advance(days=2)
    assert backup.urls == []


def test_database_path_of_a_file_store(tmp_path):
    assert _file_store(tmp_path, "x.sqlite").database_path() == tmp_path / "x.sqlite"


# -- real backups through fw paper ----------------------------------------------------------------
def test_fw_paper_backs_up_once_per_interval_and_not_again_on_resume(tmp_path):
    data = _write_csv(tmp_path / "data", "2015-01-02", "2015-03-31")  # 61 sessions
    _paper_cli(data, "bk", "--end", "2015-02-27", "--backup-every", "1d")
    root = fw_home() / "backups"
    folders = [p for p in root.iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1 and STAMP.match(folders[0].name)
    assert (folders[0] / "manifest.json").is_file() and (folders[0] / "state.sqlite").is_file()
    store = Store()
    events = _kinds(store, "bk", "backup")
    assert len(events) == 1 and str(folders[0]) in events[0]["message"]
    assert not (fw_home() / "reports").exists()  # a sim replay writes no reports by default
    # a resumed session with new bars: the newest backup is younger than 1d, so none
    _paper_cli(data, "bk", "--backup-every", "1d")
    assert len(list(root.iterdir())) == 1 and len(_kinds(store, "bk", "backup")) == 1
    assert store.run("bk")["last_bar"].startswith("2015-03-31")


@pytest.mark.parametrize("flags", [("--backup-every", "off"), ()])
def test_fw_paper_backup_every_off_takes_none(tmp_path, flags):
    """Off, and the default of a sim replay (reproducible from its data: backups are for live
    runs, whose state is not)."""
    data = _write_csv(tmp_path / "data", "2015-01-02", "2015-03-31")
    _paper_cli(data, "nobk", *flags)
    root = fw_home() / "backups"
    assert not root.exists() or not any(root.iterdir())
    store = Store()
    assert _kinds(store, "nobk", "backup") == [] and store.run("nobk")["status"] == "finished"


def test_fw_paper_refuses_a_bad_backup_interval(tmp_path):
    data = _write_csv(tmp_path / "data", "2015-01-02", "2015-01-30")
    out = _paper_cli(data, "badbk", "--backup-every", "1w", code=1).output
    assert "'1w'" in out and "Traceback" not in out


# -- replay reports ---------------------------------------------------------------------------------
class Reporter:
    """Records the reports asked for; ``fail`` names periods that raise."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, str, str, str]] = []
        self.fail = fail

    def __call__(self, db_url, run_id, period, today):
        self.calls.append((db_url, run_id, period, str(today)))
        if period in self.fail:
            raise RuntimeError(f"cannot render the {period} report")
        return f"/reports/{run_id}/{period}-{today}/report.html", f"{period} headline"


def _paper(tmp_path, run_id, reporter, monkeypatch, last="2015-04-01", **spec):
    data = _write_csv(tmp_path / "data", "2015-01-02", last)
    alerts = Alerts([])
    monkeypatch.setattr("live.command.make_alerter", lambda store, run: alerts)
    store = _file_store(tmp_path)
    run_paper(resolve_strategy("sma_cross", REGISTRY),
              PaperSpec(run_id=run_id, symbols=SYMBOLS, data_dir=data, sets=("fast=3", "slow=8"),
                        risk_off=True, backup_every="off", db=store.url, **spec),
              store, reporter=reporter)
    return store, alerts


# every Saturday closing a replayed week (the week of 2015-03-30 never completes), and the first
# day of each month the replay moved into
WEEKS = [str(d.date()) for d in pd.date_range("2015-01-03", "2015-03-28", freq="7D")]
MONTHS = ["2015-02-01", "2015-03-01", "2015-04-01"]


def test_a_replay_with_reports_asks_for_each_finished_week_and_month(tmp_path, monkeypatch):
    reporter = Reporter()
    store, alerts = _paper(tmp_path, "rep", reporter, monkeypatch, reports=True)
    assert {(url, run) for url, run, _, _ in reporter.calls} == {(store.url, "rep")}
    weekly = [today for _, _, period, today in reporter.calls if period == "weekly"]
    monthly = [today for _, _, period, today in reporter.calls if period == "monthly"]
    assert weekly == WEEKS and monthly == MONTHS
    events = _kinds(store, "rep", "report")
    assert len(events) == len(WEEKS) + len(MONTHS)
    assert "monthly report: /reports/rep/monthly-2015-02-01/report.html" in \
        [e["message"] for e in events]
    summaries = alerts.of("summary")
    assert len(summaries) == len(events) and all("headline" in a["body"] for a in summaries)
    assert store.errors("rep") == []


@pytest.mark.parametrize("reports", [None, False])
def test_a_replay_writes_no_reports_by_default_or_when_off(tmp_path, monkeypatch, reports):
    reporter = Reporter()
    store, _ = _paper(tmp_path, "norep", reporter, monkeypatch, last="2015-02-13",
                      reports=reports)
    assert reporter.calls == [] and _kinds(store, "norep", "report") == []
    assert store.run("norep")["status"] == "finished"


def test_a_failing_report_is_an_error_and_the_run_finishes(tmp_path, monkeypatch):
    reporter = Reporter(fail=("weekly",))
    store, _ = _paper(tmp_path, "badrep", reporter, monkeypatch, last="2015-02-13",
                      reports=True)
    errors = store.errors("badrep", limit=100)
    assert {e["message"] for e in errors} == {"weekly report failed"}
    assert len(errors) == 6  # the weeks ending 2015-01-03 ... 2015-02-07
    assert all(e["detail"] == "RuntimeError: cannot render the weekly report" for e in errors)
    # the monthly report of January is still written, and the replay ends normally
    assert [e["message"] for e in _kinds(store, "badrep", "report")] == \
        ["monthly report: /reports/badrep/monthly-2015-02-01/report.html"]
    run = store.run("badrep")
    assert run["status"] == "finished" and run["last_bar"].startswith("2015-02-13")


def test_a_resumed_replay_reports_the_period_that_ended_across_the_restart(tmp_path,
                                                                          monkeypatch):
    reporter = Reporter()
    store, _ = _paper(tmp_path, "resumed", reporter, monkeypatch, last="2015-03-13",
                      end="2015-02-27", reports=True)  # ends on a Friday, the last of February
    run_paper(resolve_strategy("sma_cross", REGISTRY),
              PaperSpec(run_id="resumed", symbols=SYMBOLS, data_dir=tmp_path / "data",
                        risk_off=True, backup_every="off", db=store.url, reports=True),
              store, reporter=reporter)
    asked = [(period, today) for _, _, period, today in reporter.calls]
    assert ("weekly", "2015-02-28") in asked and ("monthly", "2015-03-01") in asked


def test_fw_paper_reports_writes_the_weekly_and_monthly_report_files(tmp_path):
    # ten sessions across the end of January: the week of 2015-01-26 and January finish when
    # the bar of 2015-02-02 arrives (real reports take seconds each, hence the short replay)
    data = _write_csv(tmp_path / "data", "2015-01-26", "2015-02-06")
    _paper_cli(data, "cli-rep", "--reports", "--backup-every", "off")
    root = fw_home() / "reports" / "cli-rep"
    assert sorted(p.name for p in root.iterdir()) == ["monthly-2015-01-01", "weekly-2015-01-26"]
    for folder in root.iterdir():
        assert (folder / "report.html").is_file() and (folder / "report.md").is_file()
    messages = sorted(e["message"] for e in _kinds(Store(), "cli-rep", "report"))
    assert messages == [f"monthly report: {root / 'monthly-2015-01-01' / 'report.html'}",
                        f"weekly report: {root / 'weekly-2015-01-26' / 'report.html'}"]


def test_fw_paper_no_reports_writes_none(tmp_path):
    data = _write_csv(tmp_path / "data", "2015-01-26", "2015-02-06")
    _paper_cli(data, "cli-norep", "--no-reports", "--backup-every", "off")
    assert not (fw_home() / "reports").exists()
    assert _kinds(Store(), "cli-norep", "report") == []


# -- uptime wiring ----------------------------------------------------------------------------------
def test_store_spans_round_trip(tmp_path):
    store = _file_store(tmp_path)
    assert store.spans("u") == []
    first = store.open_span("u", "2024-07-09T14:00:00+00:00")
    store.extend_span(first, "2024-07-09T15:00:00+00:00")
    store.close_span(first, "2024-07-09T16:00:00+00:00", "stopped")
    second = store.open_span("u", "2024-07-09T17:00:00+00:00")
    store.open_span("other", "2024-07-09T17:00:00+00:00")
    assert second > first
    spans = _file_store(tmp_path).spans("u")  # what another process reads
    assert [(s["id"], s["started_at"], s["last_beat_at"], s["ended_at"], s["reason"])
            for s in spans] == [
        (first, "2024-07-09T14:00:00+00:00", "2024-07-09T16:00:00+00:00",
         "2024-07-09T16:00:00+00:00", "stopped"),
        (second, "2024-07-09T17:00:00+00:00", "2024-07-09T17:00:00+00:00", None, None)]


def test_runner_is_unhealthy_after_a_fault_halt_until_resumed(tmp_path):
    store = _file_store(tmp_path)
    runner, _ = session(store, ("S0", "S1"))
    play(runner, bars(30))
    assert runner.healthy() and runner.halted_by is None  # never halted
    runner.halt("stale_data", "no bar for 2 sessions; trading HALTED")
    assert runner.halted_by == "stale_data" and not runner.healthy()
    assert not runner.healthy()  # stays unhealthy while the kill switch is HALTED
    resume_run(store, "r1")  # what fw resume does
    assert runner.healthy() and runner.halted_by is None


def test_a_deliberate_halt_is_not_a_fault(tmp_path):
    store = _file_store(tmp_path)
    runner, _ = session(store, ("S0", "S1"))
    play(runner, bars(30))
    halt_run(store, "r1")  # fw halt
    assert store.run("r1")["kill_switch"] == "HALTED" and runner.healthy()


def _live_run_with_spans(store: Store, run_id: str = "live") -> None:
    store.create_run(run_id, "sma_cross", ["AAA"], {"broker": "alpaca"})
    one = store.open_span(run_id, "2024-07-09T14:00:00+00:00")
    store.extend_span(one, "2024-07-09T16:00:00+00:00")
    two = store.open_span(run_id, "2024-07-09T17:00:00+00:00")
    store.extend_span(two, "2024-07-09T20:00:00+00:00")


def test_run_uptime_of_a_live_run_in_market_hours():
    store = Store()
    _live_run_with_spans(store)
    got = run_uptime(store, "live", now=pd.Timestamp("2024-07-09 20:00", tz="UTC"))
    # 14:00-20:00 UTC is market time (the session is 13:30-20:00); 16:00-17:00 was down
    assert got["healthy_seconds"] == 5 * 3600 and got["market_seconds"] == 6 * 3600
    assert got["ratio"] == pytest.approx(5 / 6) and got["longest_gap_seconds"] == 3600
    assert got["start"].startswith("2024-07-09T14:00")
    # a clock before the first span does not make the window run backwards
    early = run_uptime(store, "live", now=pd.Timestamp("2024-07-09 12:00", tz="UTC"))
    assert early["market_seconds"] == 0 and early["ratio"] is None


def test_status_shows_uptime_only_for_runs_with_spans(tmp_path, monkeypatch):
    store, _ = _paper(tmp_path, "sim", Reporter(), monkeypatch, last="2015-01-30")
    assert run_status(store, "sim")["uptime"] is None
    _live_run_with_spans(store)
    uptime = run_status(store, "live")["uptime"]
    assert uptime["healthy_seconds"] == 5 * 3600 and 0.0 < uptime["ratio"] < 5 / 6
    payload = json.loads(_fw("status", "--db", store.url, "--run-id", "live", "--json").output)
    assert payload["uptime"]["healthy_seconds"] == 5 * 3600
    assert 0.0 < payload["uptime"]["ratio"] < 5 / 6 and payload["uptime"]["calendar"] == "XNYS"
    payload = json.loads(_fw("status", "--db", store.url, "--run-id", "sim", "--json").output)
    assert payload["uptime"] is None
