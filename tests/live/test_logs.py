"""Structured rotating logs: routing, rotation, filters, follow, scrubbing, a real sim session."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError
from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.logs import (
    LogSpec,
    follow,
    format_line,
    log_files,
    open_logs,
    parse_since,
    read_logs,
)
from live.state import Store
from strategies import REGISTRY

RUN = "logs-run"
FILL = {"run_id": RUN, "execution_id": "x-1", "client_order_id": "c-1", "symbol": "SPY",
        "quantity": 10.0, "price": 412.5, "commission": 1.0, "slippage": 0.2, "impact": 0.0001,
        "time": "2024-05-01T20:00:00+00:00"}


def _lines(path: Path) -> list[dict]:
    """Every line of one file, parsed (fails on a line that is not JSON)."""
    if not path.exists():
        return []
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()]


def _event(logs, index: int, run_id: str = RUN, when: str | None = None, kind: str = "note") -> None:
    record = {"run_id": run_id, "kind": kind, "message": f"event {index:05d}"}
    if when is not None:
        record["time"] = when
    logs.listener("event", record)


def _store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    if getattr(store, "listeners", None) is None:  # before the integrator's hook lands
        store.listeners = []
    return store


# -- writing ------------------------------------------------------------------------------------
def test_listener_writes_each_record_as_json_to_its_category_files(tmp_path):
    with open_logs(LogSpec(directory=tmp_path), RUN) as logs:
        logs.listener("bar", {"run_id": RUN, "time": "2024-05-01T20:00:00+00:00",
                              "symbols": ["SPY", "QQQ"]})
        logs.listener("fill", dict(FILL))
        logs.listener("order", {"client_order_id": "c-1", "status": "filled"})
        _event(logs, 1, kind="start")
        _event(logs, 2, kind="reconcile_mismatch")
        logs.listener("error", {"run_id": RUN, "time": "2024-05-01T20:00:01+00:00",
                                "message": "broker down", "detail": "Traceback\n  boom"})

    data, trades = _lines(tmp_path / "data.log"), _lines(tmp_path / "trades.log")
    errors, everything = _lines(tmp_path / "errors.log"), _lines(tmp_path / "all.log")
    assert [(x["category"], x["kind"]) for x in data] == [("data", "bar")]
    assert data[0]["market_time"] == "2024-05-01T20:00:00+00:00"
    assert data[0]["symbols"] == ["SPY", "QQQ"]
    assert [x["kind"] for x in trades] == ["fill", "order"]
    assert trades[0]["price"] == 412.5 and trades[1]["status"] == "filled"
    assert [x["kind"] for x in errors] == ["reconcile_mismatch", "error"]
    assert [x["level"] for x in errors] == ["WARNING", "ERROR"]
    assert errors[1]["detail"] == "Traceback\n  boom"
    assert [x["kind"] for x in everything] == [
        "bar", "fill", "order", "start", "reconcile_mismatch", "error"]
    for line in everything:
        assert list(line)[:4] == ["time", "run_id", "category", "kind"]
        assert line["run_id"] == RUN  # the order record had none: the logs' run id fills it in
        assert parse_since(line["time"]).tzinfo is not None


def test_a_real_store_feeds_the_logs_and_close_detaches(tmp_path):
    store = _store(tmp_path)
    store.create_run(RUN, "sma_cross", ["SPY"], {})
    logs = open_logs(LogSpec(directory=tmp_path / "logs"), RUN).attach(store)
    store.event(RUN, "start", "hello")
    store.error(RUN, "it broke", "details")
    store.update_order("c-9", status="canceled")
    logs.close()
    store.event(RUN, "after", "not logged")

    assert store.listeners == []
    kinds = [x["kind"] for x in read_logs(tmp_path / "logs")]
    assert kinds == ["start", "error", "order"]
    assert [x["message"] for x in read_logs(tmp_path / "logs", "errors")] == ["it broke"]


def test_python_warnings_of_fw_loggers_go_to_errors_and_all(tmp_path):
    with open_logs(LogSpec(directory=tmp_path), RUN):
        logging.getLogger("live.feeds").warning("feed is %s", "late")
        logging.getLogger("alpaca.trading").error("http 500")
        logging.getLogger("live.feeds").info("chatty, below WARNING")
        logging.getLogger("somebody.else").error("not ours")
    logging.getLogger("live.feeds").warning("after close")

    errors = _lines(tmp_path / "errors.log")
    assert [(x["logger"], x["message"], x["level"]) for x in errors] == [
        ("live.feeds", "feed is late", "WARNING"), ("alpaca.trading", "http 500", "ERROR")]
    assert all(x["kind"] == "log" and x["run_id"] == RUN for x in errors)
    assert _lines(tmp_path / "all.log") == errors


def test_level_drops_records_below_it(tmp_path):
    with open_logs(LogSpec(directory=tmp_path, level="warning"), RUN) as logs:
        _event(logs, 1)
        logs.listener("fill", dict(FILL))
        _event(logs, 2, kind="halt")
    assert [x["kind"] for x in read_logs(tmp_path)] == ["halt"]


@pytest.mark.parametrize("values", [{"max_bytes": 0}, {"backups": 0}, {"level": "LOUD"},
                                    {"max_bytes": 1.5}])
def test_bad_spec_values_are_named(values):
    with pytest.raises(ConfigError, match=next(iter(values))):
        LogSpec(**values)


# -- rotation -----------------------------------------------------------------------------------
def test_rotation_keeps_every_line_in_order_while_backups_suffice(tmp_path):
    spec = LogSpec(directory=tmp_path, max_bytes=1000, backups=50)
    with open_logs(spec, RUN) as logs:
        for i in range(120):
            _event(logs, i)
    files = log_files(tmp_path, "all")
    assert len(files) > 5
    assert files[-1] == tmp_path / "all.log" and files[0].name.startswith("all.log.")
    assert all(p.stat().st_size <= 1000 for p in files)
    assert [x["message"] for x in read_logs(tmp_path)] == [f"event {i:05d}" for i in range(120)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(max_bytes=st.integers(300, 3000), backups=st.integers(1, 4), count=st.integers(1, 150))
def test_rotation_keeps_backups_files_and_a_contiguous_newest_suffix(max_bytes, backups, count):
    with tempfile.TemporaryDirectory() as folder:
        with open_logs(LogSpec(directory=Path(folder), max_bytes=max_bytes, backups=backups),
                       RUN) as logs:
            for i in range(count):
                _event(logs, i)
        files = log_files(folder, "all")
        assert 1 <= len(files) <= backups + 1
        got = [int(x["message"].split()[1]) for x in read_logs(folder)]
        assert got == list(range(count - len(got), count))  # nothing reordered, newest kept


# -- filters ------------------------------------------------------------------------------------
def test_since_and_run_id_filter_lines(tmp_path):
    now = datetime.now(UTC)
    with open_logs(LogSpec(directory=tmp_path), RUN) as logs:
        _event(logs, 0, "a", "2024-01-01T10:00:00+00:00")
        _event(logs, 1, "b", "2024-01-02T10:00:00+00:00")
        _event(logs, 2, "a", "2024-01-03T10:00:00+00:00")
        _event(logs, 3, "b", (now - timedelta(minutes=5)).isoformat())

    def ids(**kwargs) -> list[int]:
        return [int(x["message"].split()[1]) for x in read_logs(tmp_path, **kwargs)]

    assert ids() == [0, 1, 2, 3]
    assert ids(since="2024-01-02") == [1, 2, 3]
    assert ids(since=datetime(2024, 1, 2, 10, 0, 1)) == [2, 3]  # naive means UTC
    assert ids(since="2024-01-03T11:00Z") == [3]
    assert ids(since="1h") == [3]
    assert ids(since="2m") == []
    assert ids(run_id="a") == [0, 2]
    assert ids(run_id="b", since="2024-01-02T12:00:00+00:00") == [3]


def test_bad_since_and_category_say_what_is_expected(tmp_path):
    with pytest.raises(ConfigError, match="yesterday-ish.*duration"):
        list(read_logs(tmp_path, since="yesterday-ish"))
    with pytest.raises(ConfigError, match="Did you mean 'trades'"):
        list(read_logs(tmp_path, "trade"))
    assert list(read_logs(tmp_path / "missing", "all")) == []


def test_a_torn_line_is_skipped_with_a_warning(tmp_path, caplog):
    (tmp_path / "all.log").write_text('{"time": "2024-01-01T00:00:00+00:00", "kind": "a"}\n'
                                      '{"time": "2024-01-0', encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="live.logs"):
        assert [x["kind"] for x in read_logs(tmp_path)] == ["a"]
    assert "line 2" in caplog.text and "not a JSON log line" in caplog.text


# -- follow -------------------------------------------------------------------------------------
def test_follow_reads_across_several_rotations_between_polls(tmp_path):
    spec = LogSpec(directory=tmp_path, max_bytes=600, backups=20)
    with open_logs(spec, RUN) as logs:
        for i in range(3):
            _event(logs, i)
        deadline = time.monotonic() + 10.0  # a bug ends the iteration instead of hanging
        lines = follow(tmp_path, "all", poll=0.01, stop=lambda: time.monotonic() > deadline)
        assert [next(lines)["message"] for _ in range(3)] == [f"event {i:05d}" for i in range(3)]
        before = len(log_files(tmp_path, "all"))
        for i in range(3, 40):  # several rotations before the follower looks again
            _event(logs, i)
        assert len(log_files(tmp_path, "all")) >= before + 3
        got = [line["message"] for _, line in zip(range(3, 40), lines, strict=False)]
        lines.close()
    assert got == [f"event {i:05d}" for i in range(3, 40)]


def test_follow_in_a_thread_sees_appended_lines_and_survives_rotation(tmp_path):
    spec = LogSpec(directory=tmp_path, max_bytes=700, backups=3)
    seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        for line in follow(tmp_path, "errors", since="2000-01-01", poll=0.005, stop=done.is_set):
            seen.append(line["message"])

    with open_logs(spec, RUN) as logs:
        _event(logs, 0, kind="halt")
        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        expected = [f"event {i:05d}" for i in range(30)]
        for i in range(1, 30):
            _event(logs, i, kind="stale_data")
            _event(logs, i, kind="note")  # not an error: must not show up
            deadline = time.monotonic() + 5.0
            while len(seen) < i + 1 and time.monotonic() < deadline:
                time.sleep(0.002)
        done.set()
        thread.join(timeout=5.0)
    assert not thread.is_alive()
    assert seen == expected
    assert len(log_files(tmp_path, "errors")) == 4  # it did rotate (and dropped the oldest)


# -- secrets ------------------------------------------------------------------------------------
def test_secrets_and_apprise_credentials_never_reach_the_files(tmp_path, monkeypatch):
    secret = "TopSecretValue123456"
    token = "AbCdEfToken987654321"
    monkeypatch.setenv("APCA_API_SECRET_KEY", secret)
    monkeypatch.setenv("FW_APPRISE_URLS", f"discord://1234567/{token}")
    with open_logs(LogSpec(directory=tmp_path), RUN) as logs:
        _event(logs, 0, kind="halt")
        logs.listener("event", {"run_id": RUN, "kind": "note",
                                "message": f"key {secret} and discord://1234567/{token}"})
        logs.listener("error", {"run_id": RUN, "message": f"auth failed for {secret}",
                                "detail": "tgram://123456:BotTokenZZZ999/42 and "
                                          "mailtos://bob:hunter2pass@mail.example.com and "
                                          "https://alice:pw9secret@hooks.example.com/x"})
        logging.getLogger("live.alpaca").warning("rejected key %s", secret)
    text = "".join(p.read_text(encoding="utf-8") for p in tmp_path.iterdir())
    for leaked in (secret, token, "BotTokenZZZ999", "hunter2pass", "pw9secret"):
        assert leaked not in text
    assert "To****..." in text and "https://****@hooks.example.com/x" in text
    assert len(list(read_logs(tmp_path))) == 4


# -- display ------------------------------------------------------------------------------------
def test_format_line_is_one_readable_line(tmp_path):
    with open_logs(LogSpec(directory=tmp_path), RUN) as logs:
        logs.listener("fill", dict(FILL))
        logs.listener("error", {"run_id": RUN, "time": "2024-05-01T20:00:01+00:00",
                                "message": "broker down", "detail": "Traceback\n  boom"})
        logging.getLogger("framework.data").warning("gap in SPY")
    fill, error, log = (format_line(x) for x in read_logs(tmp_path))
    assert "SPY +10 @ 412.5000" in fill and "trades/fill" in fill and f"[{RUN}]" in fill
    assert error.startswith("2024-05-01 20:00:01 ERROR")
    assert error.endswith("broker down: Traceback | boom")
    assert log.endswith("framework.data: gap in SPY")
    assert all("\n" not in x for x in (fill, error, log))


# -- a real paper session -----------------------------------------------------------------------
def test_a_sim_paper_session_logs_exactly_the_stored_fills(tmp_path):
    store = _store(tmp_path)
    url = store.url
    logs = open_logs(LogSpec(directory=tmp_path / "logs"), RUN).attach(store)
    try:
        summary = run_paper(resolve_strategy("sma_cross", REGISTRY),
                            PaperSpec(run_id=RUN, start="2017-01-01", end="2017-06-30", db=url),
                            store)
    finally:
        logs.close()

    fills = []
    for line in read_logs(tmp_path / "logs", "trades", run_id=RUN):
        if line["kind"] == "fill":
            row = {k: v for k, v in line.items() if k not in ("time", "category", "kind", "level")}
            row["time"] = row.pop("market_time")
            fills.append(row)
    stored = store.fills(RUN)
    assert stored and len(fills) == summary.fills
    key = lambda row: row["execution_id"]  # noqa: E731
    assert sorted(fills, key=key) == sorted(stored, key=key)
    assert len(list(read_logs(tmp_path / "logs", "data"))) == summary.total_bars
    kinds = [x["kind"] for x in read_logs(tmp_path / "logs")]
    assert kinds[0] == "start" and kinds[-1] == "finish"
