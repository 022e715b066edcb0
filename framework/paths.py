"""Where fw keeps its files: ``FW_HOME`` (default ``~/.fw``).

Layout under FW_HOME: ``data/`` (bar store), ``state/`` (live database), ``logs/``, ``runs/``
(backtest outputs), ``models/`` (ML registry). Nothing is created at import time.
"""

from __future__ import annotations

import os
from pathlib import Path


def fw_home() -> Path:
    """Return the fw home folder from ``FW_HOME`` (default ``~/.fw``); not created here."""
    raw = os.environ.get("FW_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".fw"


def home_subdir(name: str) -> Path:
    """Return ``FW_HOME/name``, creating it on first use."""
    path = fw_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
