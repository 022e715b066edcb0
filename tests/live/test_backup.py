"""live.backup: online backups of the state database, manifest checks, restore and retention."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import framework
import live.backup as backup
from framework.errors import BrokerError, ConfigError, DataError
from framework.paths import fw_home
from framework.registry import resolve_strategy
from live.backup import backup_store, restore_store, verify_backup
from live.command import PaperSpec, run_paper
from live.state import ERRORS, EVENTS, SCHEMA_VERSION, Store
from strategies import REGISTRY

RUN = "bk"
T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _paper(url: str, run_id: str = RUN, end: str = "2016-12-31") -> None:
    spec = PaperSpec(run_id=run_id, start="2016-01-01", end=end, db=url)
    run_paper(resolve_strategy("sma_cross", REGISTRY), spec, Store(url))


def _copy_db(source: Path, target: Path) -> None:
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)


def _counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A state database filled by a real sim paper session over 2016 (made once per module)."""
    home = tmp_path_factory.mktemp("fw_home_backup")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        _paper(f"sqlite:///{home}/paper.sqlite")
    out = home / "template.sqlite"
    _copy_db(home / "paper.sqlite", out)
    return out


@pytest.fixture
def db(template, tmp_path) -> tuple[str, Path]:
    """A private copy of the template: (URL, file)."""
    path = tmp_path / "state" / "fw.sqlite"
    path.parent.mkdir()
    _copy_db(template, path)
    return f"sqlite:///{path}", path


# -- backup ---------------------------------------------------------------------------------------
def test_backup_while_another_thread_writes_is_a_consistent_snapshot(db, template):
    url, _ = db
    writer, started, stop = Store(url), threading.Event(), threading.Event()
    written = []
    failures = []

    def write() -> None:
        # an event and an error in ONE transaction: a consistent snapshot has both or neither
        try:
            while not stop.is_set():
                i = len(written)
                with writer.engine.begin() as conn:
                    conn.execute(sa.insert(EVENTS).values(run_id=RUN, time="t", kind="tick",
                                                          message=str(i)))
                    conn.execute(sa.insert(ERRORS).values(run_id=RUN, time="t", message=str(i)))
                written.append(i)
                if i == 50:
                    started.set()
        except Exception as exc:  # surfaced by the main thread's assertion
            failures.append(exc)
            started.set()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        assert started.wait(20)
        result = backup_store(url)
        during = len(written)
    finally:
        stop.set()
        thread.join(20)
    writer.close()
    assert not failures
    copy = result.path / "state.sqlite"
    with closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        ticks = sorted(int(m) for (m,) in conn.execute(
            "SELECT message FROM events WHERE kind='tick'"))
        errors = sorted(int(m) for (m,) in conn.execute("SELECT message FROM errors"))
    # a prefix of the writer's sequence, the same in both tables: one point in time
    assert ticks == errors == list(range(len(ticks)))
    assert 51 <= len(ticks) <= during
    # the rows of the paper session are all there, and the manifest counts the file's rows
    expected = _counts(template)
    got = _counts(copy)
    assert {t: n for t, n in got.items() if t not in ("events", "errors")} == \
           {t: n for t, n in expected.items() if t not in ("events", "errors")}
    assert got["events"] == expected["events"] + len(ticks)
    assert result.manifest["row_counts"] == got


