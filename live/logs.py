"""Structured, rotating logs of paper-trading sessions under ``FW_HOME/logs``.

:func:`open_logs` returns a :class:`RunLogs` whose :meth:`RunLogs.listener` mirrors every write
of the :class:`~live.state.Store` (``store.listeners``) into JSON-lines files:

- ``data.log``   stored bars;
- ``trades.log`` fills and order status changes;
- ``errors.log`` errors, halting events (kinds naming a halt, mismatch, stale data, clock drift,
  a lost order or an error) and Python ``logging`` warnings of the ``live``, ``framework`` and
  ``alpaca`` loggers;
- ``all.log``    everything.

Each file rotates at ``max_bytes`` and keeps ``backups`` older files (``trades.log.1`` is the
newest of those). Every line is one JSON object starting with ``time`` (UTC, when it was logged),
``run_id``, ``category`` (``data``, ``trades``, ``errors``, ``events``) and ``kind``; a bar's or
fill's own market time is ``market_time``. Known secret values and credentials of anything
that looks like an apprise URL are masked before a line is written.

:func:`read_logs` and :func:`follow` read the files back (``fw logs``); :func:`format_line` turns a
line into a one-line human text. One process should write to a log folder at a time: rotation is
not coordinated between processes.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os
import re
import time as _time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np

from framework.errors import ConfigError, unknown_name_message
from framework.paths import fw_home, home_subdir
from framework.secrets import load_secrets
from live.alerts import _Scrubber, mask_url, split_urls

CATEGORIES: tuple[str, ...] = ("data", "trades", "errors", "all")
LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Python loggers whose warnings and errors belong in the run's logs
CAPTURED_LOGGERS: tuple[str, ...] = ("live", "framework", "alpaca")
# an event whose kind contains one of these means trading stopped or something is wrong
_ERROR_EVENT_WORDS: tuple[str, ...] = ("halt", "mismatch", "stale", "drift", "error", "lost")
# URLs of these schemes are ordinary addresses (only their user:password part is masked);
# any other scheme may be an apprise URL, whose every part after the scheme can be a token
_PLAIN_SCHEMES = frozenset({"http", "https", "file", "sqlite", "postgresql", "mysql", "ws", "wss"})
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://([^\s\"'<>]+)")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogSpec:
    """Where and how a run's logs are written.

    Parameters
    ----------
    directory : Path, optional
        Log folder (default ``FW_HOME/logs``, created on open).
    max_bytes : int
        A file rotates when a line would take it past this size.
    backups : int
        Rotated files kept per category (older ones are deleted).
    level : str
        Lowest level written: ``DEBUG``, ``INFO``, ``WARNING``, ``ERROR`` or ``CRITICAL``. Store
        records are INFO (halting events WARNING, errors ERROR); Python log records are captured
        from WARNING up whatever this says.
    """

    directory: Path | None = None
    max_bytes: int = 5_000_000
    backups: int = 5
    level: str = "INFO"

    def __post_init__(self) -> None:
        if self.directory is not None:
            object.__setattr__(self, "directory", Path(self.directory).expanduser())
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int) or self.max_bytes < 256:
            raise ConfigError(
                f"LogSpec.max_bytes = {self.max_bytes!r}; expected an integer number of bytes "
                ">= 256 (default 5000000)."
            )
        if isinstance(self.backups, bool) or not isinstance(self.backups, int) or self.backups < 1:
            raise ConfigError(
                f"LogSpec.backups = {self.backups!r}; expected an integer >= 1 (rotated files "
                "kept per category, default 5)."
            )
        level = str(self.level).strip().upper()
        if level not in LEVELS:
            raise ConfigError(unknown_name_message("log level", str(self.level), LEVELS))
        object.__setattr__(self, "level", level)


# -- writing ------------------------------------------------------------------------------------
class RunLogs:
    """The open log files of one run; use :meth:`listener` as a Store listener.

    Create with :func:`open_logs`. Also a context manager (``close`` on exit).
    """

    def __init__(self, spec: LogSpec, run_id: str, directory: Path,
                 scrub: Callable[[str], str]) -> None:
        self.spec, self.run_id, self.directory = spec, run_id, directory
        self._scrub = scrub
        self._level = logging.getLevelName(spec.level)
        self._handlers = {name: _file_handler(directory / f"{name}.log", spec) for name in CATEGORIES}
        self._capture = _Capture(self)
        self._capture.setLevel(max(self._level, logging.WARNING))
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).addHandler(self._capture)
        self._stores: list[Any] = []
        self._closed = False
        self._warned_closed = False

    def listener(self, kind: str, record: Mapping[str, Any]) -> None:
        """Store listener: write ``record`` (a store write of ``kind``) to its files."""
        if self._closed:
            # a store still calling after close: say so once rather than reopen files
            if not self._warned_closed:
                self._warned_closed = True
                _log.warning("logs of run %s are closed; %s records are no longer logged "
                             "(remove RunLogs.listener from store.listeners)", self.run_id, kind)
            return
        line, level, category = _store_line(kind, dict(record), self.run_id)
        self.write(line, level, category)

    def write(self, line: Mapping[str, Any], level: int, category: str) -> None:
        """Write one prepared line to ``category``'s file (if any) and to ``all.log``."""
        if level < self._level:
            return
        text = json.dumps(_clean(line, self._scrub), ensure_ascii=False, default=str)
        record = logging.makeLogRecord({"msg": text, "levelno": level,
                                        "levelname": logging.getLevelName(level)})
        targets = [category, "all"] if category in self._handlers and category != "all" else ["all"]
        for target in targets:
            self._handlers[target].handle(record)

    def attach(self, store: Any) -> RunLogs:
        """Append :meth:`listener` to ``store.listeners``; :meth:`close` removes it again."""
        listeners = getattr(store, "listeners", None)
        if listeners is None:
            raise ConfigError(
                f"{type(store).__name__} has no 'listeners' list; expected a live.state.Store "
                "with the listener hook (store.listeners)."
            )
        listeners.append(self.listener)
        self._stores.append(store)
        return self

    def close(self) -> None:
        """Detach from stores and Python loggers, flush and close the files (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for store in self._stores:
            if self.listener in store.listeners:
                store.listeners.remove(self.listener)
        for name in CAPTURED_LOGGERS:
            logging.getLogger(name).removeHandler(self._capture)
        for handler in self._handlers.values():
            handler.close()

    def __enter__(self) -> RunLogs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Capture(logging.Handler):
    """Writes Python log records of the captured loggers as ``errors`` lines."""

    def __init__(self, logs: RunLogs) -> None:
        super().__init__()
        self.logs = logs

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(),
                    "run_id": self.logs.run_id, "category": "errors", "kind": "log",
                    "level": record.levelname, "logger": record.name, "message": message}
            self.logs.write(line, record.levelno, "errors")
        except Exception:  # logging's contract: report on stderr, never raise into the caller
            self.handleError(record)


def open_logs(spec: LogSpec | None, run_id: str) -> RunLogs:
    """Open (append to) the log files of ``run_id`` in ``spec.directory``.

    Parameters
    ----------
    spec : LogSpec, optional
        Default ``LogSpec()``: ``FW_HOME/logs``, 5 MB files, 5 backups, INFO.
    run_id : str
        Written on every line (Python log records included).

    Returns
    -------
    RunLogs
        Call ``close()`` when the session ends (or use it as a context manager).
    """
    spec = LogSpec() if spec is None else spec
    if not isinstance(run_id, str) or not run_id.strip():
        raise ConfigError(f"run_id = {run_id!r}; expected the non-empty id of a paper run.")
    directory = spec.directory if spec.directory is not None else home_subdir("logs")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the log folder {directory}: {exc}; choose a writable "
                          "LogSpec.directory or fix FW_HOME.") from exc
    return RunLogs(spec, run_id, directory, make_scrubber())


def make_scrubber() -> Callable[[str], str]:
    """A text scrubber: known secret values and apprise-URL credentials become masked.

    Known secrets and the configured ``FW_APPRISE_URLS`` (and their token-like parts) are read
    once, now; any other URL in a text has its ``user:password@`` masked, and a URL whose scheme
    is not an ordinary one (http, sqlite...) is masked after its scheme, as an apprise URL may
    carry a token in every part.
    """
    secrets = load_secrets()
    known = _Scrubber(secrets, split_urls(secrets.get("FW_APPRISE_URLS") or ""))

    def scrub(text: str) -> str:
        return _URL.sub(_mask_url_match, known(text))

    return scrub


def _mask_url_match(match: re.Match) -> str:
    scheme, rest = match.group(1), match.group(2)
    if scheme.lower() not in _PLAIN_SCHEMES:
        return mask_url(f"{scheme}://{rest}")
    userinfo, at, host = rest.partition("@")
    if at and "/" not in userinfo:
        return f"{scheme}://****@{host}"
    return match.group(0)


def _file_handler(path: Path, spec: LogSpec) -> logging.Handler:
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=spec.max_bytes, backupCount=spec.backups, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(message)s"))
    return handler


def _store_line(kind: str, record: dict[str, Any], run_id: str) -> tuple[dict[str, Any], int, str]:
    """The line for one store write, its level and its category."""
    now = datetime.now(UTC).isoformat()
    run = record.pop("run_id", None) or run_id
    if kind in ("bar", "fill"):
        market_time = record.pop("time", None)
        category = "data" if kind == "bar" else "trades"
        return ({"time": now, "run_id": run, "category": category, "kind": kind,
                 "level": "INFO", "market_time": market_time, **record}, logging.INFO, category)
    if kind == "order":
        return ({"time": now, "run_id": run, "category": "trades", "kind": "order",
                 "level": "INFO", **record}, logging.INFO, "trades")
    stamp = record.pop("time", None) or now
    if kind == "error":
        return ({"time": stamp, "run_id": run, "category": "errors", "kind": "error",
                 "level": "ERROR", **record}, logging.ERROR, "errors")
    if kind == "event":
        event_kind = str(record.pop("kind", "event"))
        if is_error_event(event_kind):
            return ({"time": stamp, "run_id": run, "category": "errors", "kind": event_kind,
                     "level": "WARNING", **record}, logging.WARNING, "errors")
        return ({"time": stamp, "run_id": run, "category": "events", "kind": event_kind,
                 "level": "INFO", **record}, logging.INFO, "events")
    # a store write this module does not know yet still reaches all.log
    return ({"time": stamp, "run_id": run, "category": "events", "kind": kind,
             "level": "INFO", **record}, logging.INFO, "events")


def is_error_event(kind: str) -> bool:
    """True for event kinds that belong in ``errors.log`` (halts, mismatches, stale data...)."""
    lowered = kind.lower()
    return any(word in lowered for word in _ERROR_EVENT_WORDS)


def _clean(value: Any, scrub: Callable[[str], str]) -> Any:
    """JSON-safe copy: strings scrubbed, non-finite floats as null, containers recursed."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v, scrub) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, scrub) for v in value]
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _clean(value.item(), scrub)
    return scrub(str(value))


