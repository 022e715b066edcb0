"""Consistent online backups of the live state database (``fw backup``, ``fw restore``).

A backup is a folder holding ``state.sqlite`` (a snapshot taken with SQLite's online backup
API, so the runner may keep writing meanwhile: in WAL mode readers never block the writer and
the copy is one read transaction, hence one consistent point in time), a copy of the model
registry ``FW_HOME/models`` when it exists, and ``manifest.json`` (source URL with any password
masked, schema version, row counts per table, sha256 and size of every file, fw version, time).

The folder is written under a hidden temporary name beside its destination and renamed only
when complete, so a disk-full or crashed backup never looks like a good one. Default
destination ``FW_HOME/backups/<UTC time>/``; there the newest ``keep`` backups are kept.

A restore checks the manifest and every hash first, describes what would change (runs, row
counts, schema versions) as a :class:`RestorePlan`, and only when asked sets the current database
aside (``<db>.before-restore-<time>``), copies the backup in with the same backup API and re-opens
:class:`~live.state.Store` so migrations bring an older backup up to this fw's schema.

Only SQLite is supported: other databases have their own dump tools (``pg_dump``,
``mysqldump``), which know their engine better than fw can.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

import framework
from framework.errors import BrokerError, ConfigError, DataError, FwError
from framework.paths import fw_home
from live.state import SCHEMA_VERSION, Store, default_url

MANIFEST = "manifest.json"
DATABASE_FILE = "state.sqlite"
MODELS_DIR = "models"
MANIFEST_FORMAT = 1
DEFAULT_KEEP = 14
_STAMP = "%Y%m%dT%H%M%SZ"
_BACKUP_NAME = re.compile(r"^\d{8}T\d{6}Z(-\d+)?$")
_CHUNK = 1 << 20
# a snapshot copy should never wait long for a lock: the runner holds write locks for
# milliseconds, so a lock held this long means something else is wrong
_BUSY_SECONDS = 30.0


@dataclass(frozen=True)
class BackupResult:
    """A finished backup.

    Parameters
    ----------
    path : Path
        The backup folder (complete: it was renamed into place after every file was written).
    manifest : Mapping
        The contents of its ``manifest.json``.
    removed : tuple of Path
        Older backups deleted by the retention rule (default folder only).
    """

    path: Path
    manifest: Mapping[str, Any]
    removed: tuple[Path, ...] = ()

    def lines(self) -> list[str]:
        """A short human-readable summary, one string per line."""
        m = self.manifest
        rows = sum(m["row_counts"].values())
        size = sum(f["bytes"] for f in m["files"].values())
        out = [f"backup written to {self.path}",
               f"  database {m['source_url']} (schema version {m['schema_version']}): "
               f"{len(m['row_counts'])} tables, {rows} rows",
               f"  model registry: {'copied' if m['models'] else 'none found'}",
               f"  {len(m['files'])} files, {size:,} bytes, sha256 in {MANIFEST}"]
        out += [f"  removed old backup {p}" for p in self.removed]
        return out


@dataclass(frozen=True)
class TableCount:
    """Rows of one table in the current database and in the backup (0 when absent)."""

    table: str
    current: int
    backup: int


@dataclass(frozen=True)
class RestorePlan:
    """What a restore would change (``dry_run``) or changed.

    Runs are named from the restore's point of view: ``runs_added`` exist only in the backup
    (the restore brings them back), ``runs_removed`` exist only in the current database (the
    restore drops them), ``runs_changed`` differ (detail text says how).
    """

    backup_dir: Path
    database: Path
    url: str
    backup_created: str
    backup_schema: int
    current_schema: int | None
    runs_added: tuple[str, ...]
    runs_removed: tuple[str, ...]
    runs_changed: tuple[tuple[str, str], ...]
    tables: tuple[TableCount, ...]
    models_in_backup: bool
    dry_run: bool = True
    aside: Path | None = None

    @property
    def changes(self) -> bool:
        """True when restoring would change the database's contents."""
        return bool(self.runs_added or self.runs_removed or self.runs_changed
                    or any(t.current != t.backup for t in self.tables))

    def lines(self) -> list[str]:
        """The plan as human-readable lines (what ``fw restore`` prints)."""
        head = ("DRY RUN, nothing changed: restoring would replace" if self.dry_run
                else "restored")
        current = "none (no database yet)" if self.current_schema is None else self.current_schema
        out = [f"{head} {self.database} ({self.url})",
               f"  from backup {self.backup_dir} taken {self.backup_created}",
               f"  schema version: current {current}, backup {self.backup_schema}, "
               f"this fw {SCHEMA_VERSION}"
               + (" (migrations run after the restore)" if self.backup_schema < SCHEMA_VERSION
                  else "")]
        if not self.changes:
            out.append("  contents: identical row counts and runs")
        out += [f"  run {r}: only in the backup, comes back" for r in self.runs_added]
        out += [f"  run {r}: only in the current database, LOST by the restore"
                for r in self.runs_removed]
        out += [f"  run {r}: {detail}" for r, detail in self.runs_changed]
        out += [f"  table {t.table}: {t.current} -> {t.backup} rows ({t.backup - t.current:+d})"
                for t in self.tables if t.current != t.backup]
        if self.models_in_backup:
            out.append(f"  model registry: not restored automatically; copy "
                       f"{self.backup_dir / MODELS_DIR} to {fw_home() / MODELS_DIR} if wanted")
        if self.aside is not None:
            out.append(f"  the previous database was kept as {self.aside}")
        elif self.dry_run:
            out.append("  stop the runner first, then run again with --yes to restore")
        return out


