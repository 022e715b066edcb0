"""load_bars / available_symbols: source selection, alignment, filtering and errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.data import available_symbols, load_bars
from framework.data.csv_files import write_csv_bars
from framework.data.frames import canonical_frame
from framework.data.importing import import_csv
from framework.errors import DataError


def _write(folder, name, dates, close):
    folder.mkdir(exist_ok=True)
    lines = ["date,open,high,low,close,adj_close,volume"]
    lines += [
        f"{d},{c},{c * 1.01},{c * 0.99},{c},{c},100" for d, c in zip(dates, close, strict=True)
    ]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "csv"
    _write(d, "AAA.csv", ["2024-01-02", "2024-01-03", "2024-01-04"], [1.0, 2.0, 3.0])
    _write(d, "BBB.csv", ["2024-01-03", "2024-01-05"], [10.0, 20.0])
    _write(d, "AAA_5min.csv", ["2024-01-02"], [5.0])  # not a daily file: ignored for 1d
    return d


def test_dir_source_aligns_on_the_union_of_dates(folder):
    bars = load_bars(["AAA", "bbb"], data_dir=folder)
    assert bars.symbols == ("AAA", "BBB")
    assert [t.date().isoformat() for t in bars.index] == [
        "2024-01-02",
        "2024-01-03",
        "2024-01-04",
        "2024-01-05",
    ]
    close = bars.frame("close")
    assert close["AAA"].tolist()[:3] == [1.0, 2.0, 3.0] and np.isnan(close["AAA"].iloc[3])
    assert np.isnan(close["BBB"].iloc[0]) and close["BBB"].iloc[3] == 20.0
    assert bars.info["AAA"].source.startswith("csv:")


def test_dir_source_all_symbols_and_available(folder):
    assert load_bars(data_dir=folder).symbols == ("AAA", "BBB")
    assert available_symbols(data_dir=folder) == ["AAA", "BBB"]
    assert available_symbols(data_dir=folder, timeframe="5min") == ["AAA"]


def test_unknown_symbol_in_dir_lists_available_with_hint(folder):
    with pytest.raises(DataError) as info:
        load_bars(["AAB"], data_dir=folder)
    text = str(info.value)
    assert "unknown symbol(s) ['AAB']" in text and "Did you mean 'AAA'" in text
    assert "Available: AAA, BBB" in text and "fw data import PATH" in text


def test_auto_prefers_store_then_embedded(folder):
    assert load_bars(["GSPC"]).info["GSPC"].source.startswith("arch.data.sp500")
    import_csv(folder / "AAA.csv")
    bars = load_bars(["AAA"])
    assert bars.info["AAA"].source.startswith("csv:") and bars.n_bars == 3
    assert load_bars().symbols == ("AAA",)  # symbols=None: everything in a non-empty store
    assert available_symbols() == ["AAA", "GSPC", "IXIC", "VIX"]
    assert available_symbols(source="store") == ["AAA"]
    with pytest.raises(DataError, match=r"unknown symbol\(s\) \['BBB'\]"):
        load_bars(["AAA", "BBB"])  # mixing sources silently is refused


def test_auto_with_empty_store_gives_all_embedded():
    assert load_bars().symbols == ("GSPC", "IXIC", "VIX")


def test_store_holding_a_symbol_wins_over_embedded(folder, tmp_path):
    path = _write(tmp_path / "mine", "GSPC.csv", ["2024-01-02"], [4700.0])
    import_csv(path)
    bars = load_bars(["GSPC"])
    assert bars.n_bars == 1 and bars.close[0, 0] == 4700.0
    assert load_bars(["GSPC"], source="default").n_bars > 5000


def test_start_end_filter_and_empty_range(folder):
    bars = load_bars(["AAA"], data_dir=folder, start="2024-01-03", end="2024-01-03")
    assert bars.n_bars == 1 and bars.close[0, 0] == 2.0
    with pytest.raises(DataError, match="no bars between.*2024-01-02 .. 2024-01-05"):
        load_bars(data_dir=folder, start="2030-01-01")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"source": "dir"}, "needs data_dir"),
        ({"source": "stor"}, "Did you mean 'store'"),
        ({"symbols": []}, "no symbols given"),
        ({"symbols": ["SPY", "spy"]}, "more than once"),
        ({"symbols": ["GSPC"], "timeframe": "5min"}, r"unknown symbol\(s\) \['GSPC'\]"),
        ({"symbols": ["GSPC"], "source": "default", "timeframe": "5min"}, "daily bars only"),
        ({"symbols": ["ZZZ"], "source": "store"}, "the store"),
    ],
)
def test_errors(kwargs, fragment):
    with pytest.raises(DataError, match=fragment):
        load_bars(**kwargs)


def test_missing_data_dir(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_bars(["A"], data_dir=tmp_path / "nope")


def test_single_string_symbol_and_intraday_dir(tmp_path):
    index = pd.date_range("2025-09-15 13:35", periods=4, freq="5min", tz="UTC")
    frame = canonical_frame(
        index, {k: np.ones(4) for k in ("open", "high", "low", "close", "volume")}
    )
    write_csv_bars(frame, tmp_path / "QQQ_5min.csv.gz", timeframe="5min")
    bars = load_bars("qqq", data_dir=tmp_path, timeframe="5min")
    assert bars.symbols == ("QQQ",) and (bars.index == index).all()
    assert bars.info["QQQ"].timeframe == "5min"
