"""``fw broker check``: the per-broker diagnoses (real alpaca-py against the fake Alpaca, the sim
broker's store and calendar, the missing webull adapter) and the click group around them."""

from __future__ import annotations

import json
import socket
import sys

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from framework.errors import ConfigError
from live.broker_check import (
    STEPS,
    Check,
    exit_code,
    render,
    run_checks,
    sim_checks,
    to_json,
)
from live.broker_cli import make_broker_group
from live.state import Store
from tests.live.alpaca_helpers import environment, fake_for, spy_bars

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")

AFTER_CLOSE = "2016-01-04 21:30Z"
APCA = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "APCA_API_BASE_URL", "APCA_API_DATA_URL",
        "APCA_API_DATA_STREAM_URL", "FW_DB_URL")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No real .env, FW_HOME or Alpaca variables leak into a check."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
    for name in APCA:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake():
    with fake_for(spy_bars("2015-12-01", "2016-01-29"), AFTER_CLOSE) as server:
        yield server


def _by_step(checks: list[Check]) -> dict[str, Check]:
    return {c.step: c for c in checks}


def _local(fake, seconds: float):
    """A local clock ``seconds`` ahead of the fake's market time."""
    return lambda: fake.clock.now() + pd.Timedelta(seconds=seconds)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens


def _paths(fake) -> list[str]:
    return [r["path"] for r in fake.requests]


# -- alpaca -------------------------------------------------------------------------------------
def test_alpaca_good_keys_pass_every_step(fake):
    checks = run_checks("alpaca", environment(fake), now=_local(fake, 0.25))
    assert [c.step for c in checks] == list(STEPS)
    assert exit_code(checks) == 0, render("alpaca", checks)
    step = _by_step(checks)
    assert "APCA_API_KEY_ID (te****...)" in step["credentials"].detail
    assert fake.url in step["reachable"].detail
    assert "status ACTIVE" in step["account"].detail
    assert "buying power $100,000.00" in step["account"].detail
    assert step["mode"].detail.startswith("PAPER: endpoint override APCA_API_BASE_URL=")
    assert "PA0FAKE00001 is a paper account" in step["mode"].detail
    clock = step["clock"].detail
    assert "broker clock 2016-01-04 21:30:00 UTC, market CLOSED" in clock
    assert "next open 2016-01-05 09:30 New York" in clock
    assert "0.25 s ahead of the broker" in clock


def test_alpaca_clock_drift_beyond_the_limit_fails(fake):
    checks = run_checks("alpaca", environment(fake), max_drift=5.0, now=_local(fake, -60.0))
    step = _by_step(checks)
    assert not step["clock"].ok and exit_code(checks) == 1
    assert "60.00 s behind the broker" in step["clock"].detail
    assert "--max-clock-drift" in step["clock"].detail
    assert all(step[name].ok for name in ("credentials", "reachable", "account", "mode"))


def test_alpaca_missing_keys_name_the_variables_and_skip_the_account(fake):
    environ = {"APCA_API_BASE_URL": fake.url}
    checks = run_checks("alpaca", environ, now=_local(fake, 0.0))
    step = _by_step(checks)
    assert not step["credentials"].ok
    assert "APCA_API_KEY_ID and APCA_API_SECRET_KEY" in step["credentials"].detail
    assert step["reachable"].ok and step["mode"].ok
    assert step["account"].detail == "skipped: no credentials" and not step["account"].ok
    assert step["clock"].detail.startswith("skipped:")
    assert "/v2/account" not in _paths(fake) and exit_code(checks) == 1


def test_alpaca_wrong_keys_are_reported_as_rejected(fake):
    environ = {**environment(fake), "APCA_API_SECRET_KEY": "not-the-secret"}
    step = _by_step(run_checks("alpaca", environ, now=_local(fake, 0.0)))
    assert step["credentials"].ok and step["reachable"].ok
    assert not step["account"].ok and "rejected the keys (HTTP 401)" in step["account"].detail
    assert "PAPER account" in step["account"].detail
    assert step["clock"].detail == "skipped: the account could not be read"


