"""The Webull adapter through the real SDK against the fake Webull server (TLS on 127.0.0.1):
SDK containment, signatures and the token flow, orders, fills, ids, and ``fw broker check``."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.errors import BrokerError, ConfigError
from live.broker import Broker, DuplicateOrderError, OrderRequest, UnknownOrderError
from live.webull import (
    MAX_CLIENT_ID,
    TEST_ENDPOINT,
    WebullBroker,
    WebullConnection,
    WebullCredentials,
    WebullSpec,
    checks,
    webull_order_id,
)
from tests.live.alpaca_helpers import spy_bars
from tests.live.fake_webull import ACCOUNT_ID, APP_KEY
from tests.live.webull_helpers import (
    advance_session,
    broker_for,
    connection,
    environment,
    fake_for,
    spec_for,
    webull_contract_broker,
)

START = "2016-01-04 12:00Z"
HISTORY = spy_bars("2015-06-01", "2016-03-31")
CID = "sma_cross:w1:20160104T210000Z:SPY"


@pytest.fixture
def fake():
    with fake_for(HISTORY, START) as server:
        server.faults.rate_limit_per_min = 0
        yield server


# -- containment ------------------------------------------------------------------------------
def test_rest_modules_import_no_protobuf_grpc_and_live_modules_import_no_sdk():
    code = (
        "import sys\n"
        "import live.webull, live.webull_sdk, live.paper_webull, live.webull_feed\n"
        "assert not any(m == 'webull' or m.startswith('webull.') for m in sys.modules), 'sdk'\n"
        "live.webull_sdk.load_sdk()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('google', 'grpc', 'paho')]\n"
        "assert not bad, bad\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=os.getcwd())
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_no_files_in_the_working_directory_and_the_token_lives_under_fw_home(
        fake, tmp_path, monkeypatch, caplog):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    caplog.set_level(logging.DEBUG, logger="live.webull.sdk")
    broker = broker_for(fake, tmp_path / "home")
    assert broker.order("nothing-here") is None  # a 404: the SDK logs an error with headers
    assert list(work.iterdir()) == []
    folder = tmp_path / "home" / "webull"
    assert (folder / "token.txt").read_text().splitlines()[2] == "NORMAL"
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    sdk_lines = [r.getMessage() for r in caplog.records if r.name == "live.webull.sdk"]
    assert any("ServerException" in line for line in sdk_lines)
    token = (folder / "token.txt").read_text().splitlines()[0]
    assert not any(token in line or APP_KEY in line for line in sdk_lines)
    noisy = logging.getLogger("webull.core.http.response")
    assert not [h for h in noisy.handlers if type(h) is logging.StreamHandler]
    # raw SDK records stop at the non-propagating "webull" logger (pytest >= 9 attaches its
    # capture handler to such loggers too, so they may show up in caplog under their own name)
    assert logging.getLogger("webull").propagate is False
    loud = [(r.name, r.levelname, r.getMessage()[:120]) for r in caplog.records
            if r.name == "live.webull.sdk" and "ServerException" in r.getMessage()
            and r.levelno != logging.DEBUG]
    assert loud == []


# -- signatures and tokens --------------------------------------------------------------------
def test_a_wrong_secret_is_refused_by_signature_check(fake, tmp_path):
    bad = WebullCredentials(APP_KEY, "not-the-secret", ACCOUNT_ID)
    with pytest.raises(ConfigError, match="Header x-signature is invalid"):
        WebullConnection(spec_for(fake), bad, home=tmp_path)
    assert fake.requests[-1]["status"] == 401


def test_token_waits_for_approval_in_the_app_then_is_reused(fake, tmp_path):
    fake.tokens.approval = "manual"
    with pytest.raises(ConfigError, match="waiting for approval.*Webull app"):
        connection(fake, tmp_path, token_wait=1, token_poll=1)
    stored = (tmp_path / "webull" / "token.txt").read_text().splitlines()
    assert stored[2] == "PENDING"
    fake.tokens.approve_all()  # the user confirms the login on the phone
    conn = connection(fake, tmp_path)
    assert (tmp_path / "webull" / "token.txt").read_text().splitlines()[0] == stored[0]
    assert conn.api.get_token() == stored[0]


def test_token_approved_while_the_sdk_polls(fake, tmp_path):
    fake.tokens.approval = "manual"
    fake.tokens.approve_after_checks = 1
    conn = connection(fake, tmp_path, token_wait=5, token_poll=1)
    assert WebullBroker(("SPY",), conn).account().cash == 100_000.0
    checks_made = [r for r in fake.requests if r["path"] == "/auth/tokens/check"]
    assert len(checks_made) == 1


def test_requests_without_a_valid_token_are_refused(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    fake.tokens.expire_all()
    with pytest.raises(BrokerError, match="INVALID_TOKEN"):
        broker.order(CID)


# -- spec -------------------------------------------------------------------------------------
def test_spec_defaults_to_the_test_environment_and_refuses_production():
    assert WebullSpec().host == TEST_ENDPOINT and WebullSpec().mode == "test"
    with pytest.raises(ConfigError, match="REAL MONEY"):
        WebullSpec(endpoint="api.webull.com")
    assert WebullSpec(endpoint="api.webull.com", live=True).mode == "LIVE"
    with pytest.raises(ConfigError, match="no known test environment"):
        WebullSpec(region="hk")
    with pytest.raises(ConfigError, match="region"):
        WebullSpec(region="mars")


@given(st.text(min_size=1, max_size=90))
def test_webull_ids_are_short_plain_and_deterministic(cid):
    wid = webull_order_id(cid)
    assert len(wid) <= MAX_CLIENT_ID and wid.replace("-", "").replace("_", "").isalnum()
    assert wid == webull_order_id(cid)
    assert webull_order_id(cid + "x") != wid or cid + "x" == wid


# -- orders and fills -------------------------------------------------------------------------
def test_market_order_fills_at_the_next_open_and_account_agrees(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    assert isinstance(broker, Broker)
    assert broker.clock() == fake.clock.now()
    sent = broker.submit(OrderRequest(CID, "SPY", 10.0))
    assert sent.status == "new" and sent.client_order_id == CID
    assert [o.client_order_id for o in broker.open_orders()] == [CID]
    advance_session(fake)
    seen = broker.order(CID)
    assert seen.status == "filled" and seen.filled_quantity == 10.0
    opening = float(HISTORY.between("2016-01-04", "2016-01-04").open[0, 0])
    assert seen.average_price == pytest.approx(opening)
    fills = broker.fills()
    assert [(f.client_order_id, f.quantity, f.time) for f in fills] == [
        (CID, 10.0, "2016-01-04T14:30:00+00:00")]
    assert broker.positions() == {"SPY": 10.0}
    account = broker.account()
    assert account.cash == pytest.approx(100_000 - 10 * opening)
    assert account.equity == pytest.approx(fake.market.equity())
    assert fake.orders()[0]["client_order_id"] == webull_order_id(CID)


def test_stop_and_limit_orders_and_cancel(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    broker.submit(OrderRequest("stop-1", "SPY", -5.0, stop_price=1000.004))
    broker.submit(OrderRequest("limit-1", "SPY", 5.0), limit_price=1000.0)
    sent = {o["client_order_id"]: o for o in fake.orders()}
    assert sent["stop-1"]["order_type"] == "stop" and sent["stop-1"]["stop_price"] == "1000"
    assert sent["limit-1"]["limit_price"] == "1000"
    canceled = broker.cancel("limit-1")
    assert canceled.status == "canceled" and not canceled.is_open
    assert broker.cancel("limit-1").status == "canceled"  # final: returned unchanged
    with pytest.raises(UnknownOrderError):
        broker.cancel("never-sent")
    assert broker.order("never-sent") is None


def test_a_known_client_id_is_a_duplicate_not_a_rejection(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    broker.submit(OrderRequest(CID, "SPY", 1.0))
    with pytest.raises(DuplicateOrderError, match="already has"):
        broker.submit(OrderRequest(CID, "SPY", 1.0))
    with pytest.raises(BrokerError, match="rejected.*ORDER_TICKER_NOT_FOUND"):
        broker.submit(OrderRequest("x-1", "NOPE", 1.0))
    assert len(fake.orders()) == 1


def test_open_orders_are_paged(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    for k in range(13):
        broker.submit(OrderRequest(f"lim-{k}", "SPY", 1.0), limit_price=100.0)
    assert sorted(o.client_order_id for o in broker.open_orders()) == sorted(
        f"lim-{k}" for k in range(13))
    pages = [r for r in fake.requests if r["path"] == "/trading/orders/open-orders/list"]
    assert len(pages) == 2 and pages[1]["query"]["pagination_key"] == "10"


def test_partial_fill_then_expiry_and_a_restart_count_each_share_once(fake, tmp_path):
    fake.faults.partial_fills = [0.4, 0.6]
    broker = broker_for(fake, tmp_path)
    broker.submit(OrderRequest(CID, "SPY", 10.0))
    advance_session(fake)  # 40% at the open, the rest expires with the DAY order
    first = broker.fills()
    assert [f.quantity for f in first] == [4.0]
    seen = broker.order(CID)
    assert seen.status == "canceled" and seen.filled_quantity == 4.0
    assert broker.fills() == first  # polling again adds nothing
    # a restarted process: the same fill gets the same id (the runner deduplicates by it) ...
    fresh = broker_for(fake, tmp_path)
    assert [f.execution_id for f in fresh.fills()] == [first[0].execution_id]
    # ... and with the store's fills as baseline nothing is new at all
    stored = [{"execution_id": f.execution_id, "client_order_id": f.client_order_id,
               "symbol": f.symbol, "quantity": f.quantity, "price": f.price,
               "commission": 0.0, "time": f.time} for f in first]
    seeded = broker_for(fake, tmp_path)
    seeded.seed_fills(stored)
    assert seeded.fills() == first
    assert fake.fills()[0]["price"] == pytest.approx(first[0].price)
    assert fake.positions()["SPY"] == 4.0


def test_orders_of_other_clients_are_reported_as_foreign(fake, tmp_path):
    broker = broker_for(fake, tmp_path)
    other = broker_for(fake, tmp_path)
    other.submit(OrderRequest("manual-7", "SPY", 3.0))
    advance_session(fake)
    long_id = "sma_cross:some-run-with-a-long-name:20160104T210000Z:SPY"
    broker.submit(OrderRequest(long_id, "SPY", 1.0))
    advance_session(fake)
    ids = sorted(f.client_order_id for f in broker.fills())
    assert ids == sorted([long_id, "webull:manual-7"])  # not this broker's: marked foreign
    assert not math.isnan(broker.order(long_id).average_price)


def test_contract_helper_yields_a_broker_and_a_session_advance(tmp_path):
    with webull_contract_broker(tmp_path, HISTORY, START, 50_000.0) as (broker, advance, _fake):
        assert broker.account().cash == 50_000.0
        broker.submit(OrderRequest("c-1", "SPY", 2.0))
        now = advance()
        assert now > pd.Timestamp(START) and broker.positions() == {"SPY": 2.0}


# -- fw broker check --------------------------------------------------------------------------
def _env(fake, tmp_path, **extra):
    return {**environment(fake), "FW_HOME": str(tmp_path / "home"), **extra}


def test_checks_pass_against_the_fake_and_say_the_mode(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
    found = checks(_env(fake, tmp_path), max_drift=1e9)  # the fake's clock is in 2016
    assert [c.step for c in found] == ["credentials", "reachable", "token", "account", "mode",
                                       "clock"]
    assert all(c.ok for c in found), found
    mode = {c.step: c.detail for c in found}["mode"]
    assert "TEST environment" in mode and "no real money" in mode.replace("move no real", "no real")
    assert "token.txt" in {c.step: c.detail for c in found}["token"]


def test_checks_explain_each_failure(fake, tmp_path, monkeypatch):
    monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
    missing = checks({"FW_HOME": str(tmp_path)})
    assert not missing[0].ok and "WEBULL_APP_KEY" in missing[0].detail
    assert all(c.detail.startswith("skipped:") for c in missing[1:])
    bad = checks(_env(fake, tmp_path, WEBULL_APP_SECRET="wrong"))
    assert bad[1].step == "reachable" and not bad[1].ok and "signature" in bad[1].detail
    wrong_account = checks(_env(fake, tmp_path, WEBULL_ACCOUNT_ID="NOPE"))
    account = {c.step: c for c in wrong_account}["account"]
    assert not account.ok and ACCOUNT_ID in account.detail
    live = checks(_env(fake, tmp_path, WEBULL_API_ENDPOINT="api.webull.com"))
    assert not live[0].ok and "REAL MONEY" in live[0].detail
    drift = {c.step: c for c in checks(_env(fake, tmp_path))}["clock"]
    assert not drift.ok and "NTP" in drift.detail
    fake.tokens.approval = "manual"
    pending = checks(_env(fake, tmp_path / "other"), token_wait=1)
    token = {c.step: c for c in pending}["token"]
    assert not token.ok and "Webull app" in token.detail