# -- backup ---------------------------------------------------------------------------------------
def backup_store(url: str | None, to_dir: Path | None = None, *, include_models: bool = True,
                 keep: int | None = DEFAULT_KEEP, now: datetime | None = None) -> BackupResult:
    """Copy the state database (online, consistent) and the model registry into a folder.

    Parameters
    ----------
    url : str or None
        SQLAlchemy URL of a SQLite state database (None: :func:`live.state.default_url`).
    to_dir : Path, optional
        The backup folder to create (must not exist or be empty). Default
        ``FW_HOME/backups/<UTC time>/``.
    include_models : bool
        Also copy ``FW_HOME/models`` when it exists.
    keep : int or None
        Keep this many newest backups in the default folder (None: keep all). Never applied to
        an explicit ``to_dir``.
    now : datetime, optional
        The backup's time (default: the clock); names the default folder.

    Returns
    -------
    BackupResult

    Raises
    ------
    ConfigError
        Not a SQLite URL, no database there, a bad ``keep``, or an unwritable destination.
    BrokerError
        The destination ran out of space or the database stayed locked.
    DataError
        The snapshot fails SQLite's integrity check.
    """
    if keep is not None and keep < 1:
        raise ConfigError(f"keep={keep!r}; expected at least 1 backup to keep, or None to keep all.")
    url = url or default_url()
    source = sqlite_path(url, "fw backup")
    if not source.is_file():
        raise ConfigError(f"no state database at {source} (from {_masked(url)}); nothing to back "
                          "up. Check --db / FW_DB_URL.")
    stamp = _utc(now)
    final = _destination(to_dir, stamp)
    temp = final.parent / f".{final.name}.partial-{os.getpid()}"
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        temp.mkdir()
        manifest = _write_backup(url, source, temp, include_models, stamp)
        _publish(temp, final)
    except BaseException as exc:
        _discard(temp, exc)
        if isinstance(exc, OSError | sqlite3.Error):
            raise _io_error(exc, final, "writing the backup") from exc
        raise
    removed = _prune(final.parent, keep) if to_dir is None and keep is not None else ()
    return BackupResult(path=final, manifest=manifest, removed=removed)


def sqlite_path(url: str, action: str = "this command") -> Path:
    """The database file of a SQLite SQLAlchemy URL.

    Raises
    ------
    ConfigError
        The URL is malformed, not SQLite, or an in-memory database.
    """
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"bad database URL {url!r}: {exc}. Expected e.g. "
                          "sqlite:///path/fw.sqlite (--db or FW_DB_URL).") from exc
    backend = parsed.get_backend_name()
    if backend != "sqlite":
        raise ConfigError(
            f"{action} supports SQLite state databases only; {_masked(url)} is {backend}. Back it "
            "up with the database's own tools instead (PostgreSQL: pg_dump / pg_restore; "
            "MySQL or MariaDB: mysqldump), or point --db at a sqlite:///path URL.")
    if not parsed.database or parsed.database == ":memory:":
        raise ConfigError(f"{url!r} is an in-memory SQLite database; {action} needs a file, "
                          "e.g. sqlite:///path/fw.sqlite.")
    return Path(parsed.database).expanduser().resolve()


