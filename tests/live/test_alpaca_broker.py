"""The Alpaca broker adapter against the fake Alpaca server, through the real alpaca-py client:
order life cycle, fills, and every REST fault that can make an order's outcome unclear."""

from __future__ import annotations

import pytest

from framework.errors import ConfigError
from live.alpaca import AlpacaSpec, alpaca_keys
from live.broker import BrokerUnavailableError, OrderRequest
from tests.live.alpaca_helpers import VirtualTime, broker_for, fake_for, spy_bars

pytestmark = pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated")

AFTER_CLOSE = "2016-01-04 21:30Z"  # Monday after the close
NEXT_OPEN = "2016-01-05 15:00Z"  # Tuesday, after the 14:30 UTC open


@pytest.fixture
def fake():
    with fake_for(spy_bars("2015-06-01", "2016-03-31"), AFTER_CLOSE) as server:
        yield server


def _opening_price(fake, date: str) -> float:
    bars = spy_bars(date, date)
    return float(bars.open[0, 0])


def _posts(fake) -> int:
    return sum(r["method"] == "POST" and r["path"] == "/v2/orders" for r in fake.requests)


@pytest.mark.parametrize("fault", [504, 502, "drop"])
def test_accepted_then_failed_submit_is_resolved_by_lookup(fake, fault):
    broker = broker_for(fake)
    fake.faults.accept_then_fail = fault
    order = broker.submit(OrderRequest("r1:u", "SPY", 5.0))
    assert order.client_order_id == "r1:u" and order.quantity == 5.0
    assert len(fake.orders()) == 1 and _posts(fake) == 1  # looked up, never resent


def test_a_submit_that_never_arrived_is_sent_again_after_the_lookup(fake):
    broker = broker_for(fake)
    fake.faults.fail_next = [503]
    fake.faults.fail_paths = "/v2/orders"
    order = broker.submit(OrderRequest("r1:n", "SPY", 2.0))
    assert order.quantity == 2.0 and len(fake.orders()) == 1
    lookups = [r for r in fake.requests if r["path"] == "/v2/orders:by_client_order_id"]
    assert lookups and lookups[0]["status"] == 404  # asked first, then sent again
    assert _posts(fake) == 2


def test_rate_limited_submit_is_retried_after_backing_off(fake):
    waits = VirtualTime()
    broker = broker_for(fake, time_source=waits)
    fake.faults.storm_429 = 2
    broker.submit(OrderRequest("r1:r", "SPY", 2.0))
    assert len(fake.orders()) == 1
    assert [r["status"] for r in fake.requests if r["method"] == "POST"] == [429, 429, 200]
    assert sum(waits.slept) > 1.0  # the limiter backed off before each retry


def test_our_rate_limiter_keeps_below_the_broker_limit(fake):
    waits = VirtualTime()
    broker = broker_for(fake, time_source=waits, max_requests_per_min=20)
    for _ in range(45):
        broker.account()
    assert waits.now >= 120.0  # 45 requests at 20 per minute need two extra windows
    assert all(r["status"] == 200 for r in fake.requests)


def test_a_hung_server_times_out_and_reads_are_retried(fake):
    broker = broker_for(fake, timeout=0.3)
    fake.faults.hang_next, fake.faults.hang_seconds = 1, 2.0
    assert broker.account().cash == pytest.approx(100_000.0)


def test_a_hung_submit_ends_with_one_order(fake):
    broker = broker_for(fake, timeout=0.3)
    fake.faults.hang_next, fake.faults.hang_seconds = 1, 1.0
    try:
        broker.submit(OrderRequest("r1:h", "SPY", 4.0))
    except Exception as exc:  # the outcome may be reported unknown; never a duplicate
        assert "r1:h" in str(exc)
    import time

    time.sleep(1.2)  # let the hung request finish on the server
    assert [o["client_order_id"] for o in fake.orders()] == ["r1:h"]


def test_reads_give_up_with_a_clear_error(fake):
    broker = broker_for(fake, attempts=3)
    fake.faults.fail_next = [503, 503, 503]
    with pytest.raises(BrokerUnavailableError, match="failed 3 times .*HTTP 503"):
        broker.account()


def test_buying_power_rejection_is_definitive(fake):
    broker = broker_for(fake)
    with pytest.raises(Exception, match="rejected order .*HTTP 403 insufficient buying power"):
        broker.submit(OrderRequest("r1:big", "SPY", 10_000_000.0))


def test_partial_fills_are_reported_per_execution(fake):
    broker = broker_for(fake)
    fake.faults.partial_fills = [0.4, 0.6]
    broker.submit(OrderRequest("r1:p", "SPY", 10.0))
    assert len(broker.fills()) == 0
    fake.clock.set(NEXT_OPEN)
    assert [f.quantity for f in broker.fills()] == pytest.approx([4.0])
    assert broker.order("r1:p").status == "partially_filled"
    fake.clock.set("2016-01-06 15:00Z")  # a DAY order's rest expires at the close
    assert [f.quantity for f in broker.fills()] == pytest.approx([4.0])
    assert broker.order("r1:p").status == "canceled"


@pytest.mark.parametrize(("outcome", "status"), [("rejected", "rejected"),
                                                  ("canceled", "canceled"),
                                                  ("expired", "canceled")])
def test_forced_outcomes_map_to_final_statuses(fake, outcome, status):
    broker = broker_for(fake)
    fake.faults.force_outcome = outcome
    broker.submit(OrderRequest("r1:f", "SPY", 1.0))
    fake.clock.set(NEXT_OPEN)
    assert broker.order("r1:f").status == status
    assert broker.fills() == [] and broker.positions() == {}


def test_a_vanished_order_still_counts_its_fills(fake):
    broker = broker_for(fake)
    broker.submit(OrderRequest("r1:v", "SPY", 3.0))
    fake.faults.disappear = {"r1:v"}
    fake.clock.set(NEXT_OPEN)
    fresh = broker_for(fake)  # a restarted process: no memory of the order id
    assert fresh.order("r1:v") is None
    fills = fresh.fills()
    assert len(fills) == 1 and fills[0].client_order_id.startswith("alpaca:")
    assert fills[0].quantity == 3.0


def test_fills_are_paged(fake):
    fake.faults.rate_limit_per_min = 0  # 130 orders in a second: the fake's limit is not the point
    broker = broker_for(fake, max_requests_per_min=100_000)
    for k in range(130):
        broker.submit(OrderRequest(f"r1:m{k}", "SPY", 1.0))
    fake.clock.set(NEXT_OPEN)
    fills = broker_for(fake).fills()
    assert len(fills) == 130 and len({f.execution_id for f in fills}) == 130


def test_clock_and_calendar_come_from_the_broker(fake):
    broker = broker_for(fake)
    import pandas as pd

    assert broker.clock() == pd.Timestamp(AFTER_CLOSE)
    days = broker.calendar(pd.Timestamp("2015-12-21"), pd.Timestamp("2015-12-31"))
    dates = [str(d[0]) for d in days]
    assert "2015-12-25" not in dates and "2015-12-24" in dates


def test_live_trading_host_is_refused():
    with pytest.raises(ConfigError, match="LIVE trading host"):
        AlpacaSpec(trading_url="https://api.alpaca.markets")


def test_missing_keys_name_the_variables(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        alpaca_keys({})
