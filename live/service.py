"""Run ``fw paper`` unattended: a systemd unit, its install/status/uninstall, and health checks.

* :func:`unit_text` renders a systemd unit for one paper run: restart on failure, a graceful
  ``SIGTERM`` (``fw paper`` finishes the bar in hand, persists and exits 0), ``FW_HOME`` and the
  optional ``.env`` file in the environment.
* :func:`install`, :func:`status` and :func:`uninstall` drive ``systemctl`` (``--user`` for the
  user scope). Nothing here talks to systemd except through that executable, so tests put a fake
  ``systemctl`` first on ``PATH``.
* Health checks of a running service (``/health``, lag judged in market hours) are in
  :mod:`live.health`.
* Next to each service, :func:`install` writes a heartbeat timer (``<name>-heartbeat.timer`` and
  its one-shot ``<name>-heartbeat.service``, see :mod:`live.heartbeat`): a runner cannot report
  its own death, so a separate check reads the state database every few minutes and alerts.

systemd does not use a shell: ``ExecStart`` words are quoted with systemd's own rules (double
quotes with backslash escapes, ``%%`` for a literal ``%`` and ``$$`` for a literal ``$``), which
:func:`shlex.split` also reads once the ``%%``/``$$`` escapes are undone.
"""

from __future__ import annotations

import difflib
import getpass
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import ConfigError, FwError, StorageError
from framework.paths import fw_home

SCOPES: tuple[str, ...] = ("user", "system")
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
RESTART_SEC = 30
TIMEOUT_STOP_SEC = 120  # fw paper finishes the bar in hand after SIGTERM; a bar needs far less
SHOW_PROPERTIES: tuple[str, ...] = (
    "LoadState", "ActiveState", "SubState", "MainPID", "ExecMainStartTimestamp", "NRestarts",
    "Result",
)
TIMER_PROPERTIES: tuple[str, ...] = ("LoadState", "ActiveState", "SubState", "LastTriggerUSec")
CHECK_PROPERTIES: tuple[str, ...] = ("Result", "ExecMainStatus", "ExecMainExitTimestamp")
HEARTBEAT_SUFFIX = "-heartbeat"
HEARTBEAT_EVERY = 300  # seconds between two heartbeat checks
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+$")
_SAFE_WORD = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_RUN_FW = "from framework.cli import main; main()"
_log = logging.getLogger(__name__)


