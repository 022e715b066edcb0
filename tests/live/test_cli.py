"""fw paper / status / halt / resume through click, on the embedded default data (GSPC)."""

from __future__ import annotations

import click
import numpy as np
import pytest
from click.testing import CliRunner

from framework.registry import resolve_strategy
from framework.stepper import Stepper
from live.cli import make_commands
from live.state import Store
from strategies import REGISTRY

FAST = ("--set", "fast=3", "--set", "slow=8")  # short warm-up: trades inside a short window
WINDOW = ("--start", "2017-01-01", "--end", "2017-06-30")


@pytest.fixture(scope="module")
def fw():
    group = click.Group()
    for command in make_commands(lambda spec: resolve_strategy(spec, REGISTRY)):
        group.add_command(command)
    return group


def _invoke(fw, *args, ok=True):
    result = CliRunner().invoke(fw, list(args))
    if ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def _store():
    return Store()  # FW_HOME is a temporary directory per test (conftest)


def _n_bars(start="2017-01-01", end="2017-06-30"):
    from framework.clirun import load_run_bars

    return load_run_bars(None, None, start, end).n_bars


def _new_orders(store, run_id, after):
    return [o for o in store.orders(run_id) if o["bar_time"] > after]


def test_paper_writes_the_run_and_prints_the_summary(fw):
    out = _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--run-id", "p1").output
    store = _store()
    run = store.run("p1")
    curve = store.equity("p1")
    fills = store.fills("p1")
    assert run["strategy"] == "sma_cross" and run["status"] == "finished"
    assert run["config"]["params"] == {"fast": 3, "slow": 8, "short": False}
    assert len(curve) == _n_bars() and run["last_bar"].startswith("2017-06-30")
    assert fills and len(store.orders("p1")) >= len({f["client_order_id"] for f in fills})
    assert f"{len(curve)} new, {len(curve)} traded in the run" in out
    assert f"${curve['equity'].iloc[-1]:,.2f}" in out
    assert "database" in out


def test_same_run_id_resumes_without_duplicating_orders(fw):
    _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--run-id", "p2")
    store = _store()
    before = store.orders("p2")
    out = _invoke(fw, "paper", *WINDOW, "--risk-off", "--run-id", "p2").output
    n = _n_bars()
    assert f"0 new, {n} traded in the run" in out and "resumed" in out
    assert store.orders("p2") == before
    # more data: only the new bars are processed, with the stored parameters
    out = _invoke(fw, "paper", "--start", "2017-01-01", "--end", "2017-09-30", "--risk-off",
                  "--run-id", "p2").output
    ids = [o["client_order_id"] for o in store.orders("p2")]
    assert len(ids) == len(set(ids)) and len(ids) > len(before)
    more = _n_bars(end="2017-09-30")
    assert len(store.equity("p2")) == more and f"{more - n} new, {more} traded in the run" in out
    assert [e["kind"] for e in store.events("p2", 100)].count("recover") == 2


def test_resume_with_other_parameters_is_refused(fw):
    _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--run-id", "p3")
    result = _invoke(fw, "paper", *WINDOW, "--set", "fast=4", "--run-id", "p3", ok=False)
    assert result.exit_code == 1 and "another --run-id" in result.output
    assert "Traceback" not in result.output


def test_dry_run_sends_nothing(fw):
    out = _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--dry-run", "--run-id", "d").output
    store = _store()
    orders = store.orders("d")
    assert orders and {o["status"] for o in orders} == {"dry_run"}
    assert store.fills("d") == [] and store.positions("d") == {}
    assert (store.equity("d")["equity"] == 100_000.0).all()
    assert "DRY RUN" in out


def test_status_shows_the_stored_numbers(fw):
    _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--run-id", "s1")
    store = _store()
    out = _invoke(fw, "status", "--run-id", "s1").output
    curve = store.equity("s1")
    fills = store.fills("s1")
    cost = sum(f["commission"] + f["slippage"] + f["impact"] for f in fills)
    for text in (f"${curve['cash'].iloc[-1]:,.2f}", f"${curve['equity'].iloc[-1]:,.2f}",
                 f"${curve['equity'].iloc[-1] - 100_000:,.2f}", f"{len(fills)} (costs ${cost:,.2f})",
                 store.run("s1")["last_bar"], "finish"):
        assert text in out
    for symbol, quantity in store.positions("s1").items():
        assert f"{symbol} {quantity:g}" in out
    # no --run-id: the latest run
    assert "run s1 (sma_cross" in _invoke(fw, "status").output


def test_status_json_is_machine_readable(fw):
    import json

    _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--run-id", "j1")
    data = json.loads(_invoke(fw, "status", "--run-id", "j1", "--json").output)
    store = _store()
    assert data["run_id"] == "j1" and data["broker"] == "sim" and data["kill_switch"] == "ACTIVE"
    assert data["last_bar"] == store.run("j1")["last_bar"] and data["lag_seconds"] > 0
    assert data["equity"] == pytest.approx(store.equity("j1")["equity"].iloc[-1])
    assert data["fills"] == len(store.fills("j1")) and data["last_error"] is None


def test_halt_stops_trading_and_resume_trades_again(fw):
    _invoke(fw, "paper", *WINDOW, *FAST, "--run-id", "h")  # risk rules on (YAML config)
    store = _store()
    first_end = store.run("h")["last_bar"]
    out = _invoke(fw, "halt", "--run-id", "h").output
    assert "HALTED" in out and store.run("h")["kill_switch"] == "HALTED"
    _invoke(fw, "paper", "--start", "2017-01-01", "--end", "2017-09-30", "--run-id", "h")
    halted_end = store.run("h")["last_bar"]
    assert halted_end > first_end and _new_orders(store, "h", first_end) == []
    _invoke(fw, "resume", "--run-id", "h")
    assert store.run("h")["kill_switch"] == "ACTIVE"
    _invoke(fw, "paper", "--start", "2017-01-01", "--end", "2017-12-31", "--run-id", "h")
    assert _new_orders(store, "h", halted_end)
    kinds = [e["kind"] for e in store.events("h", 1000)]
    assert kinds.index("halt") < kinds.index("resume")