def _write_backup(url: str, source: Path, temp: Path, include_models: bool,
                  stamp: datetime) -> dict[str, Any]:
    database = temp / DATABASE_FILE
    _snapshot(source, database)
    with closing(sqlite3.connect(database)) as conn:
        _check_integrity(conn, f"the snapshot of {source}")
        counts, schema = _row_counts(conn), _schema_version(conn)
    models = fw_home() / MODELS_DIR
    copied = include_models and models.is_dir()
    if copied:
        shutil.copytree(models, temp / MODELS_DIR, symlinks=True)
    files = {rel: {"sha256": _sha256(temp / rel), "bytes": (temp / rel).stat().st_size}
             for rel in _files(temp)}
    manifest = {
        "format": MANIFEST_FORMAT, "fw_version": framework.__version__,
        "created_at": stamp.isoformat(), "source_url": _masked(url),
        "database": DATABASE_FILE, "schema_version": schema, "row_counts": counts,
        "models": copied, "files": files,
    }
    with open(temp / MANIFEST, "w", encoding="utf-8") as out:
        json.dump(manifest, out, indent=2, sort_keys=True)
        out.write("\n")
    for rel in [*files, MANIFEST]:
        _fsync(temp / rel)
    return manifest


def _snapshot(source: Path, target: Path) -> None:
    """One-step online backup: a single read transaction, so a consistent point in time."""
    # mode=rw: never create an empty database where the user's one was expected
    with closing(_connect(source, "rw")) as src, closing(sqlite3.connect(target)) as dst:
        src.backup(dst)
        # the copy is a standalone file: no -wal/-shm companions to lose or forget
        dst.execute("PRAGMA journal_mode=DELETE")


def _publish(temp: Path, final: Path) -> None:
    if final.exists():
        final.rmdir()  # _destination checked it is empty; a concurrent writer makes this fail
    os.replace(temp, final)
    _fsync_dir(final.parent)


def _destination(to_dir: Path | None, stamp: datetime) -> Path:
    if to_dir is None:
        root = fw_home() / "backups"
        name = stamp.strftime(_STAMP)
        final, n = root / name, 1
        while final.exists():  # two backups within one second: keep both
            n += 1
            final = root / f"{name}-{n}"
        return final
    final = Path(to_dir).expanduser().resolve()
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        raise ConfigError(f"backup destination {final} already exists and is not an empty folder; "
                          "choose a new folder for --to (fw backup never overwrites).")
    return final


def _prune(root: Path, keep: int) -> tuple[Path, ...]:
    """Delete all but the newest ``keep`` complete backups under the default folder."""
    found = sorted(p for p in root.iterdir()
                   if p.is_dir() and _BACKUP_NAME.match(p.name) and (p / MANIFEST).is_file())
    old = found[:-keep]
    for path in old:
        shutil.rmtree(path)
    return tuple(old)


def _discard(temp: Path, cause: BaseException) -> None:
    if not temp.exists():
        return
    try:
        shutil.rmtree(temp)
    except OSError as exc:
        # keep the original failure as the error; say what was left behind
        cause.add_note(f"could not remove the partial backup {temp}: {exc}; delete it by hand")


# -- restore --------------------------------------------------------------------------------------
def restore_store(backup_dir: Path, url: str | None, *, dry_run: bool = True) -> RestorePlan:
    """Check a backup and compare it with the current database; restore it unless ``dry_run``.

    Parameters
    ----------
    backup_dir : Path
        A folder written by :func:`backup_store`.
    url : str or None
        SQLAlchemy URL of the SQLite database to restore into (None: the default database).
    dry_run : bool
        True (default): only describe the changes. False: set the current database aside as
        ``<db>.before-restore-<UTC time>``, copy the backup in, run migrations.

    Returns
    -------
    RestorePlan

    Raises
    ------
    ConfigError
        Not a backup folder, not a SQLite URL, or a backup newer than this fw's schema.
    DataError
        A file is missing or its hash differs from the manifest (a damaged backup).
    BrokerError
        No space, or the database stayed locked (stop the runner first).
    """
    url = url or default_url()
    target = sqlite_path(url, "fw restore")
    backup_dir = Path(backup_dir).expanduser().resolve()
    manifest = verify_backup(backup_dir)
    plan = _plan(backup_dir, manifest, target, url)
    if dry_run:
        return plan
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        aside = _set_aside(target) if target.exists() else None
        with closing(_connect(backup_dir / manifest["database"], "ro")) as src, \
                closing(sqlite3.connect(target, timeout=_BUSY_SECONDS)) as dst:
            src.backup(dst)
    except (OSError, sqlite3.Error) as exc:
        raise _io_error(exc, target, "restoring the database") from exc
    store = Store(url)  # runs the migrations an older backup needs
    store.close()
    _check_restored(target, manifest, aside)
    return replace(plan, dry_run=False, aside=aside)


