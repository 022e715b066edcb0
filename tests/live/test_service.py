"""The systemd service helpers (against a fake systemctl) and the health checks."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError, FwError
from live.clock import BarSchedule, session_state
from live.health import HealthServer, heartbeat_due, judge
from live.heartbeat import timer_units
from live.service import (
    ServiceError,
    ServiceSpec,
    heartbeat_unit_names,
    install,
    installed_units,
    parse_show,
    status,
    uninstall,
    unit_command,
    unit_text,
)

FW = ("/opt/fw venv/bin/fw",)  # a path with a space, as ExecStart must quote it

FAKE_SYSTEMCTL = """#!{python}
import json, os, sys
with open(os.environ["FAKE_SYSTEMCTL_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
fail = os.environ.get("FAKE_SYSTEMCTL_FAIL")
if fail and fail in sys.argv[1:]:
    sys.stderr.write(os.environ.get("FAKE_SYSTEMCTL_STDERR", "boom") + "\\n")
    sys.exit(1)
if "show" in sys.argv[1:]:
    unit = sys.argv[sys.argv.index("show") + 1]
    name = "FAKE_SYSTEMCTL_SHOW"
    if unit.endswith(".timer"):
        name = "FAKE_SYSTEMCTL_SHOW_TIMER"
    elif "-heartbeat." in unit:
        name = "FAKE_SYSTEMCTL_SHOW_CHECK"
    sys.stdout.write(open(os.environ.get(name) or os.environ["FAKE_SYSTEMCTL_SHOW"]).read())
"""

RUNNING = """LoadState=loaded
ActiveState=active
SubState=running
MainPID=4242
ExecMainStartTimestamp=Tue 2024-01-09 14:00:00 UTC
NRestarts=3
Result=success
"""

TIMER_WAITING = """LoadState=loaded
ActiveState=active
SubState=waiting
LastTriggerUSec=Tue 2024-01-09 15:20:00 UTC
"""
CHECK_SILENT = """Result=exit-code
ExecMainStatus=1
ExecMainExitTimestamp=Tue 2024-01-09 15:20:01 UTC
"""
UNIT = "fw-paper-sma_cross.service"
CHECK, TIMER = "fw-paper-sma_cross-heartbeat.service", "fw-paper-sma_cross-heartbeat.timer"


class FakeSystemctl:
    """A ``systemctl`` first on PATH that records its arguments and prints canned output."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "systemctl.log"
        self.show = root / "show.txt"
        self.show.write_text(RUNNING)
        self.show_timer = root / "show-timer.txt"
        self.show_timer.write_text(TIMER_WAITING)
        self.show_check = root / "show-check.txt"
        self.show_check.write_text(CHECK_SILENT)
        script = self.bin / "systemctl"
        script.write_text(FAKE_SYSTEMCTL.format(python=sys.executable))
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}")
        monkeypatch.setenv("FAKE_SYSTEMCTL_LOG", str(self.log))
        monkeypatch.setenv("FAKE_SYSTEMCTL_SHOW", str(self.show))
        monkeypatch.setenv("FAKE_SYSTEMCTL_SHOW_TIMER", str(self.show_timer))
        monkeypatch.setenv("FAKE_SYSTEMCTL_SHOW_CHECK", str(self.show_check))
        # never reach the real systemd: the fake must be the one found
        assert shutil.which("systemctl") == str(script)

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@pytest.fixture
def fake(tmp_path, monkeypatch) -> FakeSystemctl:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("FW_HOME", str(tmp_path / "fw home"))
    return FakeSystemctl(tmp_path, monkeypatch)


def _spec(**kw) -> ServiceSpec:
    base = dict(strategy="sma_cross", args=("--broker", "alpaca", "--symbols", "SPY"),
                fw_command=FW, fw_home=Path("/srv/fw home"))
    return ServiceSpec(**{**base, **kw})


def _lines(text: str) -> list[str]:
    return text.splitlines()


def _exec_words(text: str) -> list[str]:
    line = next(x for x in _lines(text) if x.startswith("ExecStart="))
    raw = line.removeprefix("ExecStart=")
    # systemd's %% and $$ escapes, then its quoting, which shlex reads the same way
    return shlex.split(raw.replace("%%", "%").replace("$$", "$"))


# -- the unit ---------------------------------------------------------------------------------
def test_user_unit_has_restart_graceful_stop_and_environment():
    text = unit_text(_spec(env_file=Path("/etc/fw/my keys.env")))
    lines = _lines(text)
    for expected in ("[Unit]", "After=network-online.target", "Wants=network-online.target",
                     "[Service]", "Restart=on-failure", "RestartSec=30", "TimeoutStopSec=120",
                     "KillSignal=SIGTERM", "EnvironmentFile=-/etc/fw/my keys.env",
                     'Environment="FW_HOME=/srv/fw home"', "WorkingDirectory=/srv/fw home",
                     "[Install]", "WantedBy=default.target"):
        assert expected in lines, expected
    assert not any(x.startswith("User=") for x in lines)
    assert text.endswith("\n")


def test_exec_start_quotes_spaces_and_round_trips():
    spec = _spec(args=("--data-dir", "/data/my bars", "--set", 'label=a "b" 5%', "--set",
                       "x=$HOME\\y"))
    words = _exec_words(unit_text(spec))
    assert words == list(spec.command)
    assert words[:3] == ["/opt/fw venv/bin/fw", "paper", "sma_cross"]
    # the run id is fixed so a restart resumes the same run
    assert words[-2:] == ["--run-id", "fw-paper-sma_cross"]
    line = next(x for x in _lines(unit_text(spec)) if x.startswith("ExecStart="))
    assert "5%%" in line and "$$HOME" in line  # no systemd specifier/variable expansion


def test_percent_and_dollar_stay_literal_outside_exec_start():
    lines = _lines(unit_text(_spec(strategy="x%n", fw_home=Path("/srv/$fw 5%"))))
    assert "Description=fw paper trading: x%%n (fw-paper-x-n.service)" in lines
    assert "WorkingDirectory=/srv/$fw 5%%" in lines
    assert 'Environment="FW_HOME=/srv/$fw 5%%"' in lines  # Environment= expands no $VARIABLES
    assert "EnvironmentFile=-/srv/$fw 5%%/.env" in lines


def test_default_env_file_is_fw_home_dotenv_and_default_fw_command(monkeypatch, tmp_path):
    monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
    spec = ServiceSpec("sma_cross")
    assert spec.env_path == tmp_path / "home" / ".env"
    assert f"EnvironmentFile=-{tmp_path / 'home' / '.env'}" in _lines(unit_text(spec))
    assert Path(spec.command[0]).is_absolute()
    assert "paper" in spec.command


def test_system_unit_runs_as_user_and_wants_multi_user():
    lines = _lines(unit_text(_spec(scope="system", user="trader")))
    assert "User=trader" in lines
    assert "WantedBy=multi-user.target" in lines
    assert "WantedBy=default.target" not in lines


def test_explicit_run_id_and_name():
    spec = _spec(name="spy-live", args=("--run-id", "r7"))
    assert spec.unit_name == "spy-live.service"
    assert spec.command.count("--run-id") == 1 and spec.command[-1] == "r7"
    assert _spec(strategy="my/strats.py:Fancy").unit_name == "fw-paper-my-strats.py-Fancy.service"


@pytest.mark.parametrize("kw, fragment", [
    (dict(scope="global"), "'global'"),
    (dict(name="bad name"), "'bad name.service'"),
    (dict(args=("--symbols", "SPY\nExecStartPre=/bin/rm")), "newline"),
    (dict(strategy="--broker"), "'--broker'"),
    (dict(args="--broker alpaca"), "tuple of words"),
])
def test_spec_rejects_bad_values(kw, fragment):
    with pytest.raises(ConfigError, match=None) as info:
        _spec(**kw)
    assert fragment in str(info.value)


# -- install / status / uninstall against the fake systemctl ------------------------------------
def test_install_writes_unit_and_enables_it(fake, tmp_path):
    spec = _spec()
    result = install(spec)
    path = tmp_path / "config" / "systemd" / "user" / "fw-paper-sma_cross.service"
    assert result.ran and result.unit_path == path
    assert path.read_text() == unit_text(spec)
    # the heartbeat check and its timer beside it, and only the timer enabled
    for name, text in timer_units(spec).items():
        assert (path.parent / name).read_text() == text
    assert [p for p, _ in result.companions] == [path.parent / CHECK, path.parent / TIMER]
    assert fake.calls() == [["--user", "daemon-reload"], ["--user", "enable", "--now", UNIT],
                            ["--user", "enable", "--now", TIMER]]
    assert any("enable-linger" in n for n in result.notes)
    assert any(f"journalctl --user -u {CHECK}" in n for n in result.notes)
    assert f"heartbeat unit {TIMER}: {path.parent / TIMER}" in result.lines()


def test_install_system_scope_has_no_user_flag(fake, tmp_path):
    result = install(_spec(scope="system", user="trader"), directory=tmp_path / "etc")
    assert (tmp_path / "etc" / "fw-paper-sma_cross.service").exists()
    assert (tmp_path / "etc" / TIMER).exists() and (tmp_path / "etc" / CHECK).exists()
    assert "User=trader" in _lines((tmp_path / "etc" / CHECK).read_text())
    assert fake.calls() == [["daemon-reload"], ["enable", "--now", UNIT],
                            ["enable", "--now", TIMER]]
    assert not any("linger" in n for n in result.notes)


def test_install_refuses_a_different_unit_unless_forced(fake):
    first = install(_spec())
    before = first.unit_path.read_text()
    install(_spec())  # the same unit again: fine, idempotent
    changed = _spec(args=("--broker", "alpaca", "--symbols", "QQQ"))
    with pytest.raises(ServiceError, match="--force") as info:
        install(changed)
    assert "QQQ" in str(info.value)  # the diff shows what would change
    assert first.unit_path.read_text() == before
    n_calls = len(fake.calls())
    result = install(changed, force=True)
    assert "QQQ" in result.unit_path.read_text()
    assert fake.calls()[n_calls:][-1] == ["--user", "try-restart", "fw-paper-sma_cross.service"]
    # a new check period rewrites the timer without --force and restarts it
    n_calls = len(fake.calls())
    install(changed, heartbeat_every=60)
    assert "OnUnitInactiveSec=60s" in _lines((first.unit_path.parent / TIMER).read_text())
    assert fake.calls()[n_calls:][-1] == ["--user", "try-restart", TIMER]


def test_dry_run_writes_and_runs_nothing(fake, tmp_path):
    result = install(_spec(), dry_run=True)
    assert not result.ran and not result.unit_path.exists()
    assert fake.calls() == []
    assert result.unit_text == unit_text(_spec())
    assert dict((p.name, t) for p, t in result.companions) == timer_units(_spec())
    assert not any(p.exists() for p, _ in result.companions)
    assert [c[1:] for c in result.commands] == [
        ("--user", "daemon-reload"), ("--user", "enable", "--now", UNIT),
        ("--user", "enable", "--now", TIMER)]
    assert any(line.startswith("would run: systemctl --user enable") for line in result.lines())
    gone = uninstall("fw-paper-sma_cross", dry_run=True)
    assert gone.ran is False and [c[1:] for c in gone.commands] == [
        ("--user", "disable", "--now", TIMER), ("--user", "disable", "--now", UNIT),
        ("--user", "daemon-reload")]
    assert fake.calls() == []


def test_missing_systemctl_gives_the_unit_and_manual_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ServiceError) as info:
        install(_spec())
    message = str(info.value)
    assert "not found on PATH" in message
    assert "ExecStart=" in message and "systemctl --user enable --now" in message
    assert info.value.unit_text == unit_text(_spec())
    assert "OnUnitInactiveSec=300s" in message  # the timer is in the message too
    assert info.value.manual_steps[-2:] == (f"systemctl --user enable --now {UNIT}",
                                            f"systemctl --user enable --now {TIMER}")
    assert not (tmp_path / "config").exists()
    with pytest.raises(ServiceError, match="not found"):
        status("fw-paper-sma_cross")


