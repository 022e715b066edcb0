"""reports.tearsheet: the quantstats page is written offline, carries fw's notes and agrees with
framework.metrics. quantstats takes about 1-2 s per page, so one page is shared by most tests."""

from __future__ import annotations

import html
import logging
import re
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from framework import metrics
from framework.errors import DataError
from reports.tearsheet import _daily_returns, write_tearsheet

REPO_ROOT = Path(__file__).resolve().parents[2]
TITLE = "SMA cross <fast/slow>"
BENCHMARK_TITLE = "SPY buy and hold"
NOTES = (
    "fills at next open",
    "benchmark: S&P 500 index used as SPY proxy",
    "data: daily/SPY.csv.gz 2019-01-02 .. 2020-03-10",
    "costs on: 1 bp commission + 2 bp slippage",
)


def _returns(n: int = 300) -> tuple[pd.Series, pd.Series]:
    # Bars are labelled by their UTC close time (21:00 UTC = 16:00 New York in winter).
    index = pd.bdate_range("2019-01-02", periods=n, tz="UTC") + pd.Timedelta(hours=21)
    rng = np.random.default_rng(42)
    bench = pd.Series(rng.normal(0.0005, 0.011, n), index=index)
    strategy = pd.Series(0.6 * bench.to_numpy() + rng.normal(0.0002, 0.006, n), index=index)
    return strategy, bench


class _NetworkBlocked(OSError):
    pass


@contextmanager
def _offline() -> Iterator[list[object]]:
    """Cut every way out: Python sockets, libcurl (yfinance uses curl_cffi, which bypasses
    Python sockets) and quantstats' own download helper. Yields the list of attempts."""
    import curl_cffi.curl

    with matplotlib.rc_context():  # importing quantstats edits rcParams; keep the test neutral
        import quantstats.utils

    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append((args[1:], kwargs))
        raise _NetworkBlocked("network access attempted during write_tearsheet")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(curl_cffi.curl.Curl, "perform", refuse)
        patch.setattr(quantstats.utils, "download_returns", refuse)
        yield attempts


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory):
    """Write one page offline, recording network attempts, warnings and font log records."""
    strategy, bench = _returns()
    font_records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = font_records.append  # type: ignore[method-assign]
    font_logger = logging.getLogger("matplotlib.font_manager")
    font_logger.addHandler(handler)
    rc_before = dict(matplotlib.rcParams)
    level_before, backend_before = font_logger.level, matplotlib.get_backend()
    path = tmp_path_factory.mktemp("tearsheet") / "sub" / "page.html"
    try:
        with _offline() as attempts, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = write_tearsheet(
                strategy, bench, path, title=TITLE, benchmark_title=BENCHMARK_TITLE, notes=NOTES
            )
    finally:
        font_logger.removeHandler(handler)
    return {
        "path": path,
        "result": result,
        "page": path.read_text(encoding="utf-8"),
        "strategy": strategy,
        "bench": bench,
        "attempts": attempts,
        "warnings": [str(w.message) for w in caught],
        "font_records": [r.getMessage() for r in font_records],
        "rc_changed": {k for k, v in dict(matplotlib.rcParams).items() if rc_before.get(k) != v},
        "level_restored": font_logger.level == level_before,
        "backend_restored": matplotlib.get_backend() == backend_before,
    }


def test_page_is_written_with_title_benchmark_and_notes(written) -> None:
    assert written["result"] == written["path"] and written["path"].stat().st_size > 10_000
    page = written["page"]
    assert html.escape(TITLE, quote=False) in page
    assert BENCHMARK_TITLE in page
    for note in NOTES:
        assert html.escape(note, quote=False) in page
    # the notes block sits under the header, before the first chart and the metrics table
    notes_at = page.index('id="fw-notes"')
    assert notes_at < page.index("<svg") and notes_at < page.index("Cumulative Return")


def test_no_network_access(written) -> None:
    assert written["attempts"] == []


def test_offline_guard_catches_a_quantstats_download(tmp_path: Path) -> None:
    # Known-bad: a ticker benchmark makes quantstats download it. The guard must see that, or
    # test_no_network_access would prove nothing.
    import quantstats

    strategy, _ = _returns(30)
    with _offline() as attempts, pytest.raises(_NetworkBlocked):
        quantstats.reports.html(strategy.tz_localize(None), "SPY", output=str(tmp_path / "x.html"))
    assert attempts


