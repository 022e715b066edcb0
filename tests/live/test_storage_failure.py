"""A state database that cannot be written stops trading cleanly (live.state, live.session).

Disk full is simulated with ``PRAGMA max_page_count`` (SQLITE_FULL once the file would grow),
read-only with ``PRAGMA query_only`` (SQLITE_READONLY), both set on every new connection of the
store's engine; low free space by faking ``shutil.disk_usage``. After the limit is lifted a fresh
:class:`Store` on the same file resumes the run, which must end exactly where an uninterrupted run
ends.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from framework.cli import main
from framework.data.calendars import xnys_sessions
from framework.errors import StorageError
from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.session import stop_on_storage_failure
from live.state import Store, storage_failure
from strategies import REGISTRY
from tests.live.helpers import bars, play, session

RUN = "r1"  # the run id of tests.live.helpers.session
DATA = bars(120, 2, 3)
SYMBOLS = ("AAA", "BBB")


@dataclass
class Alerts:
    """A recording alerter (the ``live.alerts.Alerter`` interface)."""

    sent: list

    def send(self, kind: str, title: str, body: str, level: str = "info") -> None:
        self.sent.append({"kind": kind, "title": title, "body": body, "level": level})

    def close(self, timeout: float = 30.0) -> None:
        return None


def _on_connect(store: Store, pragma: str) -> None:
    """Run ``pragma`` on every new connection of ``store`` (open ones are dropped)."""
    def apply(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(pragma)
        cursor.close()

    sa.event.listen(store.engine, "connect", apply)
    store.engine.dispose()


def _disk_full(store: Store, extra_pages: int = 0) -> None:
    with store.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    _on_connect(store, f"PRAGMA max_page_count={pages + extra_pages}")


def _state(store: Store, run_id: str = RUN) -> dict:
    """What a run ends with: positions, fills, orders, equity curve, last bar and status."""
    run = store.run(run_id)
    return {
        "positions": store.positions(run_id),
        "fills": [(f["execution_id"], f["client_order_id"], f["quantity"], f["price"],
                   f["commission"]) for f in store.fills(run_id)],
        "orders": [(o["client_order_id"], o["status"], o["quantity"], o["filled_quantity"])
                   for o in store.orders(run_id)],
        "equity": store.equity(run_id)[["time", "cash", "equity"]].values.tolist(),
        "last_bar": run["last_bar"], "status": run["status"], "kill_switch": run["kill_switch"],
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The final state of the run played without interruption."""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('ref')}/ref.sqlite")
    runner, _ = session(store, DATA.symbols)
    play(runner, DATA)
    return _state(store)


def _started(tmp_path: Path, prefix: int):
    """A run that processed the first ``prefix`` bars, on a file store."""
    store = Store(f"sqlite:///{tmp_path}/state.sqlite")
    runner, broker = session(store, DATA.symbols)
    play(runner, DATA.iloc(slice(0, prefix)))
    return store, runner, broker


def _resume(url: str) -> Store:
    """A new process after the disk was fixed: fresh store, restored broker, the whole feed."""
    store = Store(url)
    runner, _ = session(store, DATA.symbols)
    play(runner, DATA)
    return store


def _assert_stop_alert(alerts: Alerts, why: str) -> None:
    assert len(alerts.sent) == 1, alerts.sent
    alert = alerts.sent[0]
    assert alert["kind"] == "halt" and alert["level"] == "failure"
    assert alert["title"] == f"{RUN}: trading stopped, state database unwritable"
    assert why in alert["body"]


def _nothing_unstored_at_the_broker(broker, url: str) -> None:
    stored = {o["client_order_id"] for o in Store(url).orders(RUN)}
    assert set(broker.orders) <= stored, set(broker.orders) - stored


