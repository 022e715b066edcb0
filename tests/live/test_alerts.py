"""Alerts through apprise, delivered to a local HTTP receiver (json:// and form:// webhooks)."""

from __future__ import annotations

import json
import re
import socket
import time
from datetime import UTC, datetime
from types import MappingProxyType

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import live.alerts as alerts
from framework.errors import ConfigError
from framework.secrets import Secrets
from live.alerts import (
    ALL_KINDS,
    Alerter,
    AlertSpec,
    NullAlerter,
    format_daily_summary,
    format_fill,
    make_alerter,
    split_urls,
)
from live.state import Store
from tests.live.webhook import Receiver

NO_SECRETS = Secrets()
# apprise 1.x imports the deprecated imghdr module (its PGP helper), not something fw does
pytestmark = pytest.mark.filterwarnings("ignore:'imghdr' is deprecated:DeprecationWarning")


def secrets(**values: str) -> Secrets:
    return Secrets(MappingProxyType(values), MappingProxyType(dict.fromkeys(values, "test")))


@pytest.fixture
def receiver(monkeypatch):
    # a proxy configured in the environment must not see (or swallow) local requests
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def alerter(urls, failures=None, clock=time.monotonic, **spec) -> Alerter:
    """An Alerter on ``urls`` without secrets to scrub; failures are appended to ``failures``."""
    spec.setdefault("timeout", 3.0)
    on_failure = None if failures is None else lambda title, reason: failures.append((title, reason))
    return Alerter(AlertSpec(urls=tuple(urls), **spec), on_failure, clock=clock,
                   secrets=NO_SECRETS)


# -- delivery ---------------------------------------------------------------------------------
def test_every_kind_is_delivered_as_json(receiver):
    with alerter([receiver.url("json", "hook")]) as sender:
        for kind in sorted(ALL_KINDS):
            sender.send(kind, f"{kind} title", f"{kind} body")
        assert sender.flush(10)
        posts = receiver.at("hook")
        assert sorted(p["title"] for p in posts) == sorted(f"{k} title" for k in ALL_KINDS)
        assert {p["message"] for p in posts} == {f"{k} body" for k in ALL_KINDS}
        assert {p["type"] for p in posts} == {"info"}
        assert [r["ok"] for r in sender.sent] == [True] * len(ALL_KINDS)
        assert {r["kind"] for r in sender.sent} == ALL_KINDS


def test_form_webhook_and_levels_map_to_apprise_types(receiver):
    with alerter([receiver.url("form", "form")]) as sender:
        sender.send("halt", "trading halted", "positions differ", level="failure")
        sender.send("breaker", "breaker REDUCING", "drawdown 12%", level="warning")
        assert sender.flush(10)
    posts = {p["title"]: p for p in receiver.at("form")}
    assert posts["trading halted"]["type"] == "failure"
    assert posts["trading halted"]["message"] == "positions differ"
    assert posts["breaker REDUCING"]["type"] == "warning"


def test_one_alert_goes_to_every_url(receiver):
    with alerter([receiver.url("json", "a"), receiver.url("form", "b")]) as sender:
        sender.send("rebalance", "rebalanced", "3 orders")
        assert sender.flush(10)
    assert [p["title"] for p in receiver.at("a")] == ["rebalanced"]
    assert [p["title"] for p in receiver.at("b")] == ["rebalanced"]


def test_kinds_not_selected_are_not_sent(receiver):
    with alerter([receiver.url("json", "k")], kinds=frozenset({"trade", "error"})) as sender:
        sender.send("heartbeat", "alive", "ok")
        sender.send("summary", "day", "fine")
        sender.send("trade", "BUY 1 AAPL", "filled")
        assert sender.flush(10)
        assert [p["title"] for p in receiver.at("k")] == ["BUY 1 AAPL"]
        assert [r["kind"] for r in sender.sent] == ["trade"]


