"""Every REST fault switch of the fake Webull server: at the broker (the unknown-outcome rule:
resolve by client id, never resend blindly) and during ``fw paper --broker webull`` sessions,
which end where a fault-free session ends, or halt cleanly."""

from __future__ import annotations

import pytest

from framework.errors import BrokerError
from live.broker import BrokerUnavailableError, OrderRequest
from live.command import PaperSpec
from live.state import Store
from live.webull import webull_order_id
from strategies.sma_cross import SmaCross
from tests.live.alpaca_helpers import VirtualTime, spy_bars
from tests.live.webull_helpers import advance_session, broker_for, fake_for, run_session

START = "2016-01-04 12:00Z"
HISTORY = spy_bars("2015-06-01", "2016-03-31")
CLOSES = HISTORY.between("2016-01-04", "2016-02-10").index
CID = "sma_cross:f1:20160104T210000Z:SPY"


@pytest.fixture
def fake():
    with fake_for(HISTORY, START) as server:
        server.faults.rate_limit_per_min = 0
        yield server


def _placed(fake) -> list[str]:
    return [o["client_order_id"] for o in fake.orders()]


# -- the broker under each switch --------------------------------------------------------------
@pytest.mark.parametrize("failure", [504, "drop"])
def test_accepted_then_failed_submit_is_resolved_by_id_not_resent(fake, tmp_path, failure):
    broker = broker_for(fake, tmp_path)
    fake.faults.accept_then_fail = failure
    seen = broker.submit(OrderRequest(CID, "SPY", 3.0))
    assert seen.client_order_id == CID and seen.is_open
    assert _placed(fake) == [webull_order_id(CID)]  # exactly one order
    places = [r for r in fake.requests if r["path"] == "/trading/orders/place"]
    assert len(places) == 1


def test_a_hung_submit_times_out_and_the_order_is_found_or_sent_once(fake, tmp_path):
    broker = broker_for(fake, tmp_path, timeout=0.3)
    fake.faults.hang_next, fake.faults.hang_seconds = 1, 0.6
    broker.submit(OrderRequest(CID, "SPY", 3.0))
    fake.stopping.wait(0.8)  # the hung request wakes up and is processed after the resend
    assert _placed(fake) == [webull_order_id(CID)]
    assert any(r["status"] == 400 for r in fake.requests
               if r["path"] == "/trading/orders/place")  # the late duplicate was refused


def test_a_429_storm_is_waited_out_for_reads_and_submits(fake, tmp_path):
    clock = VirtualTime()
    broker = broker_for(fake, tmp_path, time_source=clock)
    fake.faults.storm_429 = 2
    assert broker.account().cash == 100_000.0
    fake.faults.storm_429 = 2
    broker.submit(OrderRequest(CID, "SPY", 1.0))
    assert _placed(fake) == [webull_order_id(CID)] and clock.slept


def test_the_rate_window_of_the_fake_answers_429_and_the_adapter_recovers(fake, tmp_path):
    broker = broker_for(fake, tmp_path, time_source=VirtualTime())
    fake.faults.rate_limit_per_min = len(fake.requests) + 3
    with pytest.raises(BrokerUnavailableError, match="TOO_MANY_REQUESTS"):
        for _ in range(10):
            broker.positions()
    assert any(r["status"] == 429 for r in fake.requests)