# -- (a) disk full --------------------------------------------------------------------------------
# prefix bars before the limit, spare pages: the write that fails moves with both (seen: the
# broker's state on a fill or a submit, save_bar, add_orders, commit_bar)
@pytest.mark.parametrize(("prefix", "extra"), [(10, 0), (10, 5), (40, 3), (70, 0), (70, 5)])
def test_disk_full_stops_the_runner_and_a_restart_finishes_like_no_stop(tmp_path, reference,
                                                                        prefix, extra):
    store, runner, broker = _started(tmp_path, prefix)
    _disk_full(store, extra)
    alerts = Alerts([])
    with pytest.raises(StorageError) as caught, stop_on_storage_failure(alerts, RUN):
        play(runner, DATA)
    message = str(caught.value)
    assert "the disk is full" in message and store.url in message and "restart fw paper" in message
    assert caught.value.exit_code == 74
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert prefix < runner.n_bars < DATA.n_bars  # stopped mid-run, after the limit
    _assert_stop_alert(alerts, "the disk is full")
    _nothing_unstored_at_the_broker(broker, store.url)
    store.close()
    assert _state(_resume(store.url)) == reference


def test_an_order_the_broker_took_but_could_not_persist_is_resent_once(tmp_path, reference):
    """The store turns read-only right after a bar's orders are stored: the sim broker accepts the
    first order in memory, then cannot persist it. The restarted broker never saw it; the
    stored order (status new) is sent again at the replayed bar, with the same id."""
    store = Store(f"sqlite:///{tmp_path}/state.sqlite")
    seen: list[str] = []

    def checkpoint(point: str, when: str) -> None:
        if point == "orders_stored" and store.orders(RUN, ("new",)) and not seen:
            seen.append(when)
            _on_connect(store, "PRAGMA query_only=1")

    runner, broker = session(store, DATA.symbols, checkpoint=checkpoint)
    alerts = Alerts([])
    with pytest.raises(StorageError, match="read-only"), stop_on_storage_failure(alerts, RUN):
        play(runner, DATA)
    _assert_stop_alert(alerts, "read-only")
    store.close()
    new = [o["client_order_id"] for o in Store(store.url).orders(RUN, ("new",))]
    assert new and new[0] in broker.orders  # sent before the failure, stored before sending
    _nothing_unstored_at_the_broker(broker, store.url)
    persisted = Store(store.url).broker_state(RUN)
    assert new[0] not in {o["client_order_id"] for o in persisted["orders"]}
    assert _state(_resume(store.url)) == reference


# -- (a) through run_paper and fw paper ---------------------------------------------------------
def _write_csv(folder: Path, first: str = "2015-01-02", last: str = "2015-06-30") -> Path:
    sessions, _, _ = xnys_sessions()
    days = sessions[(sessions >= first) & (sessions <= last)]
    rng = np.random.default_rng(11)
    folder.mkdir(parents=True, exist_ok=True)
    for symbol in SYMBOLS:
        close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, len(days))))
        open_ = close * np.exp(rng.normal(0.0, 0.005, len(days)))
        pd.DataFrame({
            "date": [str(d.date()) for d in days], "open": open_,
            "high": np.maximum(open_, close) * 1.01, "low": np.minimum(open_, close) * 0.99,
            "close": close, "volume": 1e6,
        }).to_csv(folder / f"{symbol}.csv", index=False)
    return folder


def _paper(store: Store, data: Path, end: str | None = None) -> None:
    spec = PaperSpec(run_id="p", symbols=SYMBOLS, data_dir=data, end=end, db=store.url,
                     sets=("fast=3", "slow=8"), backup_every="off")
    run_paper(resolve_strategy("sma_cross", REGISTRY), spec, store)


