"""The heartbeat check of unattended paper runs: silence, repeats, recovery, idle times, the CLI
and the systemd timer units. Times are UTC; January is EST (open 14:30Z, close 21:00Z)."""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError, StorageError
from framework.secrets import Secrets
from framework.types import FIELDS
from live.alerts import Alerter, AlertSpec
from live.health import default_grace
from live.heartbeat import (
    HeartbeatSpec,
    check_heartbeat,
    heartbeat_command,
    last_memo,
    timer_units,
)
from live.service import ServiceSpec
from live.state import Store
from tests.live.webhook import Receiver

T = pd.Timestamp
RUN = "hb1"


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'hb.sqlite'}"


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


class Recorder:
    """An alerter that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, str]] = []

    def send(self, kind: str, title: str, body: str, level: str = "info") -> None:
        self.sent.append((kind, title, body, level))


def _new_run(url: str, run_id: str = RUN, **config) -> None:
    store = Store(url)
    store.create_run(run_id, "sma_cross", ["SPY"],
                     {"broker": "alpaca", "interval": "1Min", **config})
    store.close()


def _bar(url: str, when: str, run_id: str = RUN) -> None:
    """Store and commit one bar the way the runner does (save_bar, then commit_bar sets
    last_bar)."""
    store = Store(url)
    label = T(when).isoformat()
    store.save_bar(run_id, label, ["SPY"], {f: np.array([100.0]) for f in FIELDS})
    store.commit_bar(run_id, label, [], {}, None, None)
    store.close()


def _check(url: str, now: str, alerter, run_id: str = RUN, **spec):
    """One check in a fresh Store, as the timer's fresh process does."""
    store = Store(url)
    try:
        return check_heartbeat(store, run_id, T(now), alerter, HeartbeatSpec(**spec))
    finally:
        store.close()


def _heartbeat_events(url: str, run_id: str = RUN) -> list[dict]:
    store = Store(url)
    try:
        return [e for e in store.events(run_id, limit=1000) if e["kind"] == "heartbeat"]
    finally:
        store.close()


def _delivered(receiver: Receiver, alerter: Alerter, path: str = "hb") -> list[dict]:
    assert alerter.flush(10)
    return receiver.at(path)


# -- the check --------------------------------------------------------------------------------
def test_fresh_bar_in_market_hours_is_ok(url):
    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")
    sink = Recorder()
    result = _check(url, "2024-01-09 15:00:30Z", sink)
    assert (result.status, result.alerted, result.exit_code) == ("ok", False, 0)
    assert result.lag_seconds == pytest.approx(30.0)
    assert result.last_bar == "2024-01-09T15:00:00+00:00"
    # within the default grace (663 s for 1Min) a late bar is still fine
    assert _check(url, "2024-01-09 15:12:00Z", sink).status == "ok"
    assert sink.sent == [] and _heartbeat_events(url) == []