def test_5xx_on_a_submit_looks_up_before_resending(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    fake.faults.fail_next, fake.faults.fail_paths = [503], "/trading/orders/place"
    broker.submit(OrderRequest(CID, "SPY", 1.0))
    paths = [(r["path"], r["status"]) for r in fake.requests][-3:]
    assert paths == [("/trading/orders/place", 503), ("/trading/orders/get", 404),
                     ("/trading/orders/place", 200)]
    assert _placed(fake) == [webull_order_id(CID)]


def test_a_broker_that_stays_down_is_unavailable_and_submit_outcome_unknown(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    fake.faults.fail_next = [503] * 40
    with pytest.raises(BrokerUnavailableError, match="failed 4 times"):
        broker.account()
    with pytest.raises(BrokerError, match="stays pending"):
        broker.submit(OrderRequest(CID, "SPY", 1.0))


def test_a_vanished_order_is_unknown_to_lookups_but_its_fill_still_counts(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    broker.submit(OrderRequest(CID, "SPY", 2.0))
    fake.faults.disappear = {webull_order_id(CID)}
    advance_session(fake)
    assert broker.order(CID) is None
    assert [(f.client_order_id, f.quantity) for f in broker.fills()] == [(CID, 2.0)]


def test_forced_rejection_is_reported_as_rejected(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    fake.faults.force_outcome = "rejected"
    broker.submit(OrderRequest(CID, "SPY", 2.0))
    assert broker.order(CID).status == "rejected"


# -- sessions ----------------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text("broker:\n  max_requests_per_min: 100000\n  request_timeout: 0.5\n")
    monkeypatch.setenv("FW_CONFIG", str(path))
    return path


def _spec(**kw) -> PaperSpec:
    base = dict(run_id="f1", symbols=("SPY",), sets=("fast=5", "slow=20"), broker="webull",
                warmup_bars=60, max_bars=len(CLOSES) + 1, poll=0.005, settle=1.0,
                max_clock_drift=None, risk_off=True)
    return PaperSpec(**{**base, **kw})


def _session(tmp_path, monkeypatch, name, arm=None):
    store = Store(f"sqlite:///{tmp_path / (name + '.sqlite')}")
    with fake_for(HISTORY, START) as server:
        server.faults.rate_limit_per_min = 0
        if arm is not None:
            arm(server)
        run_session(server, store, SmaCross(), _spec(), CLOSES, monkeypatch, tmp_path / name)
        orders, positions = server.orders(), server.positions()
    return store, orders, positions


def _outcome(store):
    return ([(f["client_order_id"], round(f["quantity"], 6), f["price"]) for f in store.fills("f1")],
            store.positions("f1"))


def _on_first_order(fault):
    def arm(server):
        def hook(method, path, query):
            if path == "/trading/orders/place" and server.on_request is hook:
                server.on_request = None
                fault(server)
        server.on_request = hook
    return arm


# (the 429 storm is covered at the broker above: in a session it only costs wall time)
RECOVERABLE = {
    "accepted then 504": lambda s: setattr(s.faults, "accept_then_fail", 504),
    "accepted then dropped": lambda s: setattr(s.faults, "accept_then_fail", "drop"),
    "hung submit": _on_first_order(lambda s: (setattr(s.faults, "hang_next", 1),
                                              setattr(s.faults, "hang_seconds", 1.0))),
}


def test_recoverable_faults_end_where_a_clean_session_ends(tmp_path, monkeypatch, config):
    reference, ref_orders, _ = _session(tmp_path, monkeypatch, "ref")
    assert len(reference.fills("f1")) >= 4
    for name, arm in RECOVERABLE.items():
        store, orders, positions = _session(tmp_path, monkeypatch, name.replace(" ", "_"), arm)
        assert _outcome(store) == _outcome(reference), name
        assert sorted(o["client_order_id"] for o in orders) == sorted(
            o["client_order_id"] for o in ref_orders), name  # none twice, none lost
        assert store.positions("f1") == pytest.approx(positions)
        assert store.run("f1")["kill_switch"] == "ACTIVE"


def test_partial_fill_then_expiry_keeps_store_and_broker_in_step(tmp_path, monkeypatch, config):
    store, _, positions = _session(
        tmp_path, monkeypatch, "p", lambda s: setattr(s.faults, "partial_fills", [0.4, 0.6]))
    assert store.run("f1")["kill_switch"] == "ACTIVE"
    first = store.orders("f1")[0]
    assert first["status"] == "canceled" and 0 < first["filled_quantity"] < first["quantity"]
    assert store.positions("f1") == pytest.approx(positions)


def test_an_order_the_broker_loses_is_settled_from_its_fills(tmp_path, monkeypatch, config):
    lost = webull_order_id("sma_cross:f1:20151231T210000Z:SPY")
    store, _, positions = _session(tmp_path, monkeypatch, "d",
                                   lambda s: setattr(s.faults, "disappear", {lost}))
    assert store.run("f1")["kill_switch"] == "ACTIVE"
    assert store.orders("f1")[0]["status"] == "filled"
    assert "order_vanished" in [e["kind"] for e in store.events("f1", limit=1000)]
    assert store.positions("f1") == pytest.approx(positions)
