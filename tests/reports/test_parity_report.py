"""reports.parity_report and `fw parity`: files, the same numbers in HTML and Markdown, planted
divergences shown, the command's exit code and messages."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from framework.registry import resolve_strategy
from live.command import PaperSpec, run_paper
from live.parity import COST_COLUMNS, DECISION_COLUMNS, FILL_COLUMNS, compare_db, compare_run
from live.record import latest_run_id
from live.state import DECISIONS, FILLS, Store
from reports.paper_report import money
from reports.parity_cli import headline_rows, make_parity_command
from reports.parity_report import bps, write_parity_report
from strategies import REGISTRY

RUN = "parity-run"
PNG = b"\x89PNG\r\n\x1a\n"


def _resolve(name: str):
    return resolve_strategy(name, REGISTRY)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("fw_home_parity_report")
    path = home / "paper.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FW_HOME", str(home))
        spec = PaperSpec(run_id=RUN, start="2017-01-01", end="2017-12-31",
                         sets=("fast=3", "slow=8"), risk_off=True, db=f"sqlite:///{path}")
        store = Store(spec.db)
        run_paper(_resolve("sma_cross"), spec, store)
        store.close()
    return path


def _copy(source: Path, tmp_path: Path) -> str:
    target = tmp_path / source.name
    shutil.copy(source, target)
    for extra in ("-wal", "-shm"):
        if Path(f"{source}{extra}").exists():
            shutil.copy(f"{source}{extra}", f"{target}{extra}")
    return f"sqlite:///{target}"


def _plant(url: str) -> dict:
    """One decision changed and one fill deleted; returns what was planted."""
    store = Store(url)
    row = store.decisions(RUN).query("target == 1.0").iloc[10]
    fill = store.fills(RUN)[2]
    with store.engine.begin() as conn:
        conn.execute(sa.update(DECISIONS).where(
            DECISIONS.c.run_id == RUN, DECISIONS.c.bar_time == row["bar_time"]).values(target=0.25))
        conn.execute(sa.delete(FILLS).where(FILLS.c.execution_id == fill["execution_id"]))
    store.close()
    return {"bar_time": row["bar_time"], "order": fill["client_order_id"]}


def _command():
    return make_parity_command(lambda db, run_id: compare_db(db, run_id, _resolve), latest_run_id)


def test_report_files_show_the_same_numbers(db_path, tmp_path):
    result = compare_run(Store(f"sqlite:///{db_path}"), RUN, _resolve("sma_cross"))
    paths = write_parity_report(result, tmp_path / "out", breaches=[])
    assert sorted(paths) == ["html", "markdown", "plot"]
    assert paths["plot"].read_bytes()[:8] == PNG and paths["plot"].stat().st_size > 10_000
    md, page = paths["markdown"].read_text(), paths["html"].read_text()
    s = result.summary
    assert s["matched"] > 10 and s["unmatched"] == 0
    expected = [
        f"All {s['decisions']:,} stored decisions equal the backtest's targets bit for bit.",
        f"model {money(s['model_cost'])} ({bps(s['model_cost_bps'])})",
        f"{s['matched']:,} matched; 0 live only; 0 backtest only",
        "Within every threshold.", "None: every fill has a partner.",
    ]
    for text in expected:
        assert text in md and text in page.replace("&#x27;", "'")
    assert md.count("| GSPC | buy |") + md.count("| GSPC | sell |") >= 2 * s["matched"]
    assert "![parity](parity.png)" in md and "src='parity.png'" in page


def test_planted_divergences_are_listed(db_path, tmp_path):
    url = _copy(db_path, tmp_path)
    planted = _plant(url)
    result = compare_run(Store(url), RUN, _resolve("sma_cross"))
    breaches = result.exceeds()
    assert [b.split(":")[0] for b in breaches] == ["decisions", "unmatched fills"]
    md = write_parity_report(result, tmp_path / "out", breaches)["markdown"].read_text()
    assert f"| {planted['bar_time']} | GSPC | 0.25 | 1.0 |" in md
    assert "1 of 251 decisions differ from the backtest" in md
    assert f"- EXCEEDED: {breaches[0]}" in md
    unmatched = md.split("## Unmatched fills")[1].split("## Costs")[0]
    assert planted["order"] in unmatched and "| backtest |" in unmatched


def test_a_result_without_fills_still_renders(tmp_path):
    """Any ParityResult-like object renders: here a run that never filled."""
    nan = float("nan")
    summary = {
        "run_id": "empty", "strategy": "s", "broker": "sim", "bars": 3, "start": "2020-01-01",
        "end": "2020-01-03", "first_traded_bar": None, "decisions": 3, "decision_mismatches": 0,
        "matched": 0, "live_only": 0, "backtest_only": 0, "mean_abs_price_bps": nan,
        "max_abs_price_bps": nan, "mean_abs_qty_pct": nan, "max_abs_qty_pct": nan,
        "mean_abs_time_s": nan, "model_cost": 0.0, "realized_cost": 0.0, "model_cost_bps": nan,
        "realized_cost_bps": nan, "live_final_equity": nan, "backtest_final_equity": nan,
        "equity_diff_pct": nan, "notes": ["nothing traded"], "risk": ["off"],
    }
    times = pd.date_range("2020-01-01", periods=3, tz="UTC", name="time")
    result = SimpleNamespace(
        summary=summary,
        decisions=pd.DataFrame({"bar_time": times, "symbol": "X", "live": 0.0, "backtest": 0.0,
                                "match": True}, columns=list(DECISION_COLUMNS)),
        fills=pd.DataFrame(columns=list(FILL_COLUMNS)),
        costs=pd.DataFrame(columns=list(COST_COLUMNS)),
        equity=pd.DataFrame({"live": np.nan, "backtest": 1e5}, index=times))
    paths = write_parity_report(result, tmp_path)
    md = paths["markdown"].read_text()
    assert "No fill matched (same bar, symbol and side)." in md
    assert "first traded never" in md and "mean \\|diff\\| n/a" in md
    assert "## Thresholds" not in md  # no breaches given: no threshold section
    assert paths["plot"].read_bytes()[:8] == PNG
    assert dict(headline_rows(summary))["mean |price diff|"] == "n/a"


def test_fw_parity_writes_the_report_and_passes(db_path, tmp_path):
    out = tmp_path / "rep"
    got = CliRunner().invoke(_command(), ["--db", f"sqlite:///{db_path}", "--out", str(out)])
    assert got.exit_code == 0, got.output
    assert "decisions identical" in got.output and "parity: within every threshold" in got.output
    assert f"parity: {RUN} (sma_cross, broker sim)" in got.output
    assert all((out / name).is_file() for name in ("parity.html", "parity.md", "parity.png"))


def test_fw_parity_defaults_to_the_latest_run_and_fw_home(db_path, tmp_path, monkeypatch):
    monkeypatch.setenv("FW_HOME", str(tmp_path / "home"))
    got = CliRunner().invoke(_command(), ["--db", f"sqlite:///{db_path}"])
    assert got.exit_code == 0, got.output
    assert (tmp_path / "home" / "reports" / RUN / "parity" / "parity.html").is_file()


def test_fw_parity_exits_1_and_names_the_thresholds(db_path, tmp_path):
    url = _copy(db_path, tmp_path)
    store = Store(url)
    fill = store.fills(RUN)[1]
    with store.engine.begin() as conn:  # 30% worse price on one fill: a mean far above 5 bps
        conn.execute(sa.update(FILLS).where(FILLS.c.execution_id == fill["execution_id"]).values(
            price=fill["price"] * (1.3 if fill["quantity"] > 0 else 0.7)))
    store.close()
    args = ["--db", url, "--run-id", RUN, "--out", str(tmp_path / "o")]
    got = CliRunner().invoke(_command(), args)
    assert got.exit_code == 1
    assert "parity threshold exceeded: price: mean |difference|" in got.stderr
    assert "> 5 bps" in got.stderr and (tmp_path / "o" / "parity.md").is_file()
    relaxed = CliRunner().invoke(_command(), [*args, "--max-price-bps", "10000"])
    assert relaxed.exit_code == 0, relaxed.output


def test_fw_parity_errors_are_one_clean_line(db_path):
    got = CliRunner().invoke(_command(), ["--db", f"sqlite:///{db_path}", "--run-id", "nope"])
    assert got.exit_code == 1
    assert "Error: unknown run id 'nope'" in got.output and "Traceback" not in got.output
    bad = CliRunner().invoke(_command(), ["--db", f"sqlite:///{db_path}", "--max-price-bps", "-2"])
    assert bad.exit_code == 1 and "max_mean_price_bps = -2.0" in bad.output