def verify_backup(backup_dir: Path) -> dict[str, Any]:
    """The manifest of a backup folder, after checking every file's size and sha256.

    Raises
    ------
    ConfigError
        Not a backup folder, or a backup whose schema is newer than this fw knows.
    DataError
        A missing or damaged file or manifest.
    """
    path = Path(backup_dir) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{backup_dir} is not a fw backup: no {MANIFEST} in it. Expected a folder "
                          "written by `fw backup` (default under FW_HOME/backups/).")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files, database = manifest["files"], manifest["database"]
        schema = int(manifest["schema_version"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path} is damaged ({type(exc).__name__}: {exc}); expected the JSON "
                        "manifest fw backup writes. Use another backup.") from exc
    if database not in files:
        raise DataError(f"{path} lists no database file {database!r}; use another backup.")
    for rel, meta in sorted(files.items()):
        _check_file(Path(backup_dir), rel, meta)
    if schema > SCHEMA_VERSION:
        raise ConfigError(f"backup {backup_dir} has schema version {schema}; this fw knows up to "
                          f"{SCHEMA_VERSION}. Upgrade fw (it was written by fw "
                          f"{manifest.get('fw_version')}) before restoring it.")
    return manifest


def _check_file(root: Path, rel: str, meta: Mapping[str, Any]) -> None:
    path = root / rel
    if not path.is_file():
        raise DataError(f"backup {root} is incomplete: {rel} is missing but listed in {MANIFEST}. "
                        "Use another backup.")
    actual = _sha256(path)
    if actual != meta.get("sha256"):
        raise DataError(f"backup {root} is damaged: {rel} has sha256 {actual}, the manifest says "
                        f"{meta.get('sha256')}. Use another backup.")


def _plan(backup_dir: Path, manifest: Mapping[str, Any], target: Path, url: str) -> RestorePlan:
    with closing(_connect(backup_dir / manifest["database"], "ro")) as conn:
        backup_runs, backup_counts = _runs(conn), _row_counts(conn)
    if target.exists():
        with closing(_connect(target, "rw")) as conn:
            current_runs, counts, schema = _runs(conn), _row_counts(conn), _schema_version(conn)
    else:
        current_runs, counts, schema = {}, {}, None
    changed = tuple((r, _run_change(current_runs[r], backup_runs[r]))
                    for r in sorted(set(current_runs) & set(backup_runs))
                    if current_runs[r] != backup_runs[r])
    tables = tuple(TableCount(t, counts.get(t, 0), backup_counts.get(t, 0))
                   for t in sorted(set(counts) | set(backup_counts)))
    return RestorePlan(
        backup_dir=backup_dir, database=target, url=_masked(url),
        backup_created=str(manifest.get("created_at")),
        backup_schema=int(manifest["schema_version"]), current_schema=schema,
        runs_added=tuple(sorted(set(backup_runs) - set(current_runs))),
        runs_removed=tuple(sorted(set(current_runs) - set(backup_runs))),
        runs_changed=changed, tables=tables, models_in_backup=bool(manifest.get("models")))


