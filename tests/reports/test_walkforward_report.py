"""reports.walkforward: one self-contained HTML page per walk-forward run, written offline, whose
numbers are the result's own. One real (small) walk-forward run of the registered sma_cross
strategy on generated bars is shared by most tests."""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import math
import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from framework.backtest import BacktestSpec, buy_and_hold
from framework.engine import EngineSpec
from framework.errors import DataError
from framework.walkforward import SearchSpec, WalkForwardSpec, WindowSpec, walk_forward
from reports.plots import draw_heatmap, new_figure, plot_levels
from reports.walkforward import (
    _objective_grid,
    _oos_objective,
    _time_formatter,
    dsr_reading,
    heatmap_folds,
    pbo_reading,
    stability_reading,
    wfe_reading,
    write_walkforward_report,
)
from strategies import REGISTRY
from tests.barsgen import make_bars

SECTIONS = {
    "run": "Run",
    "statistics": "Overfitting statistics",
    "equity": "Stitched out-of-sample equity vs benchmark",
    "folds": "Folds",
    "parameters": "Chosen parameters over time",
    "decay": "In-sample vs out-of-sample",
    "heatmaps": "Parameter heatmaps",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(fill: str = "next_open", method: str = "grid"):
    bars = make_bars(n=700, seed=3)
    spec = WalkForwardSpec(
        windows=WindowSpec(train=250, test=90),
        search=SearchSpec(method=method, trials=40),
        executor="serial",  # no worker processes: the suite shares 2 cores
        pbo_blocks=4,
    )
    backtest = BacktestSpec(engine=EngineSpec(fill=fill))
    return walk_forward(REGISTRY["sma_cross"](), bars, None, spec, backtest,
                        buy_and_hold(bars, "S0", bars.index))


class _NetworkBlocked(OSError):
    pass


@contextmanager
def _offline() -> Iterator[list[object]]:
    """Refuse every socket connection and name lookup; yields the list of attempts."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append((args, kwargs))
        raise _NetworkBlocked("network access attempted while writing the report")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket.socket, "connect_ex", refuse)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        yield attempts


@pytest.fixture(scope="module")
def wf():
    return _run()


@pytest.fixture(scope="module")
def written(wf, tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("wfreport") / "sub" / "walkforward.html"
    rc_before = dict(matplotlib.rcParams)
    with _offline() as attempts:
        result = write_walkforward_report(wf, path)
    return {
        "path": path,
        "result": result,
        "page": path.read_text(encoding="utf-8"),
        "attempts": attempts,
        "rc_changed": {k for k, v in dict(matplotlib.rcParams).items() if rc_before.get(k) != v},
    }


class _Tables(HTMLParser):
    """Collects every ``<table id=...>`` as a list of rows of cell texts (header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._current: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._current = dict(attrs).get("id") or f"anon{len(self.tables)}"
            self.tables[self._current] = []
        elif tag == "tr" and self._current:
            self.tables[self._current].append([])
        elif tag in ("td", "th") and self._current:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._current:
            self.tables[self._current][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._current = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def _stat_text(page: str, key: str) -> str:
    match = re.search(rf'<div class="stat" id="stat-{key}">(.*?)</div>', page, re.S)
    assert match, f"statistic block {key!r} missing"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))


# -- the page ------------------------------------------------------------------------------------
def test_file_is_written_with_every_section(written) -> None:
    assert written["result"] == written["path"] and written["path"].is_file()
    page = written["page"]
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for key, heading in SECTIONS.items():
        assert f'<section id="{key}"><h2>{html.escape(heading)}</h2>' in page, key
    # the sections come in the documented order
    positions = [page.index(f'<section id="{key}">') for key in SECTIONS]
    assert positions == sorted(positions)


def test_header_names_the_run(wf, written) -> None:
    run = dict((row[0], row[1]) for row in _tables(written["page"])["run-table"][1:])
    assert run["Strategy"] == "sma_cross" and run["Symbols"] == "S0"
    assert run["Objective"] == "sharpe"
    assert run["Fill rule"] == "next_open"
    assert run["Folds"].startswith(f"{len(wf.folds)}: rolling train 250, test 90")
    assert run["Trials"].startswith(f"{wf.n_trials} combinations")
    assert "slippage 5.0 bps" in run["Costs"] and "commission $" in run["Costs"]
    assert run["Fixed parameters"] == "short=False"  # the one parameter without a search space
    assert run["Data span"].startswith("2015-01-02 to ")


def test_fold_table_has_one_row_per_fold_with_the_results_numbers(wf, written) -> None:
    table = _tables(written["page"])["fold-table"]
    header, rows = table[0], table[1:]
    assert len(rows) == len(wf.folds) == len(wf.splits) >= 3
    col = {name: header.index(name) for name in header}
    for row, (_, fold) in zip(rows, wf.folds.iterrows(), strict=True):
        assert row[col["Fold"]] == str(fold["fold"])
        assert row[col["fast"]] == str(fold["param_fast"])
        assert row[col["slow"]] == str(fold["param_slow"])
        assert row[col["IS Sharpe (objective)"]] == f"{fold['is_objective']:.2f}"
        assert row[col["OOS Sharpe (objective)"]] == f"{fold['oos_sharpe']:.2f}"
        assert row[col["OOS max DD"]] == f"{fold['oos_max_drawdown']:.1%}"
        assert row[col["Combinations (eligible)"]] == f"{fold['n_combinations']} ({fold['n_eligible']})"
        assert row[col["Test"]].startswith(fold["test_start"].strftime("%Y-%m-%d"))


def test_oos_objective_is_the_runs_own_number(wf) -> None:
    # With the Sharpe objective, the report's per-fold OOS objective must equal the framework's
    # per-fold OOS Sharpe: same slice of the stitched run, same metric.
    np.testing.assert_allclose(_oos_objective(wf), wf.folds["oos_sharpe"].to_numpy(), rtol=1e-12)


def test_each_statistic_with_its_reading(wf, written) -> None:
    page, stats = written["page"], wf.statistics
    expected = {
        "wfe": wfe_reading(stats["walk_forward_efficiency"]),
        "dsr": dsr_reading(stats["deflated_sharpe"], wf.deflated_sharpe),
        "pbo": pbo_reading(stats["pbo"]),
    }
    for key, reading in expected.items():
        assert reading in _stat_text(page, key)
    assert f"PBO {stats['pbo']:.2f}:" in _stat_text(page, "pbo")
    assert f"WFE {stats['walk_forward_efficiency']:.2f}:" in _stat_text(page, "wfe")
    assert f"Deflated Sharpe {stats['deflated_sharpe']:.2f}:" in _stat_text(page, "dsr")
    stability = _stat_text(page, "stability")
    for name in ("fast", "slow"):
        assert stability_reading(name, wf.parameter_stability.loc[name], len(wf.folds)) in stability
    assert "short:" not in stability  # not searched, so not judged


def test_summary_table_shows_the_backtest_summary(wf, written) -> None:
    summary = dict((r[0], r[1]) for r in _tables(written["page"])["summary-table"][1:])
    s = wf.backtest.summary
    assert summary["Sharpe"] == f"{s['sharpe']:.2f}"
    assert summary["Total return"] == f"{s['total_return']:.1%}"
    assert summary["Benchmark total return"] == f"{s['benchmark_total_return']:.1%}"


def test_images_are_embedded_pngs_and_nothing_is_external(written) -> None:
    page = written["page"]
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == 4  # equity, parameters, decay, heatmaps
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        raw = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert raw.startswith(PNG_MAGIC)
        with Image.open(io.BytesIO(raw)) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 100
            image.load()  # decodes every pixel: a truncated file fails here
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "<script" not in page and "<link" not in page and "url(" not in page


def test_no_network_and_matplotlib_left_as_found(written) -> None:
    assert written["attempts"] == []
    assert written["rc_changed"] == set()


def test_offline_guard_catches_a_connection() -> None:
    # Known-bad: without this, test_no_network_and_matplotlib_left_as_found would prove nothing.
    with _offline() as attempts, pytest.raises(_NetworkBlocked):
        socket.create_connection(("127.0.0.1", 9))
    assert attempts


def test_next_open_page_has_no_optimistic_warning(written) -> None:
    assert 'id="optimistic-fill"' not in written["page"]
    assert "fill=next_open" in written["page"]


def test_optimistic_fills_are_flagged(tmp_path: Path) -> None:
    optimistic = _run(fill="close", method="random")
    page = write_walkforward_report(optimistic, tmp_path / "close.html").read_text(encoding="utf-8")
    warning = page.index('id="optimistic-fill"')
    assert warning < page.index('<section id="run">')  # above everything else
    assert "Optimistic fills (fill=close)" in page and "(OPTIMISTIC)" in page
    # a random search leaves unevaluated cells, but it still varies two parameters
    assert "Showing" in page and page.count("data:image/png;base64,") == 4


def test_one_parameter_search_explains_the_missing_heatmap(wf, tmp_path: Path) -> None:
    one = dataclasses.replace(wf, trials=wf.trials[wf.trials["param_fast"] == 5])
    page = write_walkforward_report(one, tmp_path / "one.html").read_text(encoding="utf-8")
    section = page[page.index('<section id="heatmaps">'):]
    assert "exactly two parameters; this run searched 1 (slow)" in section
    assert "<img" not in section


def test_rejects_what_is_not_a_walk_forward_result(wf, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"needs a WalkForwardResult; got BacktestResult.*walk_forward"):
        write_walkforward_report(wf.backtest, tmp_path / "x.html")
    empty = dataclasses.replace(wf, folds=wf.folds.iloc[:0], splits=())
    with pytest.raises(DataError, match="no folds"):
        write_walkforward_report(empty, tmp_path / "y.html")
    assert not (tmp_path / "x.html").exists() and not (tmp_path / "y.html").exists()


# -- heatmap data --------------------------------------------------------------------------------
def test_objective_grid_places_every_trial_and_marks_the_choice(wf) -> None:
    names = ["fast", "slow"]
    values = [sorted(wf.trials[f"param_{n}"].unique()) for n in names]
    for fold in wf.folds.itertuples():
        trials = wf.trials[wf.trials["fold"] == fold.fold]
        grid, cell = _objective_grid(trials, names, values)
        for t in trials.itertuples():
            got = grid[values[0].index(t.param_fast), values[1].index(t.param_slow)]
            assert got == t.objective or (math.isnan(got) and math.isnan(t.objective))
        # cells of invalid combinations (fast >= slow) stay empty
        assert np.isnan(grid[values[0].index(95), values[1].index(20)])
        assert cell == (values[0].index(fold.param_fast), values[1].index(fold.param_slow))


@given(n=st.integers(1, 200), most=st.integers(2, 30))
def test_heatmap_folds_keep_first_last_and_at_most_most(n: int, most: int) -> None:
    numbers = list(range(10, 10 + n))
    shown = heatmap_folds(numbers, most)
    assert len(shown) == min(n, most)
    assert shown[0] == numbers[0] and shown[-1] == numbers[-1]
    assert shown == sorted(set(shown)) and set(shown) <= set(numbers)


# -- readings: exact behaviour -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "present", "absent"),
    [
        (0.62, ["PBO 0.62:", "62%", "likely overfit"], ["hold up"]),
        (0.5, ["50%", "likely overfit"], []),
        (0.2, ["PBO 0.20:", "20%", "hold up"], ["overfit"]),
        (math.nan, ["PBO n/a"], ["%"]),
    ],
)
def test_pbo_reading(value, present, absent) -> None:
    text = pbo_reading(value)
    assert all(p in text for p in present) and not any(a in text for a in absent)