def test_silence_alerts_once_repeats_after_realert_and_recovers_once(url, receiver):
    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")
    alerter = Alerter(AlertSpec(urls=(receiver.url("json", "hb"),), timeout=5), secrets=Secrets())
    try:
        first = _check(url, "2024-01-09 15:20Z", alerter, unit="fw-paper-x.service")
        assert (first.status, first.alerted, first.exit_code) == ("silent", True, 1)
        assert first.lag_seconds == pytest.approx(1200.0)
        posts = _delivered(receiver, alerter)
        assert len(posts) == 1
        assert posts[0]["title"] == f"{RUN}: no bar since 2024-01-09 15:00Z"
        body = posts[0]["message"]
        assert "since 2024-01-09T15:00:00+00:00" in body and "20 min ago" in body
        for hint in ("fw service status --name fw-paper-x.service",
                     f"fw logs errors --run-id {RUN}", "journalctl --user -u fw-paper-x.service"):
            assert hint in body
        assert posts[0]["type"] == "warning"

        # five minutes later: still silent, nothing sent, nothing recorded
        again = _check(url, "2024-01-09 15:25Z", alerter)
        assert (again.status, again.alerted, again.exit_code) == ("silent", False, 1)
        assert "next alert after 2024-01-09T16:20:00+00:00" in again.message
        assert len(_delivered(receiver, alerter)) == 1
        assert len(_heartbeat_events(url)) == 1

        # after realert_seconds (3600) the alert repeats
        third = _check(url, "2024-01-09 16:20Z", alerter)
        assert third.alerted and third.status == "silent"
        posts = _delivered(receiver, alerter)
        assert len(posts) == 2 and posts[1]["title"].endswith("(still silent)")
        assert "first alert 2024-01-09T15:20:00+00:00" in posts[1]["message"]

        # bars resume: one recovery alert (info), then quiet
        _bar(url, "2024-01-09 16:24Z")
        back = _check(url, "2024-01-09 16:25Z", alerter)
        assert (back.status, back.alerted, back.exit_code) == ("recovered", True, 0)
        posts = _delivered(receiver, alerter)
        assert len(posts) == 3
        assert posts[2]["title"] == f"{RUN}: bars resumed" and posts[2]["type"] == "info"
        assert "2024-01-09T16:24:00+00:00" in posts[2]["message"]
        assert _check(url, "2024-01-09 16:30Z", alerter).status == "ok"
        assert len(_delivered(receiver, alerter)) == 3
    finally:
        alerter.close()
    kinds = [json.loads(e["message"][e["message"].rindex(" {") + 1:])["heartbeat"]
             for e in _heartbeat_events(url)]
    assert kinds == ["silent", "silent", "recovered"]


@pytest.mark.parametrize("now, why", [
    ("2024-01-13 16:00Z", "closed"),  # Saturday
    ("2024-01-15 16:00Z", "closed"),  # Martin Luther King Jr. Day, a holiday
    ("2024-01-10 02:00Z", "closed"),  # overnight
    ("2024-01-09 14:00Z", "closed"),  # before the open
])
def test_weekend_holiday_and_night_are_idle(url, now, why):
    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")  # long before: it would be silent in market hours
    sink = Recorder()
    result = _check(url, now, sink)
    assert (result.status, result.alerted, result.exit_code) == ("idle", False, 0)
    assert why in result.message
    assert sink.sent == [] and _heartbeat_events(url) == []


def test_an_open_silence_waits_through_the_night_and_repeats_next_morning(url):
    _new_run(url)
    _bar(url, "2024-01-09 20:30Z")
    sink = Recorder()
    assert _check(url, "2024-01-09 20:50Z", sink).alerted
    assert _check(url, "2024-01-10 02:00Z", sink).status == "idle"
    # Wednesday's open: Tuesday's last bars are still missing, and the last alert is old
    morning = _check(url, "2024-01-10 14:35Z", sink)
    assert morning.status == "silent" and morning.alerted
    assert len(sink.sent) == 2 and sink.sent[1][1].endswith("(still silent)")


def test_finished_stopped_and_replay_runs_are_idle(url):
    _new_run(url)
    _new_run(url, "sim1", broker="sim")
    _bar(url, "2024-01-09 15:00Z")
    _bar(url, "2024-01-09 15:00Z", run_id="sim1")
    store = Store(url)
    store.update_run(RUN, status="finished")
    store.close()
    sink = Recorder()
    done = _check(url, "2024-01-09 18:00Z", sink)
    assert done.status == "idle" and "finished" in done.message
    replay = _check(url, "2024-01-09 18:00Z", sink, run_id="sim1")
    assert replay.status == "idle" and "sim" in replay.message
    assert sink.sent == []


def test_a_halted_run_still_records_bars_so_it_is_checked(url):
    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")
    store = Store(url)
    store.update_run(RUN, kill_switch="HALTED")
    store.close()
    sink = Recorder()
    result = _check(url, "2024-01-09 16:00Z", sink)
    assert result.status == "silent" and "kill switch HALTED" in sink.sent[0][2]