def _runs(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per run: its row in ``runs`` (the fields a user recognises) and its rows in all tables."""
    tables = _tables(conn)
    if "runs" not in tables:
        return {}
    query = "SELECT run_id, status, kill_switch, last_bar FROM runs"
    out = {r[0]: {"status": r[1], "kill switch": r[2], "last bar": r[3], "rows": 0}
           for r in conn.execute(query)}
    for table in tables:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({_quoted(table)})")}
        if table == "runs" or "run_id" not in columns:
            continue
        for run_id, n in conn.execute(f"SELECT run_id, count(*) FROM {_quoted(table)} "
                                      "GROUP BY run_id"):
            out.setdefault(run_id, {"status": None, "kill switch": None, "last bar": None,
                                    "rows": 0})["rows"] += n
    return out


def _run_change(current: Mapping[str, Any], backup: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {current[key]} -> {backup[key]}"
                     for key in current if current[key] != backup[key])


def _set_aside(target: Path) -> Path:
    stamp = datetime.now(UTC).strftime(_STAMP)
    aside, n = target.with_name(f"{target.name}.before-restore-{stamp}"), 1
    while aside.exists():
        n += 1
        aside = target.with_name(f"{target.name}.before-restore-{stamp}-{n}")
    # through the backup API, not a file copy: the current database may have a -wal file
    _snapshot(target, aside)
    return aside


def _check_restored(target: Path, manifest: Mapping[str, Any], aside: Path | None) -> None:
    with closing(_connect(target, "rw")) as conn:
        _check_integrity(conn, f"the restored database {target}")
        counts = _row_counts(conn)
    # migrations only add schema_version rows; every other table must match the backup
    expected = {t: n for t, n in manifest["row_counts"].items() if t != "schema_version"}
    got = {t: counts.get(t, 0) for t in expected}
    if got != expected:
        kept = f"; the previous database is at {aside}" if aside else ""
        raise DataError(f"the restored database {target} has row counts {got}, the backup "
                        f"{expected}{kept}. Retry the restore with the runner stopped.")


# -- shared helpers -------------------------------------------------------------------------------
def _connect(path: Path, mode: str) -> sqlite3.Connection:
    try:
        return sqlite3.connect(f"file:{quote(str(path))}?mode={mode}", uri=True,
                               timeout=_BUSY_SECONDS)
    except sqlite3.OperationalError as exc:
        raise ConfigError(f"cannot open the SQLite database {path}: {exc}. Check the path and "
                          "its permissions.") from exc


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name")]


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return {t: int(conn.execute(f"SELECT count(*) FROM {_quoted(t)}").fetchone()[0])
            for t in _tables(conn)}


def _schema_version(conn: sqlite3.Connection) -> int:
    if "schema_version" not in _tables(conn):
        return 0
    return int(conn.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0)


def _check_integrity(conn: sqlite3.Connection, what: str) -> None:
    problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise DataError(f"{what} fails SQLite's integrity check: {'; '.join(problems[:5])}. "
                        "Recover the database (sqlite3 DB '.recover') or restore a backup.")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _files(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            yield path.relative_to(root).as_posix()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        while chunk := data.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    # makes the rename durable; not every platform can open a folder
    with _opened_dir(path) as fd:
        if fd is not None:
            os.fsync(fd)


@contextmanager
def _opened_dir(path: Path) -> Iterator[int | None]:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield None  # e.g. Windows: folders cannot be opened; the rename is still atomic
        return
    try:
        yield fd
    finally:
        os.close(fd)


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)


def _masked(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<unparseable URL>"


def _io_error(exc: OSError | sqlite3.Error, path: Path, action: str) -> FwError:
    """fw's error for a failed file or SQLite operation; disk full and read-only named as such."""
    code, text = getattr(exc, "errno", None), str(exc).lower()
    if code in (errno.ENOSPC, errno.EDQUOT) or "disk is full" in text:
        return BrokerError(f"no space left at {path} while {action} ({exc}); nothing was kept. "
                           "Free disk space or choose another destination (--to).")
    if code in (errno.EACCES, errno.EPERM, errno.EROFS) or "readonly" in text \
            or "read-only" in text or "unable to open" in text:
        return ConfigError(f"cannot write to {path} while {action} ({exc}): the location is "
                           "read-only or not writable by this user. Choose another destination "
                           "(--to) or fix its permissions.")
    if "locked" in text or "busy" in text:
        return BrokerError(f"the database {path} stayed locked while {action} ({exc}). Stop the "
                           "runner (fw halt, or stop the service) and retry.")
    if isinstance(exc, sqlite3.Error):
        return DataError(f"SQLite failed at {path} while {action}: {exc}. Check the database "
                         "(sqlite3 DB 'PRAGMA integrity_check') or use another backup.")
    return BrokerError(f"{action} failed at {path}: {exc}. Nothing was kept; fix the cause and "
                       "retry.")