@pytest.mark.parametrize("stderr, hint", [
    ("Failed to connect to bus: No medium found", "enable-linger"),
    ("Failed to enable unit: Access denied", "root"),
])
def test_systemctl_failure_is_explained(fake, monkeypatch, stderr, hint):
    monkeypatch.setenv("FAKE_SYSTEMCTL_FAIL", "daemon-reload")
    monkeypatch.setenv("FAKE_SYSTEMCTL_STDERR", stderr)
    with pytest.raises(ServiceError) as info:
        install(_spec())
    assert stderr in str(info.value) and hint in str(info.value)
    assert "exit 1" in str(info.value)


def test_status_parses_show_and_adds_the_run(fake):
    install(_spec())
    got = status("fw-paper-sma_cross", run_status_json=lambda: {"run_id": "r", "bars": 5})
    shows = fake.calls()[-3:]
    assert [c[:3] for c in shows] == [["--user", "show", UNIT], ["--user", "show", TIMER],
                                      ["--user", "show", CHECK]]
    assert shows[0][3].startswith("--property=") and "NRestarts" in shows[0][3]
    assert "LastTriggerUSec" in shows[1][3]
    assert got["heartbeat"] == {
        "timer": TIMER, "installed": True, "load_state": "loaded", "active_state": "active",
        "sub_state": "waiting", "last_trigger": "Tue 2024-01-09 15:20:00 UTC",
        "last_result": "exit-code", "last_exit_status": 1,
        "last_check_at": "Tue 2024-01-09 15:20:01 UTC"}
    assert got["installed"] is True
    assert (got["active_state"], got["sub_state"], got["main_pid"]) == ("active", "running", 4242)
    assert got["restarts"] == 3 and got["result"] == "success"
    assert got["started_at"] == "Tue 2024-01-09 14:00:00 UTC"
    assert got["run"] == {"run_id": "r", "bars": 5} and got["run_error"] is None