@pytest.mark.parametrize("make", [lambda: alerter([]), NullAlerter])
def test_unknown_kind_or_level_is_a_value_error_naming_the_choices(make):
    sender = make()
    with pytest.raises(ValueError, match="trade") as info:
        sender.send("trades", "t", "b")
    assert "Did you mean 'trade'" in str(info.value)
    with pytest.raises(ValueError, match="info, warning") as info:
        sender.send("trade", "t", "b", level="critical")
    assert isinstance(info.value, ConfigError)
    sender.close()


def test_null_alerter_and_alerts_off_do_nothing():
    null = make_alerter(AlertSpec())
    assert isinstance(null, NullAlerter)
    null.send("trade", "t", "b")
    assert null.flush() is True and null.sent == []
    off = alerter([])  # an Alerter without URLs: no worker, nothing recorded
    off.send("trade", "t", "b")
    assert off.flush(1) and off.sent == []
    off.close()


# -- failures ---------------------------------------------------------------------------------
def test_http_500_calls_on_failure_and_never_raises(receiver):
    failures: list = []
    with alerter([receiver.url("json", "fail")], failures) as sender:
        sender.send("error", "order rejected", "insufficient buying power", level="failure")
        assert sender.flush(10)
        assert len(receiver.at("fail")) == 1
        assert sender.sent[-1]["ok"] is False
    assert len(failures) == 1
    title, reason = failures[0]
    assert title == "order rejected"
    assert "500" in reason and reason.startswith("json://")


def test_unreachable_url_calls_on_failure(receiver):
    failures: list = []
    url = f"json://127.0.0.1:{closed_port()}/nobody"
    with alerter([url, receiver.url("json", "up")], failures) as sender:
        sender.send("trade", "SELL 2 MSFT", "filled")
        assert sender.flush(10)
    assert len(failures) == 1
    assert failures[0][0] == "SELL 2 MSFT"
    assert "connection" in failures[0][1].lower()
    # the other destination still got it
    assert [p["title"] for p in receiver.at("up")] == ["SELL 2 MSFT"]


def test_failure_without_callback_is_logged(receiver, caplog):
    with alerter([receiver.url("json", "fail")]) as sender:
        sender.send("error", "boom", "detail")
        assert sender.flush(10)
    assert any("'boom' not delivered" in r.getMessage() for r in caplog.records)


def test_a_raising_on_failure_does_not_stop_the_worker(receiver, caplog):
    def explode(title, reason):
        raise RuntimeError("callback bug")

    sender = Alerter(AlertSpec(urls=(receiver.url("json", "fail"), receiver.url("json", "ok"))),
                     explode, secrets=NO_SECRETS)
    sender.send("error", "first", "b")
    assert sender.flush(10)
    sender.send("error", "second", "b")
    assert sender.flush(10)
    sender.close()
    assert [p["title"] for p in receiver.at("ok")] == ["first", "second"]
    assert any("on_failure raised" in r.getMessage() for r in caplog.records)


def test_send_after_close_reports_instead_of_dropping(receiver):
    failures: list = []
    sender = alerter([receiver.url("json", "c")], failures)
    sender.close()
    sender.close()  # idempotent
    sender.send("trade", "late", "b")
    assert failures == [("late", "the alerter was closed; alert not sent")]
    assert receiver.at("c") == []


# -- flush, close, history --------------------------------------------------------------------
def test_flush_times_out_on_a_slow_receiver_then_completes(receiver):
    with alerter([receiver.url("json", "slow")]) as sender:
        sender.send("summary", "day", "b")
        assert sender.flush(0.05) is False
        assert sender.flush(10) is True
        assert [p["title"] for p in receiver.at("slow")] == ["day"]


def test_close_delivers_what_is_queued(receiver):
    sender = alerter([receiver.url("json", "q")])
    for n in range(5):
        sender.send("trade", f"t{n}", "b")
    sender.close()
    assert sorted(p["title"] for p in receiver.at("q")) == [f"t{n}" for n in range(5)]