class ServiceError(FwError, RuntimeError):
    """Installing, inspecting or removing the systemd service failed.

    Attributes
    ----------
    unit_text : str or None
        The unit that was to be installed (so a caller can show it for a manual install).
    manual_steps : tuple of str
        Shell commands that do by hand what failed (empty when not applicable).
    """

    def __init__(self, message: str, *, unit_text: str | None = None,
                 manual_steps: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.unit_text = unit_text
        self.manual_steps = tuple(manual_steps)


# ---------------------------------------------------------------------------------------------
# the spec and the unit


@dataclass(frozen=True)
class ServiceSpec:
    """One ``fw paper`` run as a systemd service.

    Parameters
    ----------
    strategy : str
        The strategy argument of ``fw paper`` (registered name or ``path/x.py:Class``).
    args : tuple of str
        Further ``fw paper`` options, e.g. ``("--broker", "alpaca", "--symbols", "SPY")``.
    scope : str
        ``"user"`` (``systemctl --user``, unit under ``~/.config/systemd/user``) or ``"system"``
        (unit under ``/etc/systemd/system``, run as ``user``; needs root to install).
    name : str, optional
        Unit name without ``.service``; default ``fw-paper-<strategy>``.
    run_id : str, optional
        ``--run-id`` added to the command unless ``args`` has one; default the unit name, so a
        restart resumes the same run instead of starting a new one.
    env_file : Path, optional
        Optional environment file (``EnvironmentFile=-``); default ``FW_HOME/.env``.
    fw_command : tuple of str, optional
        How to run ``fw``; default the ``fw`` next to the running interpreter, else ``fw`` on
        ``PATH``, else ``python -c "from framework.cli import main; main()"``.
    working_dir : Path, optional
        ``WorkingDirectory=``; default FW_HOME.
    fw_home : Path, optional
        ``FW_HOME`` of the service; default the current one.
    user : str, optional
        ``User=`` of a system-scope unit; default the current user.
    """

    strategy: str
    args: tuple[str, ...] = ()
    scope: str = "user"
    name: str | None = None
    run_id: str | None = None
    env_file: Path | None = None
    fw_command: tuple[str, ...] | None = None
    working_dir: Path | None = None
    fw_home: Path | None = None
    user: str | None = None

    def __post_init__(self) -> None:
        if not str(self.strategy).strip() or str(self.strategy).startswith("-"):
            raise ConfigError(f"strategy {self.strategy!r} is empty or looks like an option; "
                              "expected a strategy name such as 'sma_cross'.")
        if self.scope not in SCOPES:
            raise ConfigError(f"service scope {self.scope!r} is unknown; expected 'user' or "
                              "'system' (--scope user|system).")
        if isinstance(self.args, str):
            raise ConfigError(f"args {self.args!r} is one string; expected a tuple of words, "
                              "e.g. ('--broker', 'alpaca').")
        _check_unit_name(self.unit_name)
        for word in (self.strategy, *self.args, *self.command[1:]):
            _check_line(word, "command word")

    @property
    def unit_name(self) -> str:
        """The unit file name, ``<name>.service``."""
        base = self.name or "fw-paper-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", str(self.strategy))
        return base if base.endswith(".service") else base + ".service"

    @property
    def home(self) -> Path:
        """``FW_HOME`` of the service (absolute)."""
        return Path(self.fw_home or fw_home()).expanduser().absolute()

    @property
    def env_path(self) -> Path:
        """The environment file the unit names (it may not exist: the ``-`` makes it optional)."""
        return Path(self.env_file or self.home / ".env").expanduser().absolute()

    @property
    def workdir(self) -> Path:
        """``WorkingDirectory=`` of the service."""
        return Path(self.working_dir or self.home).expanduser().absolute()

    @property
    def fw_words(self) -> tuple[str, ...]:
        """How the units run fw (see ``fw_command``)."""
        return tuple(self.fw_command or default_fw_command())

    @property
    def paper_run_id(self) -> str:
        """The run the service trades: ``--run-id`` of ``args``, else ``run_id``, else the unit
        name without ``.service``."""
        given = option_value(self.args, "--run-id")
        return given or self.run_id or self.unit_name.removesuffix(".service")

    @property
    def paper_db(self) -> str | None:
        """``--db`` of ``args``, or None (the database of the unit's environment)."""
        return option_value(self.args, "--db")

    @property
    def command(self) -> tuple[str, ...]:
        """The full ``ExecStart`` command: fw, ``paper``, the strategy, the options, ``--run-id``."""
        words = [*self.fw_words, "paper", self.strategy, *self.args]
        if option_value(self.args, "--run-id") is None:
            words += ["--run-id", self.paper_run_id]
        return tuple(words)