def test_status_of_a_stopped_unit_and_a_run_that_is_missing(fake):
    fake.show.write_text("LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\n"
                         "ExecMainStartTimestamp=\nNRestarts=0\nResult=success\n")

    def no_run():
        raise ConfigError("no paper runs in sqlite:///x")

    fake.show_timer.write_text("LoadState=not-found\nActiveState=inactive\nSubState=dead\n"
                               "LastTriggerUSec=n/a\n")
    fake.show_check.write_text("Result=success\nExecMainStatus=0\nExecMainExitTimestamp=\n")
    got = status("fw-paper-x.service", scope="system", run_status_json=no_run)
    assert fake.calls()[-1][0] == "show"  # no --user for the system scope
    beat = got["heartbeat"]
    assert beat["installed"] is False and beat["last_trigger"] is None
    assert beat["last_check_at"] is None and beat["last_exit_status"] == 0
    assert got["main_pid"] is None and got["started_at"] is None and got["restarts"] == 0
    assert got["installed"] is False and got["load_state"] == "not-found"
    assert got["run"] is None and "no paper runs" in got["run_error"]


def test_uninstall_stops_removes_and_reloads(fake):
    path = install(_spec()).unit_path
    folder = path.parent
    assert sorted(p.name for p in folder.iterdir()) == sorted([UNIT, CHECK, TIMER])
    result = uninstall("fw-paper-sma_cross")
    assert result.ran and list(folder.iterdir()) == []  # all three files are gone
    # the timer stops first: no check runs against a runner that is stopping
    assert fake.calls()[-3:] == [["--user", "disable", "--now", TIMER],
                                 ["--user", "disable", "--now", UNIT],
                                 ["--user", "daemon-reload"]]
    with pytest.raises(ServiceError, match="nothing to uninstall"):
        uninstall("fw-paper-sma_cross")