@pytest.mark.parametrize(
    ("value", "present"),
    [
        (0.8, ["WFE 0.80:", "80%", "at or above"]),
        (0.5, ["at or above"]),
        (0.3, ["WFE 0.30:", "below Pardo"]),
        (-0.4, ["lost money"]),
        (math.nan, ["WFE n/a", "not positive"]),
    ],
)
def test_wfe_reading(value, present) -> None:
    assert all(p in wfe_reading(value) for p in present)


def test_dsr_reading_uses_the_inputs(wf) -> None:
    dsr = wf.deflated_sharpe
    significant, weak = dsr_reading(0.97, dsr), dsr_reading(0.40, dsr)
    assert "97%" in significant and "survives" in significant
    assert "40%" in weak and "not significant" in weak
    assert f"{dsr.n_trials} unskilled trials" in weak and f"{dsr.sharpe:.3f} per bar" in weak
    assert "n/a" in dsr_reading(math.nan, dsr)


@pytest.mark.parametrize(
    ("mode_fraction", "cv", "n_folds", "verdict"),
    [
        (0.8, 0.6, 5, "stable:"),
        (0.2, 0.1, 5, "stable:"),
        (0.2, 0.9, 5, "unstable"),
        (0.2, math.nan, 5, "unstable"),
        (1.0, 0.0, 1, "single fold"),
    ],
)
def test_stability_reading(mode_fraction, cv, n_folds, verdict) -> None:
    row = pd.Series({"mode": 10, "mode_fraction": mode_fraction, "n_distinct": 3, "cv": cv}, dtype=object)
    text = stability_reading("fast", row, n_folds)
    assert text.startswith(f"fast: value 10 chosen in {mode_fraction:.0%} of folds")
    assert verdict in text and (verdict == "unstable" or "unstable" not in text)