def test_grace_and_interval_come_from_the_spec_and_the_run(url):
    _new_run(url, interval="1Hour")
    _bar(url, "2024-01-09 15:30Z")  # hourly bars close at :30
    sink = Recorder()
    assert _check(url, "2024-01-09 16:40Z", sink).status == "ok"  # 16:30 + 780 s not yet
    assert _check(url, "2024-01-09 16:40Z", sink, grace_seconds=300).status == "silent"
    assert default_grace("1Min") == 663.0 and default_grace("1Day") == 780.0


def test_recovery_is_reported_even_when_the_market_has_closed(url):
    _new_run(url)
    _bar(url, "2024-01-09 20:00Z")
    sink = Recorder()
    assert _check(url, "2024-01-09 20:30Z", sink).alerted
    _bar(url, "2024-01-09 21:00Z")
    assert _check(url, "2024-01-09 21:10Z", sink).status == "recovered"
    assert _check(url, "2024-01-09 21:15Z", sink).status == "idle"
    assert [s[3] for s in sink.sent] == ["warning", "info"]


def test_an_unrecordable_alert_is_still_sent_and_says_why(url):
    class FullDisk(Store):
        def event(self, run_id, kind, message):
            raise StorageError("the state database cannot be written: disk full")

    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")
    sink = Recorder()
    store = FullDisk(url)
    result = check_heartbeat(store, RUN, T("2024-01-09 15:30Z"), sink)
    store.close()
    assert result.alerted and "could not record" in result.message
    assert "disk full" in sink.sent[0][2] and "repeats at every check" in sink.sent[0][2]


def test_an_unreadable_memory_counts_as_none(url):
    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")
    store = Store(url)
    store.event(RUN, "heartbeat", "edited by hand {not json")
    assert last_memo(store, RUN) is None
    store.close()
    sink = Recorder()
    assert _check(url, "2024-01-09 15:30Z", sink).alerted


@pytest.mark.parametrize("kw, fragment", [
    (dict(grace_seconds=-1), "-1"),
    (dict(realert_seconds=float("nan")), "nan"),
    (dict(scope="global"), "'global'"),
])
def test_spec_rejects_bad_values(kw, fragment):
    with pytest.raises(ConfigError) as info:
        HeartbeatSpec(**kw)
    assert fragment in str(info.value)


def test_unknown_run_and_naive_time_are_explained(url):
    _new_run(url)
    with pytest.raises(ConfigError, match="'nope'.*hb1"):
        _check(url, "2024-01-09 15:00Z", Recorder(), run_id="nope")
    store = Store(url)
    with pytest.raises(ConfigError, match="time zone"):
        check_heartbeat(store, RUN, "2024-01-09 15:00", Recorder())
    store.close()


@settings(max_examples=25, deadline=None)
@given(gaps=st.lists(st.integers(60, 1800), min_size=1, max_size=12),
       realert=st.sampled_from([0, 600, 3600]))
