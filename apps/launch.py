"""Start the ``fw dashboard`` Streamlit app in a subprocess and wait until it answers.

:func:`launch` runs ``python -m streamlit run apps/dashboard.py`` bound to 127.0.0.1 by
default, with usage statistics, the file watcher and the e-mail prompt off, so a dashboard
only serves the page and writes nothing beside it. :func:`wait_ready` polls Streamlit's health
endpoint. Importing this module imports neither Streamlit nor the dashboard.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from framework.errors import ConfigError, FwError

DASHBOARD = Path(__file__).resolve().with_name("dashboard.py")
HEALTH_PATH = "/_stcore/health"
INSTALL_HINT = "pip install 'fw[dashboard]'"
# Streamlit reads STREAMLIT_<SECTION>_<OPTION> variables; unlike command-line flags, an option
# an older Streamlit does not know is ignored rather than fatal.
_QUIET_ENV = {
    "STREAMLIT_SERVER_SHOW_EMAIL_PROMPT": "false",
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "STREAMLIT_CLIENT_TOOLBAR_MODE": "minimal",  # a viewer: no "Deploy" or developer menu
}


class DashboardError(FwError, RuntimeError):
    """The dashboard could not be started or did not become ready."""


def streamlit_command(db: str | None, run_id: str | None, port: int = 8501,
                      address: str = "127.0.0.1", headless: bool = True,
                      data_dir: Path | None = None) -> list[str]:
    """The ``python -m streamlit run`` command line :func:`launch` runs (see there)."""
    _check_port(port)
    command = [
        sys.executable, "-m", "streamlit", "run", str(DASHBOARD),
        "--server.address", str(address), "--server.port", str(port),
        "--server.headless", "true" if headless else "false",
        "--browser.gatherUsageStats", "false",
        # a monitor, not a development server: no source watching, no reruns on save
        "--server.fileWatcherType", "none", "--server.runOnSave", "false",
        "--",
    ]
    if db:
        command += ["--db", str(db)]
    if run_id:
        command += ["--run-id", str(run_id)]
    if data_dir is not None:
        command += ["--data-dir", str(data_dir)]
    return command


def _check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"port {port!r} is not a TCP port; expected an integer in 1..65535, "
                          "e.g. --port 8501.")


def resolve_run(db: str | None, run_id: str | None) -> tuple[str, str]:
    """Check before serving that the store exists and holds the run: ``(url, run_id)``.

    ``run_id`` None picks the latest run. A typo then fails in the terminal, not in the page.

    Raises
    ------
    ConfigError
        No database file at an SQLite URL (it is not created), no runs, or an unknown run id
        (with the known ones).
    """
    from apps.dashboard import check_database
    from live.command import latest_run_id, require_run
    from live.state import Store, default_url

    url = db or default_url()
    check_database(url)
    store = Store(url)
    try:
        return url, str(require_run(store, run_id)["run_id"]) if run_id else latest_run_id(store)
    finally:
        store.close()


def require_streamlit() -> None:
    """Raise :class:`DashboardError` with the install command when Streamlit is missing."""
    if importlib.util.find_spec("streamlit") is None:
        raise DashboardError(f"the dashboard needs Streamlit, which is not installed; install it "
                             f"with `{INSTALL_HINT}` (or `pip install streamlit`).")


def launch(db: str | None, run_id: str | None, port: int = 8501, address: str = "127.0.0.1",
           headless: bool = True, *, data_dir: Path | None = None, log: Path | None = None,
           env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start the dashboard server; the caller owns the process (terminate it when done).

    Parameters
    ----------
    db : str, optional
        State store URL (None: ``FW_DB_URL``, else FW_HOME/state/fw.sqlite).
    run_id : str, optional
        Paper run to show (None: the latest run of the store).
    port : int
        TCP port to serve on.
    address : str
        Interface to bind; 127.0.0.1 keeps the dashboard on this machine.
    headless : bool
        False lets Streamlit open a browser tab.
    data_dir : Path, optional
        Folder of CSV bars for the benchmark and market conditions (as ``fw report``).
    log : Path, optional
        File receiving Streamlit's output (default: this process's stdout/stderr).
    env : mapping, optional
        Environment of the server (default: this process's), plus the quiet settings.

    Returns
    -------
    subprocess.Popen
        The running server; it serves at ``http://ADDRESS:PORT`` once :func:`wait_ready`
        returns.

    Raises
    ------
    DashboardError
        Streamlit is not installed, or the process cannot be started.
    ConfigError
        ``port`` is not a TCP port.
    """
    require_streamlit()
    command = streamlit_command(db, run_id, port, address, headless, data_dir)
    environment = {**(os.environ if env is None else env), **_QUIET_ENV}
    output = None
    try:
        if log is not None:
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            output = open(log, "ab")  # noqa: SIM115 - handed to the child, closed below
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT if output else None,
                                env=environment, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise DashboardError(f"cannot start {' '.join(command[:5])}: {exc}; check that "
                             f"{sys.executable} runs and the log path {log} is writable.") from exc
    finally:
        if output is not None:
            output.close()  # the child holds its own descriptor


def wait_ready(url: str, timeout: float = 30.0, *, process: subprocess.Popen | None = None,
               interval: float = 0.1) -> None:
    """Poll ``URL/_stcore/health`` until Streamlit answers "ok".

    Parameters
    ----------
    url : str
        The dashboard's base URL, e.g. ``http://127.0.0.1:8501``.
    timeout : float
        Seconds to wait in total.
    process : subprocess.Popen, optional
        The server: when it exits, waiting stops at once with its exit code.
    interval : float
        Seconds between polls.

    Raises
    ------
    DashboardError
        The server exited, or did not answer within ``timeout`` (with the last error seen).
    """
    health = url.rstrip("/") + HEALTH_PATH
    deadline = time.monotonic() + float(timeout)
    last = "no answer yet"
    while True:
        if process is not None and process.poll() is not None:
            raise DashboardError(f"the dashboard server exited with code {process.returncode} "
                                 f"before {health} answered; see its output above or in the log.")
        try:
            with urllib.request.urlopen(health, timeout=max(interval, 1.0)) as response:
                body = response.read().decode("utf-8", "replace").strip()
                if response.status == 200 and body == "ok":
                    return
                last = f"HTTP {response.status} {body[:80]!r}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            raise DashboardError(f"the dashboard at {url} was not ready after {timeout:g} s "
                                 f"({health}: {last}); is the port free and the address right?")
        time.sleep(interval)