def test_sent_history_is_bounded(receiver, monkeypatch):
    monkeypatch.setattr(alerts, "HISTORY", 3)
    with alerter([receiver.url("json", "h")]) as sender:
        for n in range(5):
            sender.send("trade", f"t{n}", "b")
        assert sender.flush(10)
        assert [r["title"] for r in sender.sent] == ["t2", "t3", "t4"]


# -- coalescing -------------------------------------------------------------------------------
def test_identical_alerts_in_the_window_are_sent_once_and_counted(receiver):
    clock = FakeClock()
    sender = alerter([receiver.url("json", "w")], min_interval=60.0, clock=clock)
    for n in range(3):
        clock.now = float(n)
        sender.send("error", "feed stalled", f"attempt {n}")
    sender.send("error", "other error", "x")  # another title is not coalesced
    sender.send("trade", "feed stalled", "x")  # nor another kind
    assert sender.flush(10)
    titles = [p["title"] for p in receiver.at("w")]
    assert sorted(titles) == ["feed stalled", "feed stalled", "other error"]
    clock.now = 61.0
    assert sender.flush(10)  # the window ended: its count is reported
    report = [p for p in receiver.at("w") if p["title"] == "feed stalled (x2 more)"]
    assert len(report) == 1
    assert "2 more alert(s)" in report[0]["message"] and "attempt 2" in report[0]["message"]
    sender.send("error", "feed stalled", "again")  # a new window: sent at once
    sender.close()
    assert [p["message"] for p in receiver.at("w")][-1] == "again"


def test_close_reports_counts_of_open_windows(receiver):
    clock = FakeClock()
    sender = alerter([receiver.url("json", "o")], min_interval=3600.0, clock=clock)
    sender.send("breaker", "breaker HALTED", "a")
    sender.send("breaker", "breaker HALTED", "b")
    sender.close()
    assert [p["title"] for p in receiver.at("o")] == ["breaker HALTED", "breaker HALTED (x1 more)"]


def test_the_worker_reports_a_quiet_window_by_itself(receiver):
    sender = alerter([receiver.url("json", "tick")], min_interval=0.1)
    sender.send("heartbeat", "alive", "1")
    sender.send("heartbeat", "alive", "2")
    deadline = time.monotonic() + 5.0
    while len(receiver.at("tick")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # no flush: the worker's own timer must close the window
    assert [p["title"] for p in receiver.at("tick")] == ["alive", "alive (x1 more)"]
    sender.close()


def _accounted(records) -> int:
    """Alerts a list of delivered records stands for: each one, plus the counts it reports."""
    total = 0
    for r in records:
        more = re.search(r"\(x(\d+) more\)$", r["title"])
        note = re.search(r"\((\d+) similar alert\(s\) coalesced", r["body"])
        total += int(more.group(1)) if more else 1 + (int(note.group(1)) if note else 0)
    return total


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 8.0)), min_size=1, max_size=12))
def test_coalescing_never_loses_an_alert(receiver, steps):
    clock = FakeClock()
    sender = alerter([receiver.url("json", "p")], min_interval=5.0, clock=clock)
    for title, wait in steps:
        clock.now += wait
        sender.send("error", f"title {title}", f"body at {clock.now}")
    sender.close()
    assert _accounted(sender.sent) == len(steps)
    # the caller's own sends of one title are at least a window apart
    for title in {f"title {t}" for t, _ in steps}:
        times = [float(re.match(r"body at (\S+)", r["body"]).group(1))
                 for r in sender.sent if r["title"] == title]
        assert times and all(b - a >= 5.0 for a, b in zip(times, times[1:], strict=False))


