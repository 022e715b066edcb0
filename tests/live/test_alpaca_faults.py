"""Every REST fault switch of the fake Alpaca server, during an ``fw paper --broker alpaca``
session: it ends in the state a fault-free session reaches, or in a clean halt with an event and
an alert (delivered to a local webhook)."""

from __future__ import annotations

import pandas as pd
import pytest

from framework.errors import BrokerError
from live.broker import BrokerUnavailableError, OrderRequest
from live.clock import ClockDriftError
from live.command import PaperSpec
from live.state import Store
from strategies.sma_cross import SmaCross
from tests.live.alpaca_helpers import (
    broker_for,
    daily_seed,
    fake_for,
    run_session,
    spy_bars,
    wait_for,
)
from tests.live.fake_alpaca import FakeAlpaca
from tests.live.webhook import Receiver

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")

START = "2016-01-04 12:00Z"
HISTORY = spy_bars("2015-06-01", "2016-03-31")
CLOSES = HISTORY.between("2016-01-04", "2016-02-26").index


@pytest.fixture
def receiver(tmp_path, monkeypatch):
    """Alerts on, delivered to a webhook on 127.0.0.1; short timeouts so hangs cost little."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    rec = Receiver()
    path = tmp_path / "config.yaml"
    path.write_text("broker:\n  max_requests_per_min: 100000\n  request_timeout: 0.5\n"
                    "notifications:\n  enabled: true\n"
                    "  events: [order_filled, circuit_breaker, reconciliation, error]\n")
    monkeypatch.setenv("FW_CONFIG", str(path))
    monkeypatch.setenv("FW_APPRISE_URLS", rec.url("json", "alerts"))
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def _spec(**kw) -> PaperSpec:
    base = dict(run_id="f1", symbols=("SPY",), sets=("fast=5", "slow=20"), broker="alpaca",
                warmup_bars=60, max_bars=len(CLOSES) + 1, poll=0.005, settle=1.0,
                max_clock_drift=None, risk_off=True)
    return PaperSpec(**{**base, **kw})


def _session(tmp_path, monkeypatch, name, arm=None, fake=None, spec=None, closes=CLOSES):
    store = Store(f"sqlite:///{tmp_path / (name + '.sqlite')}")
    with fake or fake_for(HISTORY, START) as server:
        server.faults.rate_limit_per_min = 0
        if arm is not None:
            arm(server)
        error = None
        try:
            run_session(server, store, SmaCross(), spec or _spec(), closes, monkeypatch)
        except BrokerError as exc:
            error = exc
        orders, positions = server.orders(), server.positions()
    return store, orders, positions, error


def _outcome(store):
    return ([(f["client_order_id"], round(f["quantity"], 6), f["price"]) for f in store.fills("f1")],
            store.positions("f1"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("ref")
    path = tmp / "config.yaml"
    path.write_text("broker:\n  max_requests_per_min: 100000\n")
    mp.setenv("FW_CONFIG", str(path))
    try:
        store, orders, _, error = _session(tmp, mp, "ref")
    finally:
        mp.undo()
    assert error is None and len(store.fills("f1")) >= 4
    return _outcome(store), sorted(o["client_order_id"] for o in orders)


def _on_first_order(fault):
    """Arm ``fault(server)`` when the session sends its first order (the hang must hit it)."""
    def arm(server):
        def hook(method, path, query):
            if method == "POST" and path == "/v2/orders" and server.on_request is hook:
                server.on_request = None
                fault(server)
        server.on_request = hook
    return arm


RECOVERABLE = {
    "accepted then 504": lambda s: setattr(s.faults, "accept_then_fail", 504),
    "accepted then dropped": lambda s: setattr(s.faults, "accept_then_fail", "drop"),
    "503 on order routes": lambda s: (setattr(s.faults, "fail_next", [503, 503]),
                                      setattr(s.faults, "fail_paths", "/v2/orders")),
    "429 storm": lambda s: setattr(s.faults, "storm_429", 3),
    "hung submit": _on_first_order(lambda s: (setattr(s.faults, "hang_next", 1),
                                              setattr(s.faults, "hang_seconds", 1.0))),
    "slow broker": lambda s: setattr(s.faults, "latency", 0.002),
}


@pytest.mark.parametrize("name", list(RECOVERABLE))
def test_recoverable_faults_end_where_a_clean_session_ends(tmp_path, monkeypatch, receiver,
                                                           reference, name):
    store, orders, positions, error = _session(tmp_path, monkeypatch, "s", RECOVERABLE[name])
    assert error is None
    assert _outcome(store) == reference[0]
    assert sorted(o["client_order_id"] for o in orders) == reference[1]  # none twice, none lost
    assert store.positions("f1") == pytest.approx(positions)
    assert store.run("f1")["kill_switch"] == "ACTIVE"


def test_partial_fill_then_expiry_keeps_store_and_broker_in_step(tmp_path, monkeypatch, receiver):
    store, _, positions, error = _session(
        tmp_path, monkeypatch, "p", lambda s: setattr(s.faults, "partial_fills", [0.4, 0.6]))
    assert error is None and store.run("f1")["kill_switch"] == "ACTIVE"
    first = store.orders("f1")[0]
    assert first["status"] == "canceled" and 0 < first["filled_quantity"] < first["quantity"]
    assert store.positions("f1") == pytest.approx(positions)


def test_a_rejected_order_is_recorded_and_alerted(tmp_path, monkeypatch, receiver):
    store, _, positions, error = _session(
        tmp_path, monkeypatch, "r", lambda s: setattr(s.faults, "force_outcome", "rejected"))
    assert error is None
    assert store.orders("f1")[0]["status"] == "rejected"
    assert any("rejected" in e["message"] for e in store.errors("f1"))
    assert store.positions("f1") == pytest.approx(positions)
    wait_for(lambda: any("rejected" in p.get("title", "") for p in receiver.at("alerts")), 10,
             "the rejection alert")


def test_an_order_the_broker_loses_is_settled_from_its_fills(tmp_path, monkeypatch, receiver):
    def lose_first(server):
        server.faults.disappear = {"sma_cross:f1:20151231T210000Z:SPY"}

    store, _, positions, error = _session(tmp_path, monkeypatch, "d", lose_first)
    assert error is None and store.run("f1")["kill_switch"] == "ACTIVE"
    assert store.orders("f1")[0]["status"] == "filled"
    assert "order_vanished" in [e["kind"] for e in store.events("f1", limit=1000)]
    assert store.positions("f1") == pytest.approx(positions)


def test_a_trade_outside_the_run_halts_cleanly_with_an_alert(tmp_path, monkeypatch, receiver):
    def manual_trade(server):
        def hook(method, path, query):  # someone buys SPY by hand in the same account
            if method == "POST" and path == "/v2/orders" and server.on_request is hook:
                server.on_request = None
                broker_for(server).submit(OrderRequest("manual-1", "SPY", 7.0))
        server.on_request = hook

    store, orders, positions, error = _session(tmp_path, monkeypatch, "m", manual_trade)
    assert store.run("f1")["kill_switch"] == "HALTED"
    kinds = [e["kind"] for e in store.events("f1", limit=1000)]
    assert "foreign_fill" in kinds and "reconcile_mismatch" in kinds
    assert store.positions("f1")["SPY"] == pytest.approx(positions["SPY"] - 7.0)
    sent_after = [o for o in store.orders("f1") if o["bar_time"] > "2016-01-05"]
    assert sent_after == []  # halted at the first bar that saw the fill: nothing more sent
    wait_for(lambda: any("HALTED" in p.get("title", "") for p in receiver.at("alerts")), 10,
             "the halt alert")


def test_a_missing_daily_bar_halts_as_stale_data(tmp_path, monkeypatch, receiver):
    seed = daily_seed(HISTORY)
    gap = pd.Timestamp("2016-01-20", tz="America/New_York").tz_convert("UTC")
    seed["SPY"] = seed["SPY"].drop(gap)
    with pytest.raises(BrokerError, match="stale data: no bar for SPY at 2016-01-20"):
        store = Store(f"sqlite:///{tmp_path / 'g.sqlite'}")
        with FakeAlpaca(seed, start=START) as server:
            server.faults.rate_limit_per_min = 0
            run_session(server, store, SmaCross(), _spec(max_wait=0.0), CLOSES, monkeypatch)
    assert store.run("f1")["kill_switch"] == "HALTED"
    assert store.run("f1")["last_bar"].startswith("2016-01-19")
    wait_for(lambda: any("stale_data" in p.get("title", "") for p in receiver.at("alerts")), 10,
             "the stale-data alert")


def test_an_unreachable_data_api_ends_the_session_with_an_error(tmp_path, monkeypatch, receiver):
    def break_data(server):
        server.faults.fail_next = [503] * 50
        server.faults.fail_paths = "/v2/stocks"

    with pytest.raises(BrokerUnavailableError, match="GET /v2/stocks/bars failed 4 times"):
        store = Store(f"sqlite:///{tmp_path / 'u.sqlite'}")
        with fake_for(HISTORY, START) as server:
            server.faults.rate_limit_per_min = 0
            break_data(server)
            run_session(server, store, SmaCross(), _spec(), CLOSES, monkeypatch)
    run = store.run("f1")
    assert run is not None and run["status"] == "interrupted"
    assert store.errors("f1")


def test_clock_drift_refuses_to_start(tmp_path, monkeypatch, receiver):
    store = Store(f"sqlite:///{tmp_path / 'c.sqlite'}")
    with pytest.raises(ClockDriftError, match="--max-clock-drift"), \
            fake_for(HISTORY, START) as server:
        server.faults.rate_limit_per_min = 0
        run_session(server, store, SmaCross(), _spec(max_clock_drift=5.0), CLOSES, monkeypatch)
    assert store.run("f1") is None  # nothing was created or traded