def test_uninstall_of_a_unit_installed_before_the_heartbeat(fake, tmp_path):
    folder = tmp_path / "config" / "systemd" / "user"
    folder.mkdir(parents=True)
    (folder / UNIT).write_text(unit_text(_spec()))
    result = uninstall("fw-paper-sma_cross")
    assert result.ran and not (folder / UNIT).exists() and result.companions == ()
    assert fake.calls() == [["--user", "disable", "--now", UNIT], ["--user", "daemon-reload"]]


def test_main_unit_does_not_restart_when_storage_fails():
    lines = _lines(unit_text(_spec()))
    assert "RestartPreventExitStatus=74" in lines
    at = lines.index("RestartPreventExitStatus=74")
    comment = " ".join(x for x in lines[at - 3:at] if x.startswith("#"))
    assert "disk full" in comment
    assert "systemctl --user restart fw-paper-sma_cross.service" in comment
    assert heartbeat_unit_names("spy") == ("spy-heartbeat.service", "spy-heartbeat.timer")


def test_installed_units_and_their_command(fake):
    spec = _spec(args=("--set", 'label=a "b" 5%', "--db", "sqlite:////srv/$x.sqlite"))
    install(spec)
    install(_spec(name="fw-other"))
    # the heartbeat checks beside them are not services of their own
    assert installed_units() == ["fw-other.service", "fw-paper-sma_cross.service"]
    assert unit_command("fw-paper-sma_cross") == list(spec.command)
    assert unit_command("fw-missing") is None


def test_parse_show_ignores_noise():
    assert parse_show("A=1\nnoise\nB=x=y\n\n") == {"A": "1", "B": "x=y"}


