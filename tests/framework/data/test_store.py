"""The Parquet store: round trip, metadata, hash check and atomic replacement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from framework.data.frames import canonical_frame, frame_hash
from framework.data.importing import collect_csv_files, import_csv
from framework.data.store import BarStore
from framework.errors import DataError, DataValidationError
from framework.paths import fw_home
from framework.types import SymbolInfo

GOOD = (
    "date,open,high,low,close,adj_close,volume\n"
    "2024-01-02,10,11,9,10.5,10.5,100\n2024-01-03,10.5,12,10,11,11,200\n"
)
BAD = (
    "date,open,high,low,close,adj_close,volume\n"
    "2024-01-02,10,11,9,10.5,10.5,100\n2024-01-03,10.5,9,10,11,11,200\n"
)


def _frame(n=3):
    index = pd.date_range("2024-01-02 21:00", periods=n, freq="D", tz="UTC")
    cols = {k: np.linspace(1, 2, n) for k in ("open", "high", "low", "close")}
    cols["volume"] = np.array([np.nan] + [5.0] * (n - 1))
    return canonical_frame(index, cols)


def test_round_trip_and_metadata():
    store = BarStore()
    frame = _frame()
    info = SymbolInfo(source="test:x", adjusted=True, timeframe="1d", note="basis text")
    meta = store.write("abc", frame, info)
    assert store.path("ABC") == fw_home() / "data" / "1d" / "ABC.parquet"
    back, meta2 = store.read("ABC")
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_names=False)
    assert meta2 == meta
    assert (meta.symbol, meta.rows, meta.adjusted, meta.adjustment) == (
        "ABC",
        3,
        True,
        "basis text",
    )
    assert meta.first == frame.index[0].isoformat() and meta.last == frame.index[-1].isoformat()
    assert meta.content_hash == frame_hash(frame)
    assert store.symbols() == ["ABC"] and store.timeframes() == ["1d"]
    assert [m.symbol for m in store.entries()] == ["ABC"]
    assert meta2.symbol_info() == SymbolInfo("test:x", True, "1d", "basis text")


def test_metadata_lives_in_the_parquet_footer():
    BarStore().write("ABC", _frame(), SymbolInfo(source="s", timeframe="1d"))
    raw = pq.read_schema(BarStore().path("ABC")).metadata
    assert b"fw" in raw and b"content_hash" in raw[b"fw"]


def test_a_bad_import_leaves_the_stored_file_intact(tmp_path):
    good, bad = tmp_path / "good" / "XYZ.csv", tmp_path / "bad" / "XYZ.csv"
    good.parent.mkdir()
    bad.parent.mkdir()
    good.write_text(GOOD)
    bad.write_text(BAD)
    import_csv(good)
    store = BarStore()
    before = store.path("XYZ").read_bytes()
    with pytest.raises(DataValidationError, match="high must be >= the low"):
        import_csv(bad)
    assert store.path("XYZ").read_bytes() == before
    assert [p.name for p in store.path("XYZ").parent.iterdir()] == ["XYZ.parquet"]


def test_a_failure_during_the_write_keeps_the_old_file(monkeypatch):
    store = BarStore()
    store.write("ABC", _frame(3), SymbolInfo(source="s", timeframe="1d"))
    before = store.path("ABC").read_bytes()

    def broken_write(table, where, **kwargs):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        store.write("ABC", _frame(5), SymbolInfo(source="s", timeframe="1d"))
    assert store.path("ABC").read_bytes() == before
    assert sorted(p.name for p in store.path("ABC").parent.iterdir()) == ["ABC.parquet"]


def test_invalid_frames_are_refused_before_touching_disk():
    frame = _frame()
    frame.iloc[1, frame.columns.get_loc("low")] = 10.0  # low above high
    with pytest.raises(DataValidationError, match="row 2"):
        BarStore().write("ABC", frame, SymbolInfo(source="s", timeframe="1d"))
    assert not BarStore().has("ABC")


def test_a_tampered_file_is_detected_on_read():
    store = BarStore()
    meta = store.write("ABC", _frame(), SymbolInfo(source="s", timeframe="1d"))
    table = pq.read_table(store.path("ABC"))
    close = table.column("close").to_numpy().copy()
    close[0] += 1
    tampered = table.set_column(table.schema.get_field_index("close"), "close", [close])
    pq.write_table(tampered.replace_schema_metadata(table.schema.metadata), store.path("ABC"))
    assert store.metadata("ABC") == meta
    with pytest.raises(DataError, match="does not match its recorded content hash"):
        store.read("ABC")


def test_foreign_parquet_file_is_reported():
    import pyarrow as pa

    store = BarStore()
    store.path("ABC").parent.mkdir(parents=True)
    pq.write_table(pa.table({"x": [1]}), store.path("ABC"))
    with pytest.raises(DataError, match="no valid fw metadata"):
        store.metadata("ABC")


def test_missing_symbol_names_how_to_import():
    with pytest.raises(DataError, match=r"'NOPE' \(1d\) is not in the store.*fw data import"):
        BarStore().read("nope")


def test_collect_csv_files(tmp_path):
    (tmp_path / "A.csv").write_text(GOOD)
    (tmp_path / "B.csv.gz").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in collect_csv_files([tmp_path])] == ["A.csv", "B.csv.gz"]
    with pytest.raises(DataError, match="not a .csv"):
        collect_csv_files([tmp_path / "notes.txt"])
    with pytest.raises(DataError, match="no such file"):
        collect_csv_files([tmp_path / "missing.csv"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no .csv"):
        collect_csv_files([tmp_path / "empty"])


def test_reimport_from_another_file_warns_about_the_replacement(tmp_path):
    first, second = tmp_path / "a" / "XYZ.csv", tmp_path / "b" / "XYZ.csv"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(GOOD)
    assert import_csv(first).warnings == ()
    assert import_csv(first).warnings == ()  # same file again: a refresh, nothing to say
    warnings = import_csv(second).warnings
    assert len(warnings) == 1 and "replaced the stored XYZ (1d) from csv:" in warnings[0]
    assert str(first) in warnings[0]


def test_batch_with_two_files_for_one_series_is_refused(tmp_path):
    from framework.data.importing import check_distinct_targets

    paths = [tmp_path / "SPY_1min.csv.gz", tmp_path / "SPY_1min_2024.csv.gz", tmp_path / "SPY.csv"]
    with pytest.raises(
        DataError, match=r"SPY_1min.csv.gz and SPY_1min_2024.csv.gz .* SPY \(1min\)"
    ):
        check_distinct_targets(paths)
    check_distinct_targets([paths[0], paths[2]])
