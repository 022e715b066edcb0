"""Shared fixtures.

``shared_data`` is the one way tests reach the real market data in ``../shared/data``; it skips
with a clear reason when that folder is absent. Every test runs with ``FW_HOME`` pointed at a fresh
temporary folder so nothing touches the user's home.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    override = os.environ.get("FW_SHARED_DATA")
    return Path(override) if override else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the real market data folder (``../shared/data``); skips when it is absent."""
    path = _shared_data_dir()
    if not (path / "daily").is_dir():
        pytest.skip(
            f"real market data not found at {path} (expected ../shared/data beside the repo, "
            "or set FW_SHARED_DATA); skipping tests that need it"
        )
    return path


@pytest.fixture(autouse=True)
def _isolated_fw_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("fw_home")
    monkeypatch.setenv("FW_HOME", str(home))
    return home