def test_manifest_describes_the_backup(db):
    url, _ = db
    model = fw_home() / "models" / "ridge" / "model.json"
    model.parent.mkdir(parents=True)
    model.write_text('{"alpha": 1.0}')
    result = backup_store(url, now=T0)
    assert result.path == fw_home() / "backups" / "20240102T030405Z"
    on_disk = json.loads((result.path / "manifest.json").read_text())
    assert on_disk == result.manifest
    assert on_disk["fw_version"] == framework.__version__
    assert on_disk["created_at"] == T0.isoformat()
    assert on_disk["source_url"] == url and on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["row_counts"]["bars"] == 252 and on_disk["row_counts"]["runs"] == 1
    assert on_disk["models"] is True
    assert set(on_disk["files"]) == {"state.sqlite", "models/ridge/model.json"}
    for rel, meta in on_disk["files"].items():
        data = (result.path / rel).read_bytes()
        assert meta == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    # a self-contained file (no -wal companion needed) and no temporary folder left behind
    with closing(sqlite3.connect(result.path / "state.sqlite")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert sorted(os.listdir(result.path)) == ["manifest.json", "models", "state.sqlite"]
    assert os.listdir(result.path.parent) == [result.path.name]
    assert "  model registry: copied" in result.lines()


def test_models_can_be_left_out_and_a_missing_registry_is_fine(db, tmp_path):
    url, _ = db
    (fw_home() / "models").mkdir()
    (fw_home() / "models" / "m.bin").write_bytes(b"x")
    result = backup_store(url, tmp_path / "out", include_models=False)
    assert result.path == (tmp_path / "out").resolve()
    assert result.manifest["models"] is False and set(result.manifest["files"]) == {"state.sqlite"}
    shutil.rmtree(fw_home() / "models")
    assert backup_store(url, tmp_path / "out2").manifest["models"] is False


def test_an_explicit_destination_must_be_new_or_empty(db, tmp_path):
    url, _ = db
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("user data")
    with pytest.raises(ConfigError, match="not an empty folder"):
        backup_store(url, full)
    assert os.listdir(full) == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (backup_store(url, empty).path / "manifest.json").is_file()


def test_retention_keeps_the_newest_n_in_the_default_folder_only(db, tmp_path):
    url, _ = db
    root = fw_home() / "backups"
    root.mkdir()
    (root / "my-notes").mkdir()  # not a backup: never touched
    made = [backup_store(url, now=T0 + timedelta(seconds=i), keep=3) for i in range(5)]
    left = sorted(p.name for p in root.iterdir())
    assert left == ["20240102T030407Z", "20240102T030408Z", "20240102T030409Z", "my-notes"]
    assert made[-1].removed == (made[1].path,)
    assert made[3].removed == (made[0].path,)
    # two backups in one second both survive under distinct names
    twin = backup_store(url, now=T0 + timedelta(seconds=4), keep=10)
    assert twin.path.name == "20240102T030409Z-2"
    # an explicit --to backup never prunes the default folder
    backup_store(url, tmp_path / "elsewhere", keep=1)
    assert len([p for p in root.iterdir() if p.name.startswith("2024")]) == 4
    with pytest.raises(ConfigError, match="keep=0"):
        backup_store(url, keep=0)


def test_a_read_only_destination_gives_a_clear_error_and_leaves_nothing(db, tmp_path):
    url, _ = db
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("chmod does not stop this user from writing (running as root)")
        target = locked / "bk"
        with pytest.raises(ConfigError, match="read-only or not writable") as info:
            backup_store(url, target)
        assert str(target) in str(info.value)
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


_FAILURES = {
    # what the step raised -> the fw error and the words it must use
    "disk full copying models": ("copytree", OSError(errno.ENOSPC, "No space left on device"),
                                 BrokerError, "no space left"),
    "disk full in SQLite": ("_snapshot", sqlite3.OperationalError("database or disk is full"),
                            BrokerError, "no space left"),
    "read-only file system": ("copytree", OSError(errno.EROFS, "Read-only file system"),
                              ConfigError, "read-only or not writable"),
    "read-only SQLite": ("_snapshot", sqlite3.OperationalError("attempt to write a readonly "
                                                               "database"),
                         ConfigError, "read-only or not writable"),
}


@pytest.mark.parametrize("case", sorted(_FAILURES))
def test_write_failures_are_named_and_leave_no_partial_backup(db, monkeypatch, case):
    url, _ = db
    (fw_home() / "models").mkdir()
    (fw_home() / "models" / "m.bin").write_bytes(b"x")
    step, raised, error, words = _FAILURES[case]

    def fail(*_args, **_kwargs):
        raise raised

    monkeypatch.setattr(backup.shutil if step == "copytree" else backup, step, fail)
    with pytest.raises(error, match=words) as info:
        backup_store(url, now=T0)
    assert str(fw_home() / "backups" / "20240102T030405Z") in str(info.value)
    assert info.value.__cause__ is raised
    assert os.listdir(fw_home() / "backups") == []


def test_non_sqlite_and_missing_databases_are_refused_clearly(tmp_path):
    for call in (lambda u: backup_store(u), lambda u: restore_store(tmp_path, u)):
        with pytest.raises(ConfigError) as info:
            call("postgresql://trader:s3cret@db.example/fw")
        text = str(info.value)
        assert "SQLite" in text and "pg_dump" in text and "postgresql" in text
        assert "s3cret" not in text and "***" in text
    with pytest.raises(ConfigError, match="in-memory"):
        backup_store("sqlite://")
    missing = tmp_path / "nope.sqlite"
    with pytest.raises(ConfigError, match="no state database"):
        backup_store(f"sqlite:///{missing}")
    assert not missing.exists()


# -- verification ---------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fraction=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_of_the_database_is_detected(db, fraction, bit):
    url, _ = db
    found = sorted((fw_home() / "backups").glob("*/state.sqlite")) if (
        fw_home() / "backups").is_dir() else []
    copy = found[0] if found else backup_store(url).path / "state.sqlite"
    data = bytearray(copy.read_bytes())
    at = int(fraction * len(data))
    data[at] ^= 1 << bit
    copy.write_bytes(bytes(data))
    try:
        with pytest.raises(DataError, match="damaged: state.sqlite has sha256"):
            verify_backup(copy.parent)
    finally:
        data[at] ^= 1 << bit
        copy.write_bytes(bytes(data))
    assert verify_backup(copy.parent)["database"] == "state.sqlite"


def test_missing_files_and_manifests_are_named(db, tmp_path):
    url, _ = db
    (fw_home() / "models").mkdir()
    (fw_home() / "models" / "m.bin").write_bytes(b"weights")
    path = backup_store(url).path
    (path / "models" / "m.bin").unlink()
    with pytest.raises(DataError, match="incomplete: models/m.bin is missing"):
        restore_store(path, url)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest.json is damaged"):
        restore_store(path, url)
    with pytest.raises(ConfigError, match="not a fw backup"):
        restore_store(tmp_path, url)


# -- restore --------------------------------------------------------------------------------------
def _more_writes(url: str) -> None:
    """After the backup: the run trades on into 2017 and a second run starts."""
    _paper(url, end="2017-03-31")
    Store(url).create_run("later", "sma_cross", ["GSPC"], {})


def test_restore_dry_run_lists_the_differences_and_changes_nothing(db):
    url, path = db
    snapshot = backup_store(url)
    _more_writes(url)
    before = _counts(path)
    plan = restore_store(snapshot.path, url)
    assert plan.dry_run and plan.aside is None and plan.changes
    assert plan.database == path.resolve()
    assert plan.backup_schema == plan.current_schema == SCHEMA_VERSION
    assert plan.runs_removed == ("later",) and plan.runs_added == ()
    (run_id, detail), = plan.runs_changed
    assert run_id == RUN and "last bar 2017-03-31" in detail and "-> 2016-12-30" in detail
    bars = next(t for t in plan.tables if t.table == "bars")
    assert bars.current == before["bars"] > bars.backup == 252
    text = "\n".join(plan.lines())
    assert "DRY RUN" in text and "run later: only in the current database, LOST" in text
    assert f"table bars: {before['bars']} -> 252 rows" in text and "--yes" in text
    assert _counts(path) == before
    assert not list(path.parent.glob("*.before-restore-*"))


def test_restore_brings_the_old_state_back_and_keeps_the_previous_database(db):
    url, path = db
    snapshot = backup_store(url)
    old_run = Store(url).run(RUN)
    _more_writes(url)
    newer = _counts(path)
    plan = restore_store(snapshot.path, url, dry_run=False)
    assert not plan.dry_run and plan.aside is not None and plan.aside.is_file()
    assert plan.aside.name.startswith("fw.sqlite.before-restore-")
    assert _counts(plan.aside) == newer
    store = Store(url)
    assert store.run(RUN)["last_bar"] == old_run["last_bar"] and store.run("later") is None
    assert _counts(path) == snapshot.manifest["row_counts"]
    assert any(str(plan.aside) in line for line in plan.lines())
    assert not restore_store(snapshot.path, url).changes


def test_restore_into_a_new_location_creates_the_database(db, tmp_path):
    url, _ = db
    snapshot = backup_store(url)
    fresh = tmp_path / "new" / "state.sqlite"
    plan = restore_store(snapshot.path, f"sqlite:///{fresh}")
    assert plan.current_schema is None and plan.runs_added == (RUN,) and not fresh.exists()
    done = restore_store(snapshot.path, f"sqlite:///{fresh}", dry_run=False)
    assert done.aside is None and Store(f"sqlite:///{fresh}").run(RUN)["strategy"] == "sma_cross"


def _reseal(folder: Path, sql: str, schema: int) -> None:
    """Edit a backup's database and rewrite its manifest to match (a consistent other backup)."""
    with closing(sqlite3.connect(folder / "state.sqlite")) as conn:
        conn.execute(sql)
        conn.commit()
    manifest = json.loads((folder / "manifest.json").read_text())
    data = (folder / "state.sqlite").read_bytes()
    manifest["files"]["state.sqlite"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                         "bytes": len(data)}
    manifest["schema_version"] = schema
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_an_older_backup_is_migrated_and_a_newer_one_refused(db):
    url, _ = db
    older = backup_store(url, now=T0).path
    _reseal(older, "DELETE FROM schema_version WHERE version = 2", 1)
    plan = restore_store(older, url, dry_run=False)
    assert plan.backup_schema == 1 and "migrations run after the restore" in plan.lines()[2]
    assert Store(url).schema_version() == SCHEMA_VERSION
    newer = backup_store(url, now=T0 + timedelta(seconds=1)).path
    _reseal(newer, "INSERT INTO schema_version VALUES (99, 'future', 'x')", 99)
    with pytest.raises(ConfigError, match="schema version 99; this fw knows up to"):
        restore_store(newer, url)