# -- secrets ----------------------------------------------------------------------------------
def test_secrets_are_scrubbed_before_anything_is_sent(receiver, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    key_id, secret = "PKTESTKEYID12345", "sEcReT/value+0123456789abcdef"
    monkeypatch.setenv("APCA_API_KEY_ID", key_id)
    monkeypatch.setenv("APCA_API_SECRET_KEY", secret)
    url = receiver.url("json", "s/tok3nSECRETpath42")
    failures: list = []
    sender = Alerter(AlertSpec(urls=(url,)), lambda t, r: failures.append((t, r)))
    sender.send("error", f"auth failed for {key_id}",
                f"headers: APCA-API-SECRET-KEY={secret}; webhook {url}; token tok3nSECRETpath42")
    sender.close()
    posts = receiver.at("s/tok3nSECRETpath42")
    assert len(posts) == 1
    seen = [{k: v for k, v in p.items() if k != "path"} for p in posts]  # path: the URL itself
    everything = json.dumps([seen, sender.sent, failures, repr(sender.spec)])
    for value in (key_id, secret, "tok3nSECRETpath42"):
        assert value not in everything
    assert "PK****..." in posts[0]["title"] and "sE****..." in posts[0]["message"]
    assert failures == []


# -- configuration ----------------------------------------------------------------------------
def test_from_environment_splits_on_whitespace_and_commas():
    raw = ("json://a.example.com/x, form://b.example.com/y\n  json://c.example.com/z,"
           "mailto://user:pass@example.com?to=a@example.com,b@example.com ,")
    spec = AlertSpec.from_environment(secrets(FW_APPRISE_URLS=raw), kinds=["trade", "halt"])
    assert spec.urls == (
        "json://a.example.com/x", "form://b.example.com/y", "json://c.example.com/z",
        "mailto://user:pass@example.com?to=a@example.com,b@example.com",
    )
    assert spec.kinds == frozenset({"trade", "halt"}) and spec.enabled
    assert "example" not in repr(spec)
    assert split_urls("  ") == ()


def test_from_environment_unset_turns_alerts_off():
    spec = AlertSpec.from_environment(NO_SECRETS)
    assert spec.urls == () and not spec.enabled and spec.kinds == ALL_KINDS
    assert isinstance(make_alerter(spec), NullAlerter)


def test_from_environment_reads_the_process_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FW_APPRISE_URLS", "json://h.example.com/a,json://h.example.com/b")
    assert len(AlertSpec.from_environment().urls) == 2


def test_a_bad_url_is_named_masked():
    raw = "json://ok.example.com/x notascheme://sEcReTtoken123/abc"
    with pytest.raises(ConfigError) as info:
        AlertSpec.from_environment(secrets(FW_APPRISE_URLS=raw))
    message = str(info.value)
    assert "entry 2 of 2" in message and "notascheme://sE****..." in message
    assert "sEcReTtoken123" not in message


@pytest.mark.parametrize("kwargs, match", [
    ({"min_interval": -1.0}, "min_interval = -1.0"),
    ({"timeout": 0.0}, "timeout = 0.0"),
    ({"kinds": frozenset({"trade", "fills"})}, "unknown alert kind 'fills'"),
    ({"urls": "json://x.example.com"}, "tuple of apprise URL strings"),
])
def test_alert_spec_rejects_bad_values(kwargs, match):
    with pytest.raises(ConfigError, match=re.escape(match)):
        AlertSpec(**kwargs)


# -- formatters -------------------------------------------------------------------------------
FILL = {"execution_id": "e1", "client_order_id": "sma:r1:20240102:AAPL", "symbol": "AAPL",
        "quantity": -12.0, "price": 187.5, "commission": 1.25, "slippage": 0.5, "impact": 0.25,
        "time": "2024-01-02T14:30:00+00:00"}


def test_format_fill():
    title, body = format_fill(FILL)
    assert title == "SELL 12 AAPL @ $187.50"
    assert "notional $2,250.00" in body
    assert "commission $1.25, slippage $0.50, impact $0.25 (total $2.00)" in body
    assert "sma:r1:20240102:AAPL" in body and "2024-01-02T14:30:00+00:00" in body
    title, _ = format_fill({**FILL, "quantity": 0.5, "price": 10.0})
    assert title == "BUY 0.5 AAPL @ $10.00"


def _fill(symbol, qty, when, cost=0.0):
    return {**FILL, "symbol": symbol, "quantity": qty, "time": when, "commission": cost,
            "slippage": 0.0, "impact": 0.0}


def test_format_daily_summary_numbers():
    equity = pd.DataFrame({
        "run_id": "r1",
        "time": ["2024-01-01T21:00:00+00:00", "2024-01-02T15:00:00+00:00",
                 "2024-01-02T21:00:00+00:00"],
        "cash": [0.0, 0.0, 0.0], "equity": [100_000.0, 100_500.0, 99_000.0],
    })
    fills = [_fill("AAPL", 10, "2024-01-01T14:30:00+00:00", 5.0),
             _fill("AAPL", -4, "2024-01-02T14:30:00+00:00", 1.0),
             _fill("MSFT", 5, "2024-01-02T14:30:00+00:00", 2.0),
             _fill("NVDA", 3, "2024-01-01T14:30:00+00:00"),
             _fill("NVDA", -3, "2024-01-02T14:30:00+00:00", 0.5)]
    events = [{"time": "2024-01-02T21:01:00+00:00", "kind": "error", "message": "x"},
              {"time": "2024-01-02T21:01:00+00:00", "message": "order rejected", "detail": "d"},
              {"time": "2024-01-01T21:01:00+00:00", "kind": "error", "message": "old"},
              {"time": "2024-01-02T21:01:00+00:00", "kind": "risk:stop", "message": "AAPL"}]
    run = {"run_id": "r1", "strategy": "sma_cross", "kill_switch": "ACTIVE", "breaker": "REDUCING"}
    title, body = format_daily_summary(run, equity, fills, events)
    assert title == "r1 2024-01-02: -$1,000.00 (-1.00%)"
    assert "equity: $99,000.00" in body
    assert "positions: 2 (AAPL 6, MSFT 5)" in body
    assert "fills today: 3, costs $3.50" in body
    assert "kill switch ACTIVE, breaker REDUCING; risk events today: 1" in body
    assert "errors today: 2" in body
    title, _ = format_daily_summary(run, equity, fills, events, day="2024-01-01")
    assert title == "r1 2024-01-01: +$0.00 (+0.00%)"


def test_format_daily_summary_without_equity():
    empty = pd.DataFrame(columns=["run_id", "time", "cash", "equity"])
    title, body = format_daily_summary({"run_id": "r9", "kill_switch": "HALTED"}, empty, [], [])
    assert "no equity snapshot yet" in title
    assert "positions: 0" in body and "kill switch HALTED" in body


def test_format_daily_summary_reads_store_shapes(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'fw.sqlite'}")
    today = datetime.now(UTC).date().isoformat()
    store.create_run("r1", "sma_cross", ["AAPL"], {})
    store.commit_bar("r1", f"{today}T14:00:00+00:00", [], {}, (50_000.0, 100_000.0), None)
    store.record_fill("r1", {**FILL, "quantity": 10.0, "time": f"{today}T14:30:00+00:00"},
                      10.0, None)
    store.commit_bar("r1", f"{today}T21:00:00+00:00", [], {}, (48_000.0, 100_250.0), None)
    store.error("r1", "cancel failed", "broker said no")
    title, body = format_daily_summary(store.run("r1"), store.equity("r1"), store.fills("r1"),
                                       store.events("r1") + store.errors("r1"), day=today)
    store.close()
    assert title == f"r1 {today}: +$250.00 (+0.25%)"
    assert "positions: 1 (AAPL 10)" in body and "fills today: 1, costs $2.00" in body
    # events carry the wall clock's time: the start event is not an error, the error row is
    assert "errors today: 1" in body and "kill switch ACTIVE" in body