def test_halt_flatten_closes_positions_at_the_next_bar(fw):
    _invoke(fw, "paper", "--start", "2017-01-01", "--end", "2017-02-28", *FAST, "--risk-off",
            "--run-id", "f")
    store = _store()
    held = store.positions("f")
    assert held  # long at the end of the window (fixed embedded data)
    _invoke(fw, "halt", "--run-id", "f", "--flatten")
    _invoke(fw, "paper", "--start", "2017-01-01", "--end", "2017-03-31", "--risk-off",
            "--run-id", "f")
    assert store.positions("f") == {}
    closing = [o for o in store.orders("f") if o["client_order_id"].startswith("flatten")]
    assert [(o["symbol"], o["quantity"], o["status"]) for o in closing] == [
        (s, -q, "filled") for s, q in held.items()]


def test_the_risk_rules_cap_live_positions(fw):
    _invoke(fw, "paper", *WINDOW, *FAST, "--risk", "max_position=0.25", "--run-id", "r")
    store = _store()
    assert store.run("r")["config"]["risk"]["max_position"] == 0.25
    bars = store.load_bars("r", ["GSPC"])
    decisions = store.decisions("r")
    pending = decisions["pending"].dropna()
    assert len(pending) and (pending <= 0.25 + 1e-12).all()
    assert any(e["kind"] == "risk:max_position" for e in store.events("r", 1000))
    # sized at the decision close, filled at the next open: the held value stays near the cap
    curve = store.equity("r").set_index("time")
    position = 0.0
    for fill in store.fills("r"):
        position += fill["quantity"]
        i = curve.index.get_loc(fill["time"])
        value = position * bars.close[i, 0] / curve["equity"].iloc[i]
        assert value <= 0.25 * 1.05


def test_a_walk_forward_schedule_drives_the_parameters(fw, tmp_path):
    from framework.backtest import BacktestSpec
    from framework.clirun import load_run_bars
    from framework.walkforward import SearchSpec, WalkForwardSpec, WindowSpec, walk_forward
    from framework.walkforward.schedule import load_schedule, write_schedule
    from strategies.sma_cross import SmaCross

    bars = load_run_bars(None, None, "2015-01-01", "2017-06-30")
    spec = WalkForwardSpec(windows=WindowSpec(train=250, test=125), executor="serial",
                           search=SearchSpec(method="random", trials=4, seed=1))
    wf = walk_forward(SmaCross(), bars, None, spec, BacktestSpec())
    path = write_schedule(tmp_path / "schedule.json", "sma_cross", wf.schedule)
    _invoke(fw, "paper", "--start", "2015-01-01", "--end", "2017-06-30", "--schedule", str(path),
            "--risk-off", "--run-id", "wf")
    store = _store()
    assert store.run("wf")["config"]["schedule"]["entries"][0]["params"] == \
        wf.schedule[0].params.as_dict()
    stepper = Stepper(SmaCross(), load_schedule(path, SmaCross.params_type), bars.symbols)
    expected = stepper.update_bars(bars)[:, 0]
    got = store.decisions("wf")["target"].to_numpy(np.float64)
    assert np.array_equal(got, expected)
    assert "walk-forward schedule" in _invoke(fw, "status", "--run-id", "wf").output


@pytest.mark.parametrize("args, needle", [
    (("paper", "no_such_strategy", *WINDOW), "no_such_strategy"),
    (("status", "--run-id", "nope"), "Valid run ids: known"),
    (("halt", "--run-id", "nope"), "Valid run ids: known"),
    (("resume", "--run-id", "nope"), "Valid run ids: known"),
])
def test_unknown_names_give_one_clean_line(fw, args, needle):
    _store().create_run("known", "sma_cross", ["GSPC"], {})
    result = _invoke(fw, *args, ok=False)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and needle in lines[0]


def test_a_run_resumes_only_with_its_own_broker(fw):
    _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--run-id", "b1")
    out = _invoke(fw, "paper", *WINDOW, "--broker", "alpaca", "--run-id", "b1", ok=False)
    assert out.exit_code == 1 and "trades with --broker sim" in out.output
    assert "Traceback" not in out.output


def test_service_install_dry_run_prints_the_unit(fw, tmp_path):
    out = _invoke(fw, "service", "install", "sma_cross", "--broker", "alpaca", "--symbols", "SPY",
                  "--dry-run").output
    assert "ExecStart=" in out and "paper sma_cross --broker alpaca --symbols SPY" in out
    assert "--run-id fw-paper-sma_cross" in out and "Restart=on-failure" in out
    assert "would run: systemctl --user enable --now fw-paper-sma_cross.service" in out
    bad = _invoke(fw, "service", "install", "sma_cross", "--brokr", "alpaca", "--dry-run", ok=False)
    assert bad.exit_code != 0 and "--brokr" in bad.output  # caught now, not as restarts later


def test_fw_logs_shows_the_runs_fills(fw):
    import json

    _invoke(fw, "paper", *WINDOW, *FAST, "--risk-off", "--run-id", "lg1")
    fills = _store().fills("lg1")
    out = _invoke(fw, "logs", "trades", "--run-id", "lg1", "--json").output
    logged = [json.loads(line) for line in out.splitlines() if line.strip()]
    ids = [line["execution_id"] for line in logged if line.get("kind") == "fill"]
    assert ids == [f["execution_id"] for f in fills] and ids