# -- heartbeat --------------------------------------------------------------------------------
T = pd.Timestamp  # all times below are UTC; January is EST (open 14:30Z, close 21:00Z)


@pytest.mark.parametrize("last, now, interval, grace, due", [
    # market open, 1-minute bars: due only once a bar is older than the grace
    ("2024-01-09 15:00Z", "2024-01-09 15:00:20Z", 60, 30, False),
    ("2024-01-09 15:00Z", "2024-01-09 15:01:29Z", 60, 30, False),
    ("2024-01-09 15:00Z", "2024-01-09 15:01:31Z", 60, 30, True),
    ("2024-01-09 15:00Z", "2024-01-09 18:00Z", "1Min", 30, True),
    # evening and weekend: the market is closed, never due
    ("2024-01-09 15:00Z", "2024-01-10 02:00Z", 60, 30, False),
    ("2024-01-12 21:00Z", "2024-01-13 16:00Z", 60, 30, False),
    ("2024-01-12 15:00Z", "2024-01-14 16:00Z", 60, 30, False),
    # Monday 2024-01-15 is a holiday; Tuesday's first bar closes 14:31Z
    ("2024-01-12 21:00Z", "2024-01-15 16:00Z", 60, 30, False),
    ("2024-01-12 21:00Z", "2024-01-16 14:31:10Z", 60, 30, False),
    ("2024-01-12 21:00Z", "2024-01-16 14:32:01Z", 60, 30, True),
    # hourly bars close at :30 (and at 21:00Z)
    ("2024-01-09 15:30Z", "2024-01-09 16:29Z", 3600, 120, False),
    ("2024-01-09 15:30Z", "2024-01-09 16:33Z", 3600, 120, True),
    # daily bars: the previous close is all that is expected during a session
    ("2024-01-08 21:00Z", "2024-01-09 20:00Z", 86400, 600, False),
    ("2024-01-08 21:00Z", "2024-01-10 15:00Z", 86400, 600, True),
    # half day 2024-11-29: closes 18:00Z; afterwards closed, and the early close is a bar
    ("2024-11-29 17:00Z", "2024-11-29 17:59Z", 60, 30, True),
    ("2024-11-29 18:00Z", "2024-11-29 18:30Z", 60, 30, False),
    ("2024-11-27 21:00Z", "2024-12-02 15:00Z", "1Day", 600, True),
    ("2024-11-29 18:00Z", "2024-12-02 15:00Z", "1Day", 600, False),
    # nothing processed yet: due while the market is open
    (None, "2024-01-09 15:00Z", 60, 30, True),
    (None, "2024-01-13 15:00Z", 60, 30, False),
])
def test_heartbeat_due_scenarios(last, now, interval, grace, due):
    assert heartbeat_due(None if last is None else T(last), T(now), interval, grace) is due


@pytest.mark.parametrize("args, fragment", [
    (("2024-01-09 15:00Z", "2024-01-09 16:00Z", 120, 30), "120"),
    (("2024-01-09 15:00Z", "2024-01-09 16:00Z", 60, -1), "-1"),
    (("2024-01-09 15:00", "2024-01-09 16:00Z", 60, 30), "time zone"),
    (("2024-01-09 15:00Z", "soon", 60, 30), "'soon'"),
])
def test_heartbeat_rejects_bad_input(args, fragment):
    with pytest.raises(ConfigError) as info:
        heartbeat_due(*args)
    assert fragment in str(info.value)


@settings(max_examples=60, deadline=None)
@given(minutes=st.integers(0, 366 * 24 * 60), interval=st.sampled_from(["1Min", "15Min", "1Day"]),
       grace=st.integers(0, 900))
def test_heartbeat_invariants(minutes, interval, grace):
    now = T("2024-01-01 00:00Z") + pd.Timedelta(minutes=minutes, seconds=7)
    schedule = BarSchedule(interval)
    latest = schedule.closes_between(now - pd.Timedelta(days=10), now)[-1]
    # never due with the market closed; never due when the latest bar was processed
    if session_state(now) == "closed":
        assert not heartbeat_due(None, now, interval, grace)
    assert not heartbeat_due(latest, now, interval, grace)
    # an older last bar can only make it more overdue
    if heartbeat_due(latest - pd.Timedelta(hours=1), now, interval, grace):
        assert heartbeat_due(latest - pd.Timedelta(days=3), now, interval, grace)