def test_alerts_follow_the_realert_rule(gaps, realert):
    """In one long silence: the first check alerts, later ones only once realert_seconds have
    passed since the previous alert; every check says silent."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'p.sqlite'}"
        _new_run(url)
        _bar(url, "2024-01-09 14:31Z")
        now, sink, alerted_at = T("2024-01-09 15:00Z"), Recorder(), []
        for gap in [0, *gaps]:
            now += pd.Timedelta(seconds=gap)
            if now >= T("2024-01-09 21:00Z"):
                break
            result = _check(url, now.isoformat(), sink, realert_seconds=realert)
            assert result.status == "silent"
            expected = not alerted_at or (now - alerted_at[-1]).total_seconds() >= realert
            assert result.alerted is expected
            if result.alerted:
                alerted_at.append(now)
        assert len(sink.sent) == len(alerted_at) >= 1


# -- the CLI ----------------------------------------------------------------------------------
@pytest.fixture
def fw():
    from live.cli import make_commands

    group = click.Group()
    for command in make_commands(lambda name: None):
        group.add_command(command)
    return group


@pytest.fixture
def alerts_on(tmp_path, monkeypatch, receiver):
    config = tmp_path / "config.yaml"
    config.write_text("notifications:\n  enabled: true\n")
    monkeypatch.setenv("FW_CONFIG", str(config))
    monkeypatch.setenv("FW_APPRISE_URLS", receiver.url("json", "cli"))
    return receiver


def _beat(fw, url, now, *extra):
    return CliRunner().invoke(fw, ["service", "heartbeat", "--run-id", RUN, "--db", url,
                                   "--now", now, *extra])


def test_cli_exit_codes_and_alerts(fw, url, alerts_on):
    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")
    ok = _beat(fw, url, "2024-01-09T15:00:30Z")
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(f"{RUN}: ok;")
    silent = _beat(fw, url, "2024-01-09T15:30:00Z", "--name", "fw-paper-x")
    assert silent.exit_code == 1 and f"{RUN}: silent;" in silent.output
    assert "Traceback" not in silent.output
    posts = alerts_on.at("cli")  # close() delivered it before the command returned
    assert len(posts) == 1 and "journalctl --user -u fw-paper-x" in posts[0]["message"]
    idle = _beat(fw, url, "2024-01-13T16:00:00Z", "--json")
    assert idle.exit_code == 0
    payload = json.loads(idle.output)
    assert payload["status"] == "idle" and payload["run_id"] == RUN
    assert payload["alerted"] is False and payload["last_bar"] == "2024-01-09T15:00:00+00:00"
    _bar(url, "2024-01-16 14:31Z")
    back = _beat(fw, url, "2024-01-16T14:32:00Z")
    assert back.exit_code == 0 and "recovered" in back.output
    assert len(alerts_on.at("cli")) == 2


def test_cli_grace_option_and_errors(fw, url, tmp_path, monkeypatch):
    monkeypatch.setenv("FW_CONFIG", str(_quiet_config(tmp_path)))
    _new_run(url)
    _bar(url, "2024-01-09 15:00Z")
    assert _beat(fw, url, "2024-01-09T15:05:00Z").exit_code == 0
    late = _beat(fw, url, "2024-01-09T15:05:00Z", "--grace", "60")
    assert late.exit_code == 1 and "alerts are off" in late.output  # the note on stderr
    missing = CliRunner().invoke(fw, ["service", "heartbeat", "--run-id", "nope", "--db", url,
                                      "--now", "2024-01-09T15:05:00Z"])
    assert missing.exit_code == 1 and "'nope'" in missing.output
    assert "Traceback" not in missing.output
    bad = _beat(fw, url, "2024-01-09T15:05:00Z", "--grace", "-5")
    assert bad.exit_code == 2 and "--grace" in bad.output


def _quiet_config(tmp_path: Path) -> Path:
    path = tmp_path / "quiet.yaml"
    path.write_text("notifications:\n  enabled: false\n")
    return path


# -- the timer units --------------------------------------------------------------------------
def _spec(**kw) -> ServiceSpec:
    base = dict(strategy="sma_cross", args=("--broker", "alpaca", "--symbols", "SPY"),
                fw_command=("/opt/fw venv/bin/fw",), fw_home=Path("/srv/fw home"))
    return ServiceSpec(**{**base, **kw})


def _sections(text: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file as {section: [(key, value), ...]}; comments and blank lines skipped."""
    out: dict[str, list[tuple[str, str]]] = {}
    section = None
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            out[section] = []
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, line
        out[section].append((key, value))
    return out


def _exec_words(raw: str) -> list[str]:
    return shlex.split(raw.replace("%%", "%").replace("$$", "$"))


