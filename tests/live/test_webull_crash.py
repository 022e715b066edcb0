"""Crash safety against the fake Webull server: ``fw paper --broker webull`` runs as a real
process and is killed with SIGKILL at random requests (mid-submit included: the server then
records an order whose sender is dead), restarted, and must end exactly where an uninterrupted
run ends: no order duplicated or lost, no fill counted twice (fills are derived from cumulative
order fills, measured from the stored ones after a restart), positions reconciled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from live.command import PaperSpec
from live.state import Store
from strategies.sma_cross import SmaCross
from tests.live.alpaca_helpers import drive, last_bar, spy_bars, wait_for, warmup_end
from tests.live.webull_helpers import environment, fake_for, run_session

START = "2016-01-04 12:00Z"
ARGS = ["--symbols", "SPY", "--set", "fast=5", "--set", "slow=20", "--warmup-bars", "60",
        "--poll", "0.005", "--settle", "1", "--max-clock-drift", "off", "--no-reports"]


@pytest.fixture
def config(tmp_path, monkeypatch):
    """Default risk rules on (breaker state must survive) and a request budget for polling."""
    path = tmp_path / "config.yaml"
    path.write_text("broker:\n  max_requests_per_min: 100000\n")
    monkeypatch.setenv("FW_CONFIG", str(path))
    return path


def _outcome(store: Store, run_id: str):
    fills = [(f["client_order_id"], round(f["quantity"], 9), f["price"], f["time"])
             for f in store.fills(run_id)]
    orders = [(o["client_order_id"], round(o["quantity"], 9), o["status"])
              for o in store.orders(run_id)]
    return fills, orders, store.positions(run_id), store.risk_state(run_id)


def test_sigkill_at_random_requests_changes_nothing(tmp_path, config, monkeypatch):
    history = spy_bars("2015-06-01", "2016-04-30")
    closes = history.between("2016-01-04", "2016-02-29").index
    reference = Store(f"sqlite:///{tmp_path / 'ref.sqlite'}")
    with fake_for(history, START) as fake:
        fake.faults.rate_limit_per_min = 0
        spec = PaperSpec(run_id="c1", symbols=("SPY",), sets=("fast=5", "slow=20"),
                         broker="webull", warmup_bars=60, max_bars=len(closes) + 1, poll=0.005,
                         settle=1.0, max_clock_drift=None)
        with monkeypatch.context() as scoped:
            run_session(fake, reference, SmaCross(), spec, closes, scoped, tmp_path / "ref")
        n_requests = len(fake.requests)
        ref_fake_orders = [(o["client_order_id"], o["qty"]) for o in fake.orders()]
    expected = _outcome(reference, "c1")
    assert len(expected[0]) >= 4 and expected[3] is not None

    db = f"sqlite:///{tmp_path / 'crash.sqlite'}"
    store = Store(db)
    kills = sorted(np.random.default_rng(11).choice(np.arange(5, n_requests - 5), 5,
                                                     replace=False))
    with fake_for(history, START) as fake:
        fake.faults.rate_limit_per_min = 0
        env = {**os.environ, **environment(fake), "FW_HOME": str(tmp_path / "home")}
        command = [sys.executable, "-c", "from framework.cli import main; main()", "paper",
                   "sma_cross", "--broker", "webull", "--run-id", "c1", "--db", db, *ARGS]
        state = {"proc": None, "count": 0, "killed": 0}
        log = open(tmp_path / "runner.log", "w")  # noqa: SIM115 - closed below

        def start():
            state["proc"] = subprocess.Popen(command, env=env, stdout=log, stderr=log)

        def on_request(method, path, query):
            state["count"] += 1
            if kills and state["count"] >= kills[0]:
                kills.pop(0)
                state["killed"] += 1
                state["proc"].send_signal(signal.SIGKILL)
                state["proc"].wait()

        fake.on_request = on_request
        start()
        ready = warmup_end(fake, 1.0)

        def restart_if_dead():
            if state["proc"].poll() is not None:
                start()

        alive = lambda: state["proc"].poll() is None  # noqa: E731
        while last_bar(store, "c1") < ready.isoformat():
            wait_for(lambda: last_bar(store, "c1") >= ready.isoformat() or not alive(), 60,
                     "warm-up")
            restart_if_dead()
        drive(fake, store, "c1", closes, alive, timeout=60, on_dead=restart_if_dead)
        state["proc"].send_signal(signal.SIGTERM)  # graceful stop after the last bar
        assert state["proc"].wait(30) == 0, (tmp_path / "runner.log").read_text()[-3000:]
        log.close()
        fake_orders = [(o["client_order_id"], o["qty"]) for o in fake.orders()]
        fake_positions = fake.positions()
    assert state["killed"] >= 4, f"only {state['killed']} kills happened"
    got = _outcome(store, "c1")
    assert got[0] == expected[0]  # fills: same executions, sizes, prices, times
    assert got[1] == expected[1]  # orders: same ids, sizes and final statuses
    assert got[2] == pytest.approx(expected[2]) and got[2] == pytest.approx(fake_positions)
    assert got[3] == expected[3]  # risk state, breakers included
    assert sorted(fake_orders) == sorted(ref_fake_orders)  # nothing duplicated or lost
    assert len({cid for cid, _ in fake_orders}) == len(fake_orders)
    kinds = [e["kind"] for e in store.events("c1", limit=10_000)]
    assert kinds.count("start") == 1 and kinds.count("recover") >= 1
    assert "reconcile_mismatch" not in kinds
