#!/usr/bin/env python3
"""Set up fw in a local virtual environment and run one of its two quickstart jobs.

Usage (needs only ``python3`` >= 3.11 on the machine)::

    python3 bootstrap.py demo   # install fw, run a walk-forward backtest on the embedded data
    python3 bootstrap.py test   # install fw with its test extras, run lint, layers and all tests

and, for a paper-trading server (docs/deployment.md)::

    python3 bootstrap.py live   # install fw with the live (alpaca-py, apprise) and ml extras

The environment lives in ``.venv`` next to this file. Installation is skipped when ``setup.cfg``
has not changed since the last successful install (a stamp file records its hash), so repeated
runs start immediately.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
DEMO_OUT = ROOT / "out" / "quickstart"
# The Webull SDK pins protobuf < 5 and grpcio < 1.60 on Python 3.11 for its gRPC event stream
# and streaming quotes, which fw does not use (it polls orders over REST). Those pins conflict
# with streamlit (protobuf >= 5.26), so the SDK is installed without its dependencies; its REST
# dependencies (requests, jmespath, six, cachetools) come with the live/test extras.
# tests/live/test_webull_sdk.py proves the REST clients import neither protobuf nor grpc.
WEBULL_SDK = "webull-openapi-python-sdk==3.0.4"


def _run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def _ensure_env(extras: str) -> None:
    """Create ``.venv`` and install fw (editable) with ``extras`` unless already current."""
    if sys.version_info < (3, 11):  # noqa: UP036 - bootstrap may be started by an older python3
        sys.exit(f"fw needs Python >= 3.11; this is {sys.version.split()[0]}. Install a newer python3.")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    webull = any(e in ("live", "test") for e in extras.split(","))
    digest = hashlib.sha256((ROOT / "setup.cfg").read_bytes() + extras.encode()
                            + (WEBULL_SDK.encode() if webull else b"")).hexdigest()
    stamp = VENV / f".fw-installed-{extras or 'core'}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extras}]" if extras else "."
    # compat mode puts the checkout on sys.path, so packages added later import without reinstalling
    _run([PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q",
          "--config-settings", "editable_mode=compat", "-e", target])
    if webull:
        _run([PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps",
              WEBULL_SDK])
    stamp.write_text(digest)


def demo() -> None:
    _ensure_env("")
    _run([BIN / "fw", "backtest", "--walk-forward", "--out", DEMO_OUT])


def test() -> None:
    _ensure_env("test")
    _run([BIN / "ruff", "check", "."])
    _run([BIN / "lint-imports", "--no-cache"])
    # pytest exits 5 when it collects nothing: that is a failure here, as is any failing test.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(ROOT / ".venv" / "numba-cache"))
    _run([PYTHON, "-m", "pytest", "-n", "2", "-q"], env=env)


def live() -> None:
    _ensure_env("live,ml")
    _run([BIN / "fw", "--help"], stdout=subprocess.DEVNULL)  # the install works
    print(f"fw is installed with its live and ml extras: {BIN / 'fw'}")


def main(argv: list[str]) -> int:
    jobs = {"demo": demo, "test": test, "live": live}
    if len(argv) != 1 or argv[0] not in jobs:
        print(__doc__)
        return 2
    try:
        jobs[argv[0]]()
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