def test_timer_units_parse_and_share_the_main_units_environment():
    spec = _spec(args=("--broker", "alpaca", "--run-id", "r 7", "--db",
                       "sqlite:////srv/$x 5%.sqlite"), scope="system", user="trader")
    units = timer_units(spec, every_seconds=120)
    assert sorted(units) == ["fw-paper-sma_cross-heartbeat.service",
                             "fw-paper-sma_cross-heartbeat.timer"]
    check = _sections(units["fw-paper-sma_cross-heartbeat.service"])
    service = dict(check["Service"])
    assert service["Type"] == "oneshot" and service["User"] == "trader"
    assert service["WorkingDirectory"] == "/srv/fw home"
    assert ("Environment", '"FW_HOME=/srv/fw home"') in check["Service"]
    assert service["EnvironmentFile"] == "-/srv/fw home/.env"
    assert int(service["TimeoutStartSec"]) > 0
    words = _exec_words(service["ExecStart"])
    assert words == list(heartbeat_command(spec))
    assert words == ["/opt/fw venv/bin/fw", "service", "heartbeat", "--run-id", "r 7", "--db",
                     "sqlite:////srv/$x 5%.sqlite", "--name", "fw-paper-sma_cross.service",
                     "--scope", "system"]
    assert "Install" not in check  # only the timer is enabled
    timer = _sections(units["fw-paper-sma_cross-heartbeat.timer"])
    assert dict(timer["Timer"]) == {"OnActiveSec": "120s", "OnUnitInactiveSec": "120s",
                                    "AccuracySec": "30s",
                                    "Unit": "fw-paper-sma_cross-heartbeat.service"}
    assert timer["Install"] == [("WantedBy", "timers.target")]


def test_heartbeat_command_defaults_to_the_units_run_and_environment_database():
    words = heartbeat_command(_spec(name="spy-live"))
    assert words[1:] == ("service", "heartbeat", "--run-id", "spy-live", "--name",
                         "spy-live.service", "--scope", "user")


@pytest.mark.parametrize("every", [0, 10, -300, float("inf")])
def test_timer_rejects_a_bad_period(every):
    with pytest.raises(ConfigError, match="heartbeat interval"):
        timer_units(_spec(), every_seconds=every)


def test_cli_install_status_and_uninstall_handle_the_timer(fw, tmp_path, monkeypatch):
    from tests.live.test_service import FakeSystemctl

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    fake = FakeSystemctl(tmp_path, monkeypatch)
    folder = tmp_path / "config" / "systemd" / "user"
    names = ["fw-paper-sma_cross-heartbeat.service", "fw-paper-sma_cross-heartbeat.timer",
             "fw-paper-sma_cross.service"]
    shown = CliRunner().invoke(fw, ["service", "install", "sma_cross", "--broker", "alpaca",
                                    "--dry-run"])
    assert shown.exit_code == 0, shown.output
    assert "# fw-paper-sma_cross-heartbeat.timer" in shown.output
    assert "service heartbeat --run-id fw-paper-sma_cross" in shown.output
    assert not folder.exists() and fake.calls() == []

    done = CliRunner().invoke(fw, ["service", "install", "sma_cross", "--broker", "alpaca"])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in folder.iterdir()) == names
    state = CliRunner().invoke(fw, ["service", "status"])  # the only unit: the check is no unit
    assert state.exit_code == 0, state.output
    assert ("heartbeat fw-paper-sma_cross-heartbeat.timer: active/waiting, last check "
            "Tue 2024-01-09 15:20:00 UTC (silent)") in state.output
    gone = CliRunner().invoke(fw, ["service", "uninstall"])
    assert gone.exit_code == 0, gone.output
    assert list(folder.iterdir()) == []
    assert ["--user", "disable", "--now", "fw-paper-sma_cross-heartbeat.timer"] in fake.calls()