def test_run_paper_stops_on_a_full_disk_and_resumes_after(tmp_path, monkeypatch):
    alerts = Alerts([])
    monkeypatch.setattr("live.command.make_alerter", lambda store, run_id: alerts)
    data = _write_csv(tmp_path / "data")
    whole = Store(f"sqlite:///{tmp_path}/whole.sqlite")
    _paper(whole, data)
    alerts.sent.clear()
    store = Store(f"sqlite:///{tmp_path}/state.sqlite")
    _paper(store, data, end="2015-02-27")
    _disk_full(store)
    with pytest.raises(StorageError, match="the disk is full"):
        _paper(store, data)
    halts = [a for a in alerts.sent if a["kind"] == "halt"]
    assert [a["title"] for a in halts] == ["p: trading stopped, state database unwritable"]
    assert halts[0]["level"] == "failure"
    assert Store(store.url).run("p")["last_bar"] < whole.run("p")["last_bar"]
    store.close()
    resumed = Store(store.url)
    _paper(resumed, data)
    assert _state(resumed, "p") == _state(whole, "p")


def test_fw_paper_exits_74_on_a_full_disk(tmp_path, monkeypatch):
    data = _write_csv(tmp_path / "data", last="2015-04-30")
    store = Store(f"sqlite:///{tmp_path}/state.sqlite")
    _paper(store, data, end="2015-01-30")
    _disk_full(store)
    monkeypatch.setattr("live.cli._store", lambda db: store)
    result = CliRunner().invoke(main, ["paper", "--run-id", "p", "--data-dir", str(data),
                                       "--backup-every", "off", "--db", store.url])
    assert result.exit_code == 74, result.output + repr(result.exception)
    assert "the disk is full" in result.output and "Traceback" not in result.output


# -- (b) read-only --------------------------------------------------------------------------------
def test_a_read_only_database_stops_the_runner_naming_read_only(tmp_path, reference):
    store, runner, broker = _started(tmp_path, 40)
    _on_connect(store, "PRAGMA query_only=1")
    with pytest.raises(StorageError, match="read-only") as caught:
        store.event(RUN, "note", "a write")
    assert caught.value.exit_code == 74
    alerts = Alerts([])
    with pytest.raises(StorageError) as caught, stop_on_storage_failure(alerts, RUN):
        play(runner, DATA)
    assert "the database is read-only" in str(caught.value)
    assert runner.n_bars == 40  # the first write of bar 41 failed; nothing of it committed
    _assert_stop_alert(alerts, "read-only")
    _nothing_unstored_at_the_broker(broker, store.url)
    assert store.run(RUN)["last_bar"] == DATA.index[39].isoformat()  # reads still work
    store.close()
    assert _state(_resume(store.url)) == reference


def test_other_errors_pass_through_stop_on_storage_failure():
    alerts = Alerts([])
    with pytest.raises(ValueError, match="not storage"), stop_on_storage_failure(alerts, RUN):
        raise ValueError("not storage")
    assert alerts.sent == []


# -- (c) free disk space --------------------------------------------------------------------------
def _little_space(monkeypatch, free_mb: float) -> list[Path]:
    asked: list[Path] = []

    def disk_usage(path):
        asked.append(Path(path))
        return SimpleNamespace(total=2**40, used=2**40 - int(free_mb * 2**20),
                               free=int(free_mb * 2**20))

    monkeypatch.setattr("live.state.shutil.disk_usage", disk_usage)
    return asked


def _fw_paper(data: Path, run_id: str, *args):
    return CliRunner().invoke(main, ["paper", "sma_cross", "--symbols", ",".join(SYMBOLS),
                                     "--data-dir", str(data), "--end", "2015-02-27",
                                     "--backup-every", "off", "--run-id", run_id, *args])


def test_fw_paper_stops_with_74_when_free_space_is_low(tmp_path, monkeypatch):
    data = _write_csv(tmp_path / "data")
    asked = _little_space(monkeypatch, 10)
    result = _fw_paper(data, "low")
    assert result.exit_code == 74, result.output + repr(result.exception)
    assert "--min-free-mb" in result.output and "only 10 MiB free" in result.output
    assert "needs 100 MiB" in result.output and "Traceback" not in result.output
    store = Store()
    assert asked and asked[0] == store.database_path().parent
    # stopped before the first bar was written
    assert store.run("low")["last_bar"] is None and store.equity("low").empty
    assert store.load_bars("low", list(SYMBOLS)).n_bars == 0