def test_alpaca_unreachable_host_fails_fast_and_skips_the_rest():
    port = _closed_port()
    environ = {"APCA_API_KEY_ID": "k" * 20, "APCA_API_SECRET_KEY": "s" * 40,
               "APCA_API_BASE_URL": f"http://127.0.0.1:{port}"}
    checks = run_checks("alpaca", environ, timeout=2.0)
    step = _by_step(checks)
    assert step["credentials"].ok
    assert not step["reachable"].ok
    assert f"cannot reach http://127.0.0.1:{port} within 2 s" in step["reachable"].detail
    assert "Connection refused" in step["reachable"].detail
    assert "APCA_API_BASE_URL" in step["reachable"].detail
    assert step["account"].detail == "skipped: the host is unreachable"
    assert step["mode"].ok and exit_code(checks) == 1


def test_alpaca_live_host_is_refused_before_any_request(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError(f"a request was sent: {args}")

    monkeypatch.setattr("live.alpaca_check.requests.get", no_network)
    environ = {"APCA_API_KEY_ID": "k" * 20, "APCA_API_SECRET_KEY": "s" * 40,
               "APCA_API_BASE_URL": "https://api.alpaca.markets"}
    checks = run_checks("alpaca", environ)
    step = _by_step(checks)
    assert [c.step for c in checks] == list(STEPS)
    assert not step["mode"].ok
    assert step["mode"].detail.startswith("LIVE TRADING HOST REFUSED:")
    assert "paper accounts only" in step["mode"].detail
    assert all(step[name].detail.startswith("skipped:") for name in ("reachable", "account", "clock"))


# -- sim ------------------------------------------------------------------------------------------
def test_sim_reports_a_new_database_the_mode_and_the_xnys_clock(tmp_path):
    url = f"sqlite:///{tmp_path / 'state' / 'fw.sqlite'}"
    after_half_day = lambda: pd.Timestamp("2025-07-03 18:00Z")  # noqa: E731  (13:00 close)
    checks = sim_checks({"FW_DB_URL": url}, now=after_half_day)
    assert [c.step for c in checks] == ["credentials", "store", "mode", "clock"]
    assert exit_code(checks) == 0
    step = _by_step(checks)
    assert step["credentials"].detail.startswith("n/a")
    assert "does not exist yet" in step["store"].detail
    assert not (tmp_path / "state").exists()  # a diagnosis creates nothing
    assert step["mode"].detail.startswith("SIMULATED (offline)")
    assert "market CLOSED; next open 2025-07-07 09:30 New York, next close 2025-07-07 16:00" in (
        step["clock"].detail)


def test_sim_reads_an_existing_store_and_knows_an_open_market(tmp_path):
    url = f"sqlite:///{tmp_path / 'fw.sqlite'}"
    store = Store(url)
    store.create_run("r1", "sma_cross", ["SPY"], {})
    store.close()
    in_session = lambda: pd.Timestamp("2025-07-07 15:00Z")  # noqa: E731
    step = _by_step(run_checks("sim", {"FW_DB_URL": url}, now=in_session))
    assert step["store"].ok and "1 run(s)" in step["store"].detail
    assert "market OPEN; next open 2025-07-08 09:30 New York, next close 2025-07-07 16:00" in (
        step["clock"].detail)


def test_sim_default_database_lives_under_fw_home(tmp_path):
    step = _by_step(sim_checks({"FW_HOME": str(tmp_path / "elsewhere")}))
    assert f"sqlite:///{tmp_path / 'elsewhere' / 'state' / 'fw.sqlite'} (" in step["store"].detail or (
        f"sqlite:///{tmp_path / 'elsewhere' / 'state' / 'fw.sqlite'} does not exist yet"
        in step["store"].detail)
    assert step["store"].ok and step["clock"].ok


def test_sim_bad_database_url_fails():
    step = _by_step(sim_checks({"FW_DB_URL": "nosuchdialect://x/y"}))
    assert not step["store"].ok
    assert "nosuchdialect://x/y" in step["store"].detail and "FW_DB_URL" in step["store"].detail


# -- webull and dispatch --------------------------------------------------------------------------
def test_missing_webull_adapter_is_one_clear_failure(monkeypatch):
    monkeypatch.setitem(sys.modules, "live.webull", None)  # import live.webull -> ImportError
    checks = run_checks("webull", {})
    assert len(checks) == 1 and not checks[0].ok and exit_code(checks) == 1
    assert "webull adapter not installed in this build" in checks[0].detail
    result = CliRunner().invoke(make_broker_group(), ["check", "--broker", "webull"])
    assert result.exit_code == 1
    assert "FAIL  webull adapter not installed in this build" in result.output


def test_webull_checks_are_delegated(monkeypatch):
    import types

    module = types.ModuleType("live.webull")
    module.checks = lambda environ, max_drift=5.0: [
        Check("credentials", environ.get("X") == "1", f"drift {max_drift:g}")]
    monkeypatch.setitem(sys.modules, "live.webull", module)
    assert run_checks("webull", {"X": "1"}, max_drift=7.0) == [Check("credentials", True, "drift 7")]
    module.checks = lambda environ: [Check("credentials", True, "no drift option")]
    assert run_checks("webull", {}, max_drift=7.0) == [Check("credentials", True, "no drift option")]


def test_an_unknown_broker_names_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown broker 'ibkr'.*alpaca, sim, webull"):
        run_checks("ibkr", {})


# -- presentation ------------------------------------------------------------------------------
checks_lists = st.lists(st.builds(Check, st.sampled_from(STEPS + ("token", "store")),
                                  st.booleans(), st.text(max_size=30)), max_size=6)


@given(checks_lists)
def test_exit_code_json_and_lines_agree(checks):
    code = exit_code(checks)
    assert code == (0 if checks and all(c.ok for c in checks) else 1)
    data = json.loads(to_json("sim", checks))
    assert data["ok"] is (code == 0) and data["broker"] == "sim"
    assert [Check(**c) for c in data["checks"]] == checks
    lines = render("sim", checks).split("\n")
    assert len(lines) == len(checks) + 2 + sum(c.detail.count("\n") for c in checks)


# -- the click group -------------------------------------------------------------------------------
def test_cli_sim_plain_and_json(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    runner = CliRunner()
    plain = runner.invoke(make_broker_group(), ["check", "--broker", "sim", "--db", url])
    assert plain.exit_code == 0, plain.output
    assert "credentials  OK    n/a" in plain.output and "sim: all 4 checks passed" in plain.output
    as_json = runner.invoke(make_broker_group(), ["check", "--db", url, "--json"])
    assert as_json.exit_code == 0
    data = json.loads(as_json.output)
    assert data["ok"] is True and [c["step"] for c in data["checks"]][0] == "credentials"


def test_cli_alpaca_against_the_fake(fake, monkeypatch):
    for name, value in environment(fake).items():
        monkeypatch.setenv(name, value)
    group = make_broker_group()
    # the fake's market time is 2016: allow any drift so only the connection is judged
    ok = CliRunner().invoke(group, ["check", "--broker", "alpaca", "--max-clock-drift", "1e10"])
    assert ok.exit_code == 0, ok.output
    assert "alpaca: all 5 checks passed" in ok.output and "PAPER" in ok.output
    strict = CliRunner().invoke(group, ["check", "--broker", "alpaca", "--json"])
    assert strict.exit_code == 1
    failed = [c["step"] for c in json.loads(strict.output)["checks"] if not c["ok"]]
    assert failed == ["clock"]


def test_cli_alpaca_missing_keys_exit_1(monkeypatch):
    monkeypatch.setenv("APCA_API_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    result = CliRunner().invoke(make_broker_group(), ["check", "--broker", "alpaca",
                                                      "--timeout", "1"])
    assert result.exit_code == 1
    assert "credentials  FAIL" in result.output and "APCA_API_KEY_ID" in result.output


def test_cli_refuses_an_unknown_broker_choice():
    result = CliRunner().invoke(make_broker_group(), ["check", "--broker", "ibkr"])
    assert result.exit_code == 2 and "ibkr" in result.output