# -- reading ------------------------------------------------------------------------------------
def log_files(directory: str | Path | None, category: str = "all") -> list[Path]:
    """The existing files of ``category``, oldest first (``x.log.N`` ... ``x.log.1``, ``x.log``)."""
    base = _category_path(directory, category)
    rotated = []
    for path in base.parent.glob(base.name + ".*"):
        suffix = path.name[len(base.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    files = [path for _, path in sorted(rotated, reverse=True)]
    return files + [base] if base.is_file() else files


def read_logs(directory: str | Path | None, category: str = "all",
              since: datetime | str | None = None, run_id: str | None = None) -> Iterator[dict]:
    """The lines of ``category``, oldest first, rotated files included.

    Parameters
    ----------
    directory : path, optional
        Log folder (default ``FW_HOME/logs``).
    category : str
        ``data``, ``trades``, ``errors`` or ``all``.
    since : datetime or str, optional
        Only lines logged at or after this: a datetime (naive = UTC), an ISO date/time, or a
        duration back from now such as ``90s``, ``15m``, ``2h``, ``3d``, ``1w``.
    run_id : str, optional
        Only this run's lines.

    Yields
    ------
    dict
        One parsed line. A line that is not JSON (a crash mid-write) is skipped with a warning.
    """
    keep = _filter(since, run_id)
    for path in log_files(directory, category):
        try:
            with path.open("rb") as handle:
                for number, raw in enumerate(handle, 1):
                    line = _parse(raw, path, number)
                    if line is not None and keep(line):
                        yield line
        except FileNotFoundError:
            continue  # rotated away between listing and opening; its lines are in a newer file


def follow(directory: str | Path | None, category: str = "all",
           since: datetime | str | None = None, poll: float = 0.5,
           stop: Callable[[], bool] = lambda: False, run_id: str | None = None) -> Iterator[dict]:
    """Like ``tail -f``: the existing lines of ``category``, then new ones as they are written.

    Survives rotation: when the active file is renamed, the rest of the old file and any newer
    rotated files are read before the new active file. Ends when ``stop()`` returns True
    (checked at least every ``poll`` seconds).

    Parameters
    ----------
    directory, category, since, run_id
        As for :func:`read_logs`.
    poll : float
        Seconds to wait when there is nothing new.
    stop : callable
        Returns True to end the iteration.
    """
    if not (isinstance(poll, int | float) and math.isfinite(poll) and poll > 0):
        raise ConfigError(f"poll = {poll!r}; expected a number of seconds > 0.")
    keep = _filter(since, run_id)
    tail = _Tail(_category_path(directory, category))
    try:
        while not stop():
            got = False
            for line in tail.lines():
                got = True
                if keep(line):
                    yield line
            if not got:
                _time.sleep(poll)
    finally:
        tail.close()


class _Tail:
    """Reads complete new lines of a rotating file, across renames."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: IO[bytes] | None = None
        self.started = False

    def lines(self) -> Iterator[dict]:
        if not self.started:
            # first call: every rotated file, oldest first, then the active one from its start
            self.started = True
            yield from self._whole([p for p in log_files(self.path.parent, self.path.stem)
                                    if p != self.path])
        if self.handle is None:
            self.handle = self._open(self.path)
            if self.handle is None:
                return
        handle = self.handle
        yield from self._new_lines(handle)
        current = _inode(self.path)
        mine = os.fstat(handle.fileno())
        if current is not None and current != mine.st_ino:
            yield from self._new_lines(handle)  # the writer has finished the renamed file
            yield from self._whole(self._newer_rotated(mine.st_ino))
            handle.close()
            self.handle = self._open(self.path)
            if self.handle is not None:
                yield from self._new_lines(self.handle)
        elif mine.st_size < handle.tell():
            handle.seek(0)  # truncated in place: start over

    def _new_lines(self, handle: IO[bytes]) -> Iterator[dict]:
        while True:
            start = handle.tell()
            raw = handle.readline()
            if not raw.endswith(b"\n"):
                handle.seek(start)  # nothing, or a line still being written
                return
            line = _parse(raw, self.path, None)
            if line is not None:
                yield line

    def _newer_rotated(self, inode: int) -> list[Path]:
        """Rotated files written after the one with ``inode`` (all of them if it is gone)."""
        rotated = log_files(self.path.parent, self.path.stem)
        rotated = [p for p in rotated if p != self.path]
        for index, path in enumerate(rotated):
            if _inode(path) == inode:
                return rotated[index + 1:]
        return rotated

    def _whole(self, paths: list[Path]) -> Iterator[dict]:
        for path in paths:
            handle = self._open(path)
            if handle is None:
                continue
            with handle:
                for number, raw in enumerate(handle, 1):
                    line = _parse(raw, path, number)
                    if line is not None:
                        yield line

    @staticmethod
    def _open(path: Path) -> IO[bytes] | None:
        try:
            return path.open("rb")
        except FileNotFoundError:
            return None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _category_path(directory: str | Path | None, category: str) -> Path:
    if category not in CATEGORIES:
        raise ConfigError(unknown_name_message("log category", str(category), CATEGORIES))
    folder = Path(directory).expanduser() if directory is not None else fw_home() / "logs"
    return folder / f"{category}.log"


def _parse(raw: bytes, path: Path, number: int | None) -> dict | None:
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        line = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {number} of {path}" if number is not None else f"a line of {path}"
        _log.warning("skipping %s: not a JSON log line (%s)", where, exc)
        return None
    if not isinstance(line, dict):
        _log.warning("skipping a line of %s: expected a JSON object, got %s",
                     path, type(line).__name__)
        return None
    return line


def parse_since(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime, an ISO date/time or a duration such as ``2h``."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    text = str(value).strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2).lower()
        return datetime.now(UTC) - timedelta(**{_UNITS[unit]: amount})
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"since = {value!r}; expected an ISO date/time (2024-05-01, 2024-05-01T14:30) or a "
            "duration back from now (90s, 15m, 2h, 3d, 1w)."
        ) from None
    return parse_since(parsed)


def _filter(since: datetime | str | None, run_id: str | None) -> Callable[[dict], bool]:
    start = parse_since(since) if since is not None else None

    def keep(line: dict) -> bool:
        if run_id is not None and line.get("run_id") != run_id:
            return False
        if start is None:
            return True
        stamp = _line_time(line)
        return stamp is not None and stamp >= start

    return keep


def _line_time(line: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_since(str(line.get("time")))
    except ConfigError:
        return None


# -- display ------------------------------------------------------------------------------------
_ENVELOPE = ("time", "run_id", "category", "kind", "level")


def format_line(record: Mapping[str, Any]) -> str:
    """One human-readable line: ``time level category/kind [run] text``."""
    stamp = str(record.get("time") or "?")[:19].replace("T", " ")
    level = str(record.get("level") or "INFO")
    head = f"{stamp} {level:<7} {record.get('category', '?')}/{record.get('kind', '?')}"
    run = f" [{record['run_id']}]" if record.get("run_id") else ""
    return f"{head}{run} {_body(record)}".rstrip()


def _body(record: Mapping[str, Any]) -> str:
    kind = record.get("kind")
    if kind == "bar":
        symbols = record.get("symbols") or []
        shown = ",".join(map(str, symbols[:8])) + (f" +{len(symbols) - 8}" if len(symbols) > 8 else "")
        return f"bar {record.get('market_time')} {shown}"
    if kind == "fill":
        return (f"{record.get('symbol')} {_num(record.get('quantity'), '+g')} @ "
                f"{_num(record.get('price'), '.4f')} commission {_num(record.get('commission'), '.2f')}"
                f" ({record.get('client_order_id')}, {record.get('market_time')})")
    if kind == "order":
        rest = {k: v for k, v in record.items()
                if k not in (*_ENVELOPE, "client_order_id", "status")}
        extra = " ".join(f"{k}={v}" for k, v in rest.items())
        return f"{record.get('client_order_id')} {record.get('status')} {extra}"
    if kind == "log":
        return _one_line(f"{record.get('logger')}: {record.get('message')}")
    message = str(record.get("message", ""))
    detail = str(record.get("detail") or "")
    if detail or message:
        return _one_line(message + (f": {detail}" if detail else ""))
    rest = {k: v for k, v in record.items() if k not in _ENVELOPE}
    return " ".join(f"{k}={v}" for k, v in rest.items())


def _num(value: Any, spec: str) -> str:
    try:
        return format(float(value), spec)
    except (TypeError, ValueError):
        return str(value)


def _one_line(text: str) -> str:
    return " | ".join(part.strip() for part in text.strip().splitlines() if part.strip())
