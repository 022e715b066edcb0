"""Tests for live.uptime: the heartbeat that keeps a runner's health spans."""

from __future__ import annotations

import logging
import time

import pandas as pd
import pytest

from framework.errors import DataError
from live.uptime import Heartbeat, UptimeSpec, market_uptime

HOUR = 3600.0


def utc(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def span(started: str, last_beat: str, span_id: int = 1) -> dict:
    """A store row; times are UTC wall times like '2024-07-09 14:00'."""
    return {"id": span_id, "started_at": utc(started).isoformat(),
            "last_beat_at": utc(last_beat).isoformat(), "ended_at": None, "reason": None}


def spans(*pairs: tuple[str, str]) -> list[dict]:
    return [span(a, b, i) for i, (a, b) in enumerate(pairs, start=1)]


# ---------------------------------------------------------------------------------------------
# Heartbeat


class FakeStore:
    """In-memory span store; ``failures`` makes the next calls raise."""

    def __init__(self) -> None:
        self.rows: dict[int, dict] = {}
        self.failures = 0

    def _maybe_fail(self) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("disk full")

    def open_span(self, run_id: str, at: str) -> int:
        self._maybe_fail()
        span_id = len(self.rows) + 1
        self.rows[span_id] = {"id": span_id, "run_id": run_id, "started_at": at,
                              "last_beat_at": at, "ended_at": None, "reason": None}
        return span_id

    def extend_span(self, span_id: int, at: str) -> None:
        self._maybe_fail()
        self.rows[span_id]["last_beat_at"] = at

    def close_span(self, span_id: int, at: str, reason: str) -> None:
        self._maybe_fail()
        self.rows[span_id].update(last_beat_at=at, ended_at=at, reason=reason)

    def spans(self, run_id: str) -> list[dict]:
        return [dict(r) for r in self.rows.values() if r["run_id"] == run_id]


class FakeClock:
    def __init__(self, start: str = "2024-07-09 14:00") -> None:
        self.now = utc(start)

    def __call__(self) -> pd.Timestamp:
        return self.now

    def advance(self, seconds: float = 60.0) -> None:
        self.now = self.now + pd.Timedelta(seconds=seconds)


class Health:
    def __init__(self) -> None:
        self.ok = True

    def __call__(self) -> bool:
        return self.ok


def iso(text: str) -> str:
    return utc(text).isoformat()


@pytest.fixture
def rig():
    store, clock, health = FakeStore(), FakeClock(), Health()
    beat = Heartbeat(store, "r1", health, UptimeSpec(beat_seconds=3600.0), clock=clock)
    yield store, clock, health, beat
    beat.stop()


def test_healthy_beats_extend_one_span(rig):
    store, clock, _, beat = rig
    for _ in range(3):
        beat.beat()
        clock.advance(60)
    assert list(store.rows) == [1]
    assert store.rows[1]["started_at"] == iso("2024-07-09 14:00")
    assert store.rows[1]["last_beat_at"] == iso("2024-07-09 14:02")
    assert beat.span_id == 1 and beat.last_error is None


def test_unhealthy_closes_at_the_last_healthy_beat_and_recovery_opens_a_second_span(rig):
    store, clock, health, beat = rig
    beat.beat()
    clock.advance(60)
    beat.beat()  # 14:01
    clock.advance(60)
    health.ok = False
    beat.beat()  # 14:02: unhealthy
    assert store.rows[1]["ended_at"] == iso("2024-07-09 14:01")
    assert store.rows[1]["reason"] == "unhealthy"
    assert beat.span_id is None
    clock.advance(60)
    beat.beat()  # still unhealthy: nothing to do
    assert len(store.rows) == 1
    health.ok = True
    clock.advance(60)
    beat.beat()  # 14:04: recovered
    assert beat.span_id == 2
    assert store.rows[2]["started_at"] == iso("2024-07-09 14:04")
    assert market_uptime(store.spans("r1"), utc("2024-07-09"),
                         utc("2024-07-10")).healthy_seconds == 60.0


def test_start_opens_a_span_only_when_healthy_and_stop_closes_it():
    store, clock, health = FakeStore(), FakeClock(), Health()
    health.ok = False
    beat = Heartbeat(store, "r1", health, UptimeSpec(beat_seconds=3600.0), clock=clock).start()
    assert beat.running and store.rows == {}
    beat.stop()
    health.ok = True
    beat.start()
    assert beat.span_id == 1
    clock.advance(90)
    beat.stop()
    assert not beat.running and beat.span_id is None
    assert store.rows[1] == {"id": 1, "run_id": "r1", "started_at": iso("2024-07-09 14:00"),
                             "last_beat_at": iso("2024-07-09 14:01:30"),
                             "ended_at": iso("2024-07-09 14:01:30"), "reason": "stopped"}
    beat.stop()  # idempotent
    assert len(store.rows) == 1


def test_context_manager_closes_with_stopped_or_error():
    store, clock, health = FakeStore(), FakeClock(), Health()
    spec = UptimeSpec(beat_seconds=3600.0)
    with Heartbeat(store, "r1", health, spec, clock=clock) as beat:
        assert beat.running
    assert store.rows[1]["reason"] == "stopped"
    with pytest.raises(KeyError), Heartbeat(store, "r1", health, spec, clock=clock):
        raise KeyError("boom")
    assert store.rows[2]["reason"] == "error"


def test_store_error_is_logged_remembered_and_the_next_beat_works(rig, caplog):
    store, clock, _, beat = rig
    beat.start()
    store.failures = 1
    clock.advance(60)
    with caplog.at_level(logging.ERROR, logger="live.uptime"):
        beat.beat()
    assert isinstance(beat.last_error, OSError) and beat.failures == 1
    assert beat.running
    assert caplog.records and caplog.records[-1].exc_info is not None
    assert "r1" in caplog.records[-1].getMessage()
    clock.advance(60)
    beat.beat()
    assert store.rows[1]["last_beat_at"] == iso("2024-07-09 14:02")
    assert beat.span_id == 1 and beat.failures == 1


def test_a_failed_close_forgets_the_span_so_recovery_does_not_bridge_the_outage(rig):
    store, clock, health, beat = rig
    beat.beat()
    health.ok = False
    store.failures = 1
    clock.advance(60)
    beat.beat()  # close fails: the stored span keeps ending at its last beat
    assert isinstance(beat.last_error, OSError) and beat.span_id is None
    health.ok = True
    clock.advance(600)
    beat.beat()
    assert store.rows[1]["last_beat_at"] == iso("2024-07-09 14:00")
    assert store.rows[2]["started_at"] == iso("2024-07-09 14:11")


def test_a_raising_health_check_counts_as_unhealthy():
    store, clock, health = FakeStore(), FakeClock(), Health()

    def flaky() -> bool:
        if not health.ok:
            raise RuntimeError("feed object gone")
        return True

    beat = Heartbeat(store, "r1", flaky, clock=clock)
    beat.beat()
    health.ok = False
    clock.advance(60)
    beat.beat()
    assert isinstance(beat.last_error, RuntimeError)
    assert store.rows[1]["reason"] == "unhealthy"


def test_a_naive_clock_is_reported_not_raised():
    store = FakeStore()
    beat = Heartbeat(store, "r1", Health(), clock=lambda: pd.Timestamp("2024-07-09 14:00"))
    beat.beat()
    assert isinstance(beat.last_error, DataError) and store.rows == {}


def _wait_for(predicate, timeout: float = 1.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_the_thread_extends_the_span_and_survives_store_errors():
    store = FakeStore()
    beat = Heartbeat(store, "r1", Health(), UptimeSpec(beat_seconds=0.05))
    with beat:
        started = store.rows[1]["started_at"]
        assert _wait_for(lambda: store.rows[1]["last_beat_at"] > started)
        store.failures = 2
        assert _wait_for(lambda: beat.failures == 2)
        assert beat.running
        extended = store.rows[1]["last_beat_at"]
        assert _wait_for(lambda: store.rows[1]["last_beat_at"] > extended)
    assert not beat.running
    assert store.rows[1]["reason"] == "stopped" and len(store.rows) == 1