def test_time_format_is_dates_for_daily_bars_and_times_for_intraday() -> None:
    daily = pd.bdate_range("2024-01-02", periods=3, tz="UTC") + pd.Timedelta(hours=21)
    intraday = pd.date_range("2024-01-02 14:30", periods=3, freq="30min", tz="UTC")
    assert _time_formatter(list(daily))(daily[0]) == "2024-01-02"
    assert _time_formatter(list(intraday))(intraday[1]) == "2024-01-02 15:00"


# -- plot helpers ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "positions", "labels"),
    [
        ([5, 10, 5], [5.0, 10.0, 5.0], None),
        ([True, False, True], [1.0, 0.0, 1.0], ["False", "True"]),
        (["ema", "sma", "ema"], [0.0, 1.0, 0.0], ["ema", "sma"]),
    ],
)
def test_plot_levels(values, positions, labels) -> None:
    got, got_labels = plot_levels(pd.Series(values))
    np.testing.assert_array_equal(got, positions)
    assert got_labels == labels


def test_heatmap_scales_to_the_finite_range_and_paints_infinities() -> None:
    import matplotlib.colors

    grid = np.array([[1.0, np.inf], [np.nan, 3.0], [-np.inf, 2.0]])
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e6e6e6")
    ax = new_figure(2, 2).add_subplot()
    draw_heatmap(ax, grid, (1, 1), cmap)
    image = ax.get_images()[0]
    assert image.norm.vmin == 1.0 and image.norm.vmax == 3.0
    data = image.get_array()
    assert data[0, 1] == 3.0  # +inf ranks first: top colour
    assert data.mask[1, 0] and data.mask[2, 0]  # nan and -inf: the "bad" grey
    (star,) = ax.get_lines()
    assert list(star.get_xdata()) == [1] and list(star.get_ydata()) == [1]
    assert matplotlib.colors.to_hex(cmap.get_bad()) == "#e6e6e6"