# -- health -----------------------------------------------------------------------------------
NOW = T("2024-01-09 15:00:10Z")


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _server(state: dict, **kw) -> HealthServer:
    return HealthServer(lambda: state, clock=lambda: NOW, **kw)


def test_health_ok_and_status_over_http():
    state = {"run_id": "r1", "kill_switch": "ACTIVE", "last_bar": "2024-01-09 15:00:00+00:00"}
    with _server(state, max_lag_seconds=60) as server:
        assert server.url.startswith("http://127.0.0.1:")
        code, body = _get(server.url + "/health")
        assert code == 200 and body["ok"] is True and body["reasons"] == []
        assert body["run_id"] == "r1" and body["lag_seconds"] == pytest.approx(10)
        assert _get(server.url + "/status")[0] == 200
        code, body = _get(server.url + "/metrics")
        assert code == 404 and "/health" in body["error"]


def test_health_503_when_halted_or_lagging_but_status_still_answers():
    state = {"kill_switch": "HALTED", "last_bar": "2024-01-09 14:00:00+00:00"}
    with _server(state, max_lag_seconds=600) as server:
        code, body = _get(server.url + "/health")
        assert code == 503 and body["ok"] is False
        assert any("HALTED" in r for r in body["reasons"])
        assert any("3610 s ago" in r for r in body["reasons"])
        code, body = _get(server.url + "/status")
        assert code == 200 and body["kill_switch"] == "HALTED" and body["ok"] is False


def test_health_without_a_lag_threshold_only_judges_the_kill_switch():
    state = {"kill_switch": "ACTIVE", "last_bar": "2023-01-01 00:00:00+00:00"}
    with _server(state) as server:
        assert _get(server.url + "/health")[0] == 200


def test_health_503_when_the_status_cannot_be_read():
    def broken():
        raise FwError("database is locked")

    with HealthServer(broken) as server:
        for path in ("/health", "/status"):
            code, body = _get(server.url + path)
            assert code == 503 and "database is locked" in body["reasons"][0]


def test_health_with_interval_forgives_weekends():
    state = {"kill_switch": "ACTIVE", "last_bar": "2024-01-12 21:00:00+00:00"}  # Friday close
    saturday = T("2024-01-13 16:00Z")
    plain = judge(state, max_lag_seconds=120, now=saturday)
    market = judge(state, max_lag_seconds=120, interval="1Min", now=saturday)
    assert plain[0] is False and market == (True, [], pytest.approx(19 * 3600))
    tuesday = T("2024-01-16 14:40Z")
    ok, reasons, _ = judge(state, max_lag_seconds=120, interval=60, now=tuesday)
    assert not ok and "overdue" in reasons[0]


def test_health_binds_loopback_only_unless_told():
    with pytest.raises(ConfigError, match="0.0.0.0"):
        HealthServer(dict, host="0.0.0.0")
    server = HealthServer(dict, host="0.0.0.0", allow_remote=True)  # allowed; not started
    with pytest.raises(ServiceError, match="start"):
        _ = server.url
    with pytest.raises(ConfigError, match="70000"):
        HealthServer(dict, port=70000)


def test_health_stop_frees_the_port():
    server = _server({"kill_switch": "ACTIVE"}).start()
    url = server.url
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/health", timeout=2)


# -- the real systemd parser -------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed (Debian package systemd)")
@pytest.mark.parametrize("scope", ["user", "system"])
def test_units_pass_systemd_analyze_verify(tmp_path, scope):
    """systemd's own parser reads the main unit and the heartbeat pair without a warning:
    unknown keys or bad values are only warnings (exit 0), so stderr must be empty too."""
    import getpass
    import subprocess

    env = tmp_path / "fw.env"
    env.write_text("APCA_API_KEY_ID=x\n")
    spec = ServiceSpec("sma_cross", args=("--broker", "alpaca", "--symbols", "SPY"),
                       run_id="spy-live", scope=scope, env_file=env, fw_home=tmp_path / "home",
                       user=getpass.getuser() if scope == "system" else None)
    (tmp_path / "home").mkdir()
    files = {spec.unit_name: unit_text(spec), **timer_units(spec)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    paths = [str(tmp_path / name) for name in files]
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", *paths],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr

    # and it is a real check: a bad value is reported
    bad = tmp_path / f"bad-{spec.unit_name}"
    bad.write_text(unit_text(spec).replace("Restart=on-failure", "Restart=sometimes"))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                          capture_output=True, text=True, timeout=60)
    assert "sometimes" in done.stderr