@pytest.mark.parametrize("args", [("--min-free-mb", "0"), ("--min-free-mb", "5")])
def test_fw_paper_runs_when_the_check_is_off_or_satisfied(tmp_path, monkeypatch, args):
    data = _write_csv(tmp_path / "data")
    asked = _little_space(monkeypatch, 10)
    result = _fw_paper(data, "ok", *args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert Store().run("ok")["status"] == "finished"
    assert bool(asked) == (args[1] != "0")  # 0 disables the check: the disk is never asked


def test_check_space_errors_and_no_file(tmp_path, monkeypatch):
    def broken(path):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("live.state.shutil.disk_usage", broken)
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    with pytest.raises(StorageError, match="cannot read the free space of"):
        store.check_space(1)
    store.check_space(0)  # off: the disk is not asked
    Store("sqlite://").check_space(10**15)  # no file: nothing to check


# -- (d) classification -----------------------------------------------------------------------------
def _sqlite_error(message: str, code: int | None) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(("error", "why"), [
    (_sqlite_error("database or disk is full", 13), "the disk is full"),
    (_sqlite_error("attempt to write a readonly database", 8), "the database is read-only"),
    (_sqlite_error("disk I/O error", 10), "disk I/O error"),
    (_sqlite_error("anything", 13 | (1 << 8)), "the disk is full"),  # extended codes
    (_sqlite_error("attempt to write a readonly database", 8 | (4 << 8)),
     "the database is read-only"),  # SQLITE_READONLY_DBMOVED
    (_sqlite_error("disk I/O error", 10 | (3 << 8)), "disk I/O error"),  # SQLITE_IOERR_WRITE
    (_sqlite_error("database is locked", 5), None),  # busy: retry, not a broken disk
    (_sqlite_error("no such table: orders", 1), None),
    (_sqlite_error("database is locked", None), None),
    # no result code: the message decides
    (_sqlite_error("database or disk is full", None), "the disk is full"),
    (_sqlite_error("attempt to write a readonly database", None), "the database is read-only"),
    (OSError(28, "No space left on device"), "the disk is full"),
    (OSError(30, "Read-only file system"), "the database is read-only"),
    (RuntimeError("Disk I/O error while syncing"), "disk I/O error"),
    (ValueError("bad value"), None),
    (None, None),
])
def test_storage_failure_classification(error, why):
    assert storage_failure(error) == why


def test_real_sqlite_errors_are_classified(tmp_path):
    path = tmp_path / "c.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    ro = sqlite3.connect(path)
    ro.execute("PRAGMA query_only=1")
    with pytest.raises(sqlite3.OperationalError) as caught:
        ro.execute("INSERT INTO t VALUES (1)")
    assert storage_failure(caught.value) == "the database is read-only"
    ro.close()
    holder, other = sqlite3.connect(path, timeout=0), sqlite3.connect(path, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as caught:
        other.execute("BEGIN IMMEDIATE")
    assert str(caught.value) == "database is locked" and storage_failure(caught.value) is None
    holder.rollback()
    holder.close()
    other.close()


def test_a_locked_database_is_not_a_storage_error(tmp_path):
    """Only disk failures stop trading as storage errors: a lock stays SQLAlchemy's error."""
    store = Store(f"sqlite:///{tmp_path}/s.sqlite")
    holder = sqlite3.connect(tmp_path / "s.sqlite", timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    _on_connect(store, "PRAGMA busy_timeout=0")
    try:
        with pytest.raises(sa.exc.OperationalError, match="locked") as caught:
            store.event(RUN, "note", "a write")
        assert not isinstance(caught.value, StorageError)
    finally:
        holder.rollback()
        holder.close()