def test_quiet_and_no_lasting_side_effects(written) -> None:
    assert written["warnings"] == []
    assert not [m for m in written["font_records"] if "findfont" in m]
    assert written["rc_changed"] == set()
    assert written["level_restored"] and written["backend_restored"]


def _row(page: str, label: str) -> tuple[float, float]:
    """(benchmark, strategy) numbers of a quantstats metrics row, in the units printed."""
    match = re.search(
        rf"<tr><td>{re.escape(label)}</td><td>([^<]*)</td><td>([^<]*)</td></tr>", page
    )
    assert match, f"row {label!r} not found in the quantstats table"
    return tuple(float(cell.rstrip("%").replace(",", "")) for cell in match.groups())  # type: ignore[return-value]


def test_printed_metrics_agree_with_framework_metrics(written) -> None:
    page, strategy, bench = written["page"], written["strategy"], written["bench"]
    # quantstats prints percentages with 2 decimals and ratios with 2 decimals.
    for label, fn, scale in (
        ("Cumulative Return", metrics.total_return, 100.0),
        ("Max Drawdown", metrics.max_drawdown, 100.0),
        ("Sharpe", lambda r: metrics.sharpe(r, 252), 1.0),
        ("Volatility (ann.)", lambda r: metrics.annual_volatility(r, 252), 100.0),
    ):
        printed_bench, printed_strategy = _row(page, label)
        assert printed_strategy == pytest.approx(fn(strategy) * scale, abs=0.011), label
        assert printed_bench == pytest.approx(fn(bench) * scale, abs=0.011), label


def test_page_without_benchmark(tmp_path: Path) -> None:
    strategy, _ = _returns(120)
    path = write_tearsheet(
        strategy, None, tmp_path / "solo.html", title="Solo", benchmark_title="x"
    )
    page = path.read_text(encoding="utf-8")
    assert "Solo" in page and "fw-notes" not in page  # no notes given, no empty block
    assert "Cumulative Return" in page


def test_import_and_call_leave_matplotlib_as_found(tmp_path: Path) -> None:
    # A fresh interpreter, because quantstats edits rcParams the first time it is imported.
    script = f"""
import sys, matplotlib
import reports.tearsheet as t
assert "quantstats" not in sys.modules and "matplotlib.pyplot" not in sys.modules
before = dict(matplotlib.rcParams)
import pandas as pd
r = pd.Series([0.01, -0.02, 0.015, 0.003] * 10, index=pd.bdate_range("2024-01-02", periods=40, tz="UTC"))
t.write_tearsheet(r, None, {str(tmp_path / "fresh.html")!r}, title="t", benchmark_title="b")
changed = sorted(k for k, v in dict(matplotlib.rcParams).items() if before[k] != v)
assert "quantstats" in sys.modules and not changed, changed
print("clean")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    assert done.returncode == 0 and done.stdout.strip() == "clean", done.stderr[-2000:]
    assert "findfont" not in done.stderr


# -- input handling (fails before quantstats runs, so these are fast) --------------------------
def test_utc_close_times_become_naive_dates_and_intraday_compounds() -> None:
    daily = pd.Series(
        [0.01, 0.02], index=pd.to_datetime(["2024-01-02 21:00", "2024-01-03 21:00"], utc=True)
    )
    converted = _daily_returns(daily, "returns")
    assert converted.index.tz is None
    assert list(converted.index) == [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-01-03")]
    intraday_index = pd.to_datetime(
        ["2024-01-02 14:31", "2024-01-02 20:00", "2024-01-03 14:31"], utc=True
    )
    intraday = pd.Series([0.01, 0.02, -0.01], index=intraday_index)
    converted = _daily_returns(intraday, "returns")
    np.testing.assert_allclose(converted.to_numpy(), [1.01 * 1.02 - 1, -0.01])


@pytest.mark.parametrize(
    ("returns", "benchmark", "fragment"),
    [
        ([0.01, 0.02], None, "must be a pandas Series"),
        (_returns(5)[0].iloc[:1], None, "at least 2"),
        (_returns(5)[0].where(lambda s: s.index.day != s.index[2].day), None, "non-finite"),
        (
            _returns(5)[0],
            "SPY",
            "must be a pandas Series",
        ),  # a ticker would make quantstats download
        (_returns(5)[0], _returns(5)[1].iloc[1:], "lacks 1 of the 5 strategy dates"),
    ],
)
def test_bad_inputs_raise_data_error(returns, benchmark, fragment, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=fragment):
        write_tearsheet(returns, benchmark, tmp_path / "x.html", title="t", benchmark_title="b")
    assert not (tmp_path / "x.html").exists()