def option_value(words: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` in command ``words`` (``--flag VALUE`` or ``--flag=VALUE``; the
    last one wins, as click reads it), or None."""
    found = None
    for i, word in enumerate(words):
        if word == flag and i + 1 < len(words):
            found = words[i + 1]
        elif word.startswith(flag + "="):
            found = word.split("=", 1)[1]
    return found


def default_fw_command() -> tuple[str, ...]:
    """How the service runs fw: the venv's ``fw``, else ``fw`` on PATH, else ``python -c``.

    The ``fw`` beside the running interpreter comes first because a service has no activated
    virtualenv: ``PATH`` might hold another installation, or none.
    """
    sibling = Path(sys.executable).parent / "fw"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return (str(sibling),)
    found = shutil.which("fw")
    if found:
        return (str(Path(found).absolute()),)
    return (sys.executable, "-c", _RUN_FW)


def unit_text(spec: ServiceSpec) -> str:
    """The systemd unit that runs ``spec`` (see :class:`ServiceSpec`).

    Parameters
    ----------
    spec : ServiceSpec
        What to run and where.

    Returns
    -------
    str
        The unit file's text, ending with a newline.
    """
    ctl = "systemctl --user" if spec.scope == "user" else "sudo systemctl"
    service = [
        "Type=simple",
        *service_environment(spec),
        f"ExecStart={exec_line(spec.command)}",
        "Restart=on-failure",
        f"RestartSec={RESTART_SEC}",
        f"# exit {StorageError.exit_code} (EX_IOERR): the state database cannot be written (disk "
        "full or read-only);",
        "# a restart would only fail again. Free space (or fix the permissions), then",
        f"# `{ctl} restart {spec.unit_name}`.",
        f"RestartPreventExitStatus={StorageError.exit_code}",
        # fw paper handles SIGTERM: finishes the bar in hand, persists, exits 0
        "KillSignal=SIGTERM",
        f"TimeoutStopSec={TIMEOUT_STOP_SEC}",
    ]
    wanted_by = "default.target" if spec.scope == "user" else "multi-user.target"
    lines = [
        "# written by `fw service install`; `fw service uninstall` removes it",
        "[Unit]",
        f"Description={_literal(f'fw paper trading: {spec.strategy} ({spec.unit_name})')}",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        *service,
        "",
        "[Install]",
        f"WantedBy={wanted_by}",
    ]
    return "\n".join(lines) + "\n"


def service_environment(spec: ServiceSpec) -> list[str]:
    """The ``[Service]`` lines every unit of ``spec`` shares: working directory, ``FW_HOME``,
    the optional environment file and, for the system scope, ``User=``."""
    lines = [
        f"WorkingDirectory={_literal(spec.workdir)}",
        f"Environment={_exec_word('FW_HOME=' + str(spec.home), command=False)}",
        # unbuffered output reaches the journal as it is written, not at exit
        "Environment=PYTHONUNBUFFERED=1",
        f"EnvironmentFile=-{_literal(spec.env_path)}",
    ]
    if spec.scope == "system":
        lines.append(f"User={_literal(spec.user or getpass.getuser())}")
    return lines


def heartbeat_unit_names(unit: str) -> tuple[str, str]:
    """``(<name>-heartbeat.service, <name>-heartbeat.timer)`` of the service ``unit``."""
    base = _unit(unit).removesuffix(".service") + HEARTBEAT_SUFFIX
    return base + ".service", base + ".timer"


def exec_line(words: Sequence[str]) -> str:
    """``words`` as one systemd command line (``ExecStart=`` value)."""
    return " ".join(_exec_word(w) for w in words)


def _exec_word(word: str, *, command: bool = True) -> str:
    # systemd expands %specifiers everywhere and $VARIABLES in command lines (not in
    # Environment=); doubling keeps them literal
    text = str(word).replace("%", "%%")
    if command:
        text = text.replace("$", "$$")
    if _SAFE_WORD.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: object) -> str:
    # Description=, User=, WorkingDirectory=, EnvironmentFile= take the rest of the line (spaces
    # are fine) but expand %specifiers
    return str(value).replace("%", "%%")


def _check_line(word: str, what: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in str(word)):
        raise ConfigError(f"{what} {word!r} contains a newline or control character, which a "
                          "systemd unit cannot hold; remove it.")


def _check_unit_name(unit: str) -> None:
    if not _UNIT_NAME.match(unit) or unit.startswith(("-", ".")):
        raise ConfigError(f"service name {unit!r} is not a valid systemd unit name; expected "
                          "letters, digits and - _ . : @ only, e.g. --name fw-paper-spy.")


def _unit(name: str) -> str:
    unit = name if str(name).endswith(".service") else f"{name}.service"
    _check_unit_name(unit)
    return unit


def unit_dir(scope: str) -> Path:
    """Where units of ``scope`` live: ``$XDG_CONFIG_HOME/systemd/user`` or ``/etc/systemd/system``."""
    if scope not in SCOPES:
        raise ConfigError(f"service scope {scope!r} is unknown; expected 'user' or 'system'.")
    if scope == "system":
        return SYSTEM_UNIT_DIR
    config = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(config) if config else Path.home() / ".config") / "systemd" / "user"


# ---------------------------------------------------------------------------------------------
# systemctl


@dataclass(frozen=True)
class ServiceResult:
    """What :func:`install` or :func:`uninstall` did (or, for a dry run, would do).

    Attributes
    ----------
    unit : str
        The unit name (``<name>.service``).
    unit_path : Path
        The unit file written or removed.
    unit_text : str or None
        The unit installed (None for an uninstall).
    commands : tuple of tuple of str
        The systemctl commands, in order.
    ran : bool
        False for a dry run: nothing was written or run.
    notes : tuple of str
        Things the user should know (e.g. lingering for a user service).
    companions : tuple of (Path, str or None)
        The heartbeat units (``<name>-heartbeat.service`` and ``.timer``) written, with their
        text, or removed (text None).
    """

    unit: str
    unit_path: Path
    unit_text: str | None
    commands: tuple[tuple[str, ...], ...]
    ran: bool
    notes: tuple[str, ...] = ()
    companions: tuple[tuple[Path, str | None], ...] = ()

    def lines(self) -> list[str]:
        """A human summary, one line each."""
        verb = "would run" if not self.ran else "ran"
        out = [f"unit {self.unit}: {self.unit_path}"]
        out += [f"heartbeat unit {path.name}: {path}" for path, _ in self.companions]
        out += [f"{verb}: {shlex.join(c)}" for c in self.commands]
        return out + list(self.notes)


def _systemctl_words(systemctl: str, scope: str) -> list[str]:
    return [systemctl, "--user"] if scope == "user" else [systemctl]


def _find_systemctl(systemctl: str) -> str | None:
    return shutil.which(systemctl)


def _run(argv: Sequence[str], *, unit: str, scope: str) -> str:
    """Run one systemctl command; its stdout, or a ServiceError that says why and what to do."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceError(f"`{shlex.join(argv)}` could not run: {exc}.") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip() or "(no output)"
        raise ServiceError(f"`{shlex.join(argv)}` failed (exit {done.returncode}): {detail}. "
                           + _permission_hint(detail, scope, unit))
    return done.stdout


def _permission_hint(detail: str, scope: str, unit: str) -> str:
    low = detail.lower()
    if scope == "user" and ("bus" in low or "xdg_runtime_dir" in low):
        return ("A user service needs the user's systemd instance: log in through a real "
                "session (not `su`), or run `loginctl enable-linger $USER` and log in again; "
                "or install with --scope system as root.")
    if "access denied" in low or "permission" in low or "interactive authentication" in low:
        return ("Not permitted: a system service needs root (`sudo fw service ...`), or use "
                "--scope user.")
    return f"See `journalctl {'--user ' if scope == 'user' else ''}-u {unit}` for details."


def _manual_steps(unit: str, path: Path, scope: str,
                  companions: Sequence[tuple[Path, str | None]] = ()) -> tuple[str, ...]:
    ctl = "systemctl --user" if scope == "user" else "sudo systemctl"
    timers = [p.name for p, _ in companions if p.suffix == ".timer"]
    return (f"save the unit above as {path}",
            *(f"save the heartbeat unit above as {p}" for p, _ in companions),
            f"{ctl} daemon-reload", f"{ctl} enable --now {unit}",
            *(f"{ctl} enable --now {t}" for t in timers))


def install(spec: ServiceSpec, *, dry_run: bool = False, force: bool = False,
            systemctl: str = "systemctl", directory: Path | None = None,
            heartbeat_every: float = HEARTBEAT_EVERY) -> ServiceResult:
    """Write the unit of ``spec`` and its heartbeat timer, reload systemd, ``enable --now`` both.

    Parameters
    ----------
    spec : ServiceSpec
        The service.
    dry_run : bool
        Return the unit texts and the commands without writing or running anything.
    force : bool
        Replace an existing unit file with different content (and restart the service if it
        runs, so the new command takes effect). The heartbeat units are derived from the spec
        and always rewritten.
    systemctl : str
        The systemctl executable (name looked up on PATH, or a path).
    directory : Path, optional
        Unit folder; default :func:`unit_dir` of the spec's scope.
    heartbeat_every : float
        Seconds between two heartbeat checks (see :func:`live.heartbeat.timer_units`).

    Returns
    -------
    ServiceResult

    Raises
    ------
    ServiceError
        A different unit exists and ``force`` is False; systemctl is missing (the error carries
        the unit text and the manual steps); a unit file cannot be written; systemctl fails.
    """
    from live.heartbeat import timer_units  # live.heartbeat builds on this module

    text = unit_text(spec)
    unit = spec.unit_name
    folder = Path(directory or unit_dir(spec.scope))
    path = folder / unit
    old = _read_unit(path)
    if old is not None and old != text and not force:
        diff = "\n".join(difflib.unified_diff(old.splitlines(), text.splitlines(), str(path),
                                              "new", lineterm="", n=0))
        raise ServiceError(f"{path} already exists with a different unit; refusing to overwrite "
                           f"it. Pass --force to replace it, or choose another --name.\n{diff}",
                           unit_text=text)
    companions = tuple((folder / name, body)
                       for name, body in timer_units(spec, heartbeat_every).items())
    timer = heartbeat_unit_names(unit)[1]
    base = _systemctl_words(systemctl, spec.scope)
    commands = [(*base, "daemon-reload"), (*base, "enable", "--now", unit),
                (*base, "enable", "--now", timer)]
    if any(_read_unit(p) not in (None, body) for p, body in companions):
        commands.append((*base, "try-restart", timer))  # a running timer keeps its old schedule
    if old is not None and old != text:
        commands.append((*base, "try-restart", unit))  # a running service keeps its old command
    notes = _install_notes(spec)
    if dry_run:
        return ServiceResult(unit, path, text, tuple(commands), ran=False, notes=notes,
                             companions=companions)
    found = _find_systemctl(systemctl)
    if found is None:
        steps = _manual_steps(unit, path, spec.scope, companions)
        extra = "".join(f"and this heartbeat unit as {p}:\n\n{body}\n" for p, body in companions)
        raise ServiceError(
            f"{systemctl!r} was not found on PATH, so this host does not seem to run systemd; "
            f"nothing was written. To install by hand, save this unit as {path}:\n\n{text}\n"
            f"{extra}then run:\n  " + "\n  ".join(steps[1 + len(companions):]),
            unit_text=text, manual_steps=steps)
    for target, body in ((path, text), *companions):
        _write_unit(target, body, spec.scope)
    for argv in commands:
        _run([found, *argv[1:]], unit=unit, scope=spec.scope)
    return ServiceResult(unit, path, text, tuple(commands), ran=True, notes=notes,
                         companions=companions)


def _install_notes(spec: ServiceSpec) -> tuple[str, ...]:
    journal = "journalctl --user" if spec.scope == "user" else "journalctl"
    check = heartbeat_unit_names(spec.unit_name)[0]
    notes = [f"logs: {journal} -u {spec.unit_name} -f",
             f"heartbeat checks (alerts when no bar arrives in market hours): {journal} -u {check}",
             f"environment file (optional, e.g. Alpaca keys): {spec.env_path}"]
    if spec.scope == "user":
        notes.append("a user service stops at logout unless lingering is on: "
                     "`loginctl enable-linger $USER` (once) keeps it running and starts it at boot")
    return tuple(notes)


def _read_unit(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ServiceError(f"cannot read the existing unit {path}: {exc}.") from exc


def _write_unit(path: Path, text: str, scope: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)  # atomic: systemd never reads half a unit
    except PermissionError as exc:
        hint = ("a system service needs root: `sudo fw service install ... --scope system`, or "
                "use --scope user" if scope == "system" else "check the folder's permissions")
        raise ServiceError(f"cannot write the unit {path}: {exc}. Fix: {hint}.") from exc
    except OSError as exc:
        raise ServiceError(f"cannot write the unit {path}: {exc}.") from exc


def uninstall(name: str, scope: str = "user", *, dry_run: bool = False,
              systemctl: str = "systemctl", directory: Path | None = None) -> ServiceResult:
    """Stop and disable the service and its heartbeat timer, remove their unit files, reload
    systemd.

    Parameters
    ----------
    name : str
        Unit name, with or without ``.service``.
    scope : str
        ``"user"`` or ``"system"``.
    dry_run : bool
        Return the commands without running anything.
    systemctl : str
        The systemctl executable.
    directory : Path, optional
        Unit folder; default :func:`unit_dir` of ``scope``.

    Raises
    ------
    ServiceError
        No such unit file; systemctl missing or failing; a file cannot be removed.
    """
    unit = _unit(name)
    folder = Path(directory or unit_dir(scope))
    path = folder / unit
    check, timer = heartbeat_unit_names(unit)
    # a unit installed before the heartbeat existed has no timer; a dry run of a unit that is
    # not there shows the full set
    has_timer = (folder / timer).exists() or not path.exists()
    base = _systemctl_words(systemctl, scope)
    commands = [(*base, "disable", "--now", timer)] if has_timer else []
    # the timer goes first: no check runs against a runner that is stopping
    commands += [(*base, "disable", "--now", unit), (*base, "daemon-reload")]
    companions = tuple((folder / n, None) for n in (check, timer)
                       if dry_run or (folder / n).exists())
    if dry_run:
        return ServiceResult(unit, path, None, tuple(commands), ran=False, companions=companions)
    if not path.exists():
        raise ServiceError(f"no unit file {path}; nothing to uninstall. Check --name and --scope "
                           f"(`fw service status --name NAME`) or look in {path.parent}.")
    found = _find_systemctl(systemctl)
    if found is None:
        ctl = "systemctl --user" if scope == "user" else "sudo systemctl"
        files = " ".join(shlex.quote(str(p)) for p in (path, *(c for c, _ in companions)))
        raise ServiceError(f"{systemctl!r} was not found on PATH; nothing was changed. By hand: "
                           f"`{ctl} disable --now {timer} {unit}`, `rm {files}`, "
                           f"`{ctl} daemon-reload`.")
    for argv in commands[:-1]:
        _run([found, *argv[1:]], unit=unit, scope=scope)  # stops it gracefully (SIGTERM)
    for target in (path, *(c for c, _ in companions)):
        try:
            target.unlink()
        except OSError as exc:
            raise ServiceError(f"the service is stopped but {target} could not be removed: "
                               f"{exc}. Remove it by hand, then run systemctl daemon-reload."
                               ) from exc
    _run([found, *commands[-1][1:]], unit=unit, scope=scope)
    return ServiceResult(unit, path, None, tuple(commands), ran=True, companions=companions)


def status(name: str, scope: str = "user", *, systemctl: str = "systemctl",
           run_status_json: Callable[[], Mapping[str, Any]] | None = None,
           directory: Path | None = None) -> dict[str, Any]:
    """The service's systemd state, its heartbeat timer's and, optionally, its run's
    ``fw status --json`` fields.

    Parameters
    ----------
    name : str
        Unit name, with or without ``.service``.
    scope : str
        ``"user"`` or ``"system"``.
    systemctl : str
        The systemctl executable.
    run_status_json : callable, optional
        Returns the run's status (what ``fw status --json`` prints); its FwError (e.g. no run
        yet) is reported in ``run_error``, not raised.
    directory : Path, optional
        Unit folder; default :func:`unit_dir` of ``scope``.

    Returns
    -------
    dict
        ``unit``, ``scope``, ``unit_path``, ``installed`` (the unit file exists), ``load_state``,
        ``active_state``, ``sub_state``, ``main_pid`` (None when not running), ``started_at``
        (systemd's text, None when never started), ``restarts``, ``result``, ``heartbeat``
        (see :func:`heartbeat_status`), ``run``, ``run_error``.

    Raises
    ------
    ServiceError
        systemctl is missing or fails.
    """
    unit = _unit(name)
    folder = Path(directory or unit_dir(scope))
    path = folder / unit
    found = _find_systemctl(systemctl)
    if found is None:
        raise ServiceError(f"{systemctl!r} was not found on PATH, so the service state is "
                           "unknown; this host does not seem to run systemd.")
    props = _show(found, scope, unit, SHOW_PROPERTIES)
    out: dict[str, Any] = {
        "unit": unit, "scope": scope, "unit_path": str(path), "installed": path.exists(),
        "load_state": props.get("LoadState") or None,
        "active_state": props.get("ActiveState") or None,
        "sub_state": props.get("SubState") or None,
        "main_pid": _positive_int(props.get("MainPID")),
        "started_at": props.get("ExecMainStartTimestamp") or None,
        "restarts": _positive_int(props.get("NRestarts")) or 0,
        "result": props.get("Result") or None,
        "heartbeat": heartbeat_status(found, unit, scope, folder),
        "run": None, "run_error": None,
    }
    if run_status_json is not None:
        try:
            out["run"] = dict(run_status_json())
        except FwError as exc:
            out["run_error"] = str(exc)
    return out


def heartbeat_status(systemctl: str, unit: str, scope: str, folder: Path) -> dict[str, Any]:
    """The heartbeat timer of ``unit``: its state and the outcome of the last check.

    Returns
    -------
    dict
        ``timer``, ``installed`` (its unit file exists), ``load_state``, ``active_state``,
        ``sub_state``, ``last_trigger`` (systemd's text, None when it never fired),
        ``last_result`` (``success``, ``exit-code``...), ``last_exit_status`` (0 ok, 1 silent),
        ``last_check_at``.
    """
    check, timer = heartbeat_unit_names(unit)
    props = _show(systemctl, scope, timer, TIMER_PROPERTIES)
    ran = _show(systemctl, scope, check, CHECK_PROPERTIES)
    status_text = (ran.get("ExecMainStatus") or "").strip()
    return {
        "timer": timer, "installed": (folder / timer).exists(),
        "load_state": props.get("LoadState") or None,
        "active_state": props.get("ActiveState") or None,
        "sub_state": props.get("SubState") or None,
        "last_trigger": _show_time(props.get("LastTriggerUSec")),
        "last_result": ran.get("Result") or None,
        "last_exit_status": int(status_text) if status_text.isdigit() else None,
        "last_check_at": _show_time(ran.get("ExecMainExitTimestamp")),
    }


def _show(systemctl: str, scope: str, unit: str, properties: Sequence[str]) -> dict[str, str]:
    argv = [*_systemctl_words(systemctl, scope), "show", unit, "--property=" + ",".join(properties)]
    return parse_show(_run(argv, unit=unit, scope=scope))


def _show_time(text: str | None) -> str | None:
    # systemctl show prints "n/a" (or nothing) for a time that never happened
    text = (text or "").strip()
    return None if text in ("", "n/a", "0") else text


def installed_units(scope: str = "user", directory: Path | None = None,
                    prefix: str = "fw-") -> list[str]:
    """Service unit files named ``<prefix>*.service`` in the unit folder of ``scope``, sorted;
    the heartbeat checks that :func:`install` writes beside them are not listed."""
    folder = Path(directory or unit_dir(scope))
    names = [p.name for p in folder.glob(f"{prefix}*.service") if p.is_file()]
    return sorted(n for n in names if not _is_heartbeat_check(folder, n))


def _is_heartbeat_check(folder: Path, name: str) -> bool:
    # <x>-heartbeat.service with its <x>-heartbeat.timer beside it was written by install()
    stem = name.removesuffix(".service")
    return stem.endswith(HEARTBEAT_SUFFIX) and (folder / f"{stem}.timer").is_file()


def unit_command(name: str, scope: str = "user", directory: Path | None = None
                 ) -> list[str] | None:
    """The ``ExecStart`` words of an installed unit (to find its ``--run-id`` or ``--db``).

    Returns
    -------
    list of str or None
        None when the unit file does not exist or has no ``ExecStart=``.
    """
    text = _read_unit(Path(directory or unit_dir(scope)) / _unit(name))
    lines = [x for x in (text or "").splitlines() if x.startswith("ExecStart=")]
    if not lines:
        return None
    raw = lines[-1].removeprefix("ExecStart=")
    try:
        words = shlex.split(raw)
    except ValueError as exc:
        raise ServiceError(f"cannot read the ExecStart= of {name}: {exc}; was the unit edited "
                           "by hand? Reinstall it with `fw service install --force`.") from exc
    # undo the %% / $$ escapes that exec_line added
    return [w.replace("%%", "%").replace("$$", "$") for w in words]


def parse_show(text: str) -> dict[str, str]:
    """``systemctl show`` output (``Key=value`` lines) as a dict; other lines are ignored."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            props[key.strip()] = value.strip()
    return props


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(str(text).strip())
    except ValueError:
        return None
    return value if value > 0 else None


# ---------------------------------------------------------------------------------------------
# health
