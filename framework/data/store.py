"""The local bar store: one Parquet file per symbol and timeframe under ``FW_HOME/data``.

Layout: ``<root>/<timeframe>/<SYMBOL>.parquet`` with columns ``time`` (timestamp[ns, UTC], bar
close), ``open, high, low, close, volume`` (float64). The file's Parquet schema metadata key
``fw`` holds a JSON :class:`StoredMeta` (source, adjustment, first/last bar, rows, content hash),
so listing the store reads only file footers.

Writes are atomic: the frame is validated, written to a temporary file in the same folder, read
back and checked against its content hash, then moved over the old file with ``os.replace``.
A failure at any step leaves the previous file untouched. Reads verify the content hash.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from framework.data.frames import frame_hash, normalize_symbol, parse_timeframe
from framework.data.validation import validate_frame
from framework.errors import DataError
from framework.paths import fw_home
from framework.types import FIELDS, SymbolInfo

FORMAT_VERSION = 1
_META_KEY = b"fw"


@dataclass(frozen=True)
class StoredMeta:
    """What the store knows about one stored series.

    Attributes
    ----------
    symbol, timeframe : str
        Identity of the series (``"SPY"``, ``"1d"``).
    source : str
        Where the bars came from (``"csv:/path/SPY.csv.gz"``, ``"yahoo:SPY"``, ...).
    adjusted : bool
        True when prices are split+dividend adjusted.
    adjustment : str
        How the adjustment was done or why the prices count as adjusted or not.
    first, last : str
        ISO UTC close times of the first and last bar.
    rows : int
        Number of bars.
    content_hash : str
        SHA-256 of close times and OHLCV values (:func:`framework.data.frames.frame_hash`).
    written_at : str
        ISO UTC time of the write.
    """

    symbol: str
    timeframe: str
    source: str
    adjusted: bool
    adjustment: str
    first: str
    last: str
    rows: int
    content_hash: str
    written_at: str
    format_version: int = FORMAT_VERSION

    def symbol_info(self) -> SymbolInfo:
        """The :class:`SymbolInfo` recorded in loaded :class:`Bars`."""
        return SymbolInfo(
            source=self.source,
            adjusted=self.adjusted,
            timeframe=self.timeframe,
            note=self.adjustment,
        )


@dataclass(frozen=True)
class BarStore:
    """Parquet bar store rooted at ``root`` (default ``FW_HOME/data``, resolved per call).

    Parameters
    ----------
    root : Path, optional
        Store folder; ``None`` means ``fw_home() / "data"`` at the time of each call.
    """

    root: Path | None = None

    @property
    def folder(self) -> Path:
        """The store folder (not created until the first write)."""
        return Path(self.root) if self.root is not None else fw_home() / "data"

    def path(self, symbol: str, timeframe: str = "1d") -> Path:
        """File of one series (may not exist)."""
        return self.folder / parse_timeframe(timeframe).name / f"{normalize_symbol(symbol)}.parquet"

    def has(self, symbol: str, timeframe: str = "1d") -> bool:
        """True when the series is stored."""
        return self.path(symbol, timeframe).is_file()

    def symbols(self, timeframe: str = "1d") -> list[str]:
        """Sorted symbols stored for ``timeframe``."""
        folder = self.folder / parse_timeframe(timeframe).name
        if not folder.is_dir():
            return []
        return sorted(p.stem for p in folder.glob("*.parquet") if not p.name.startswith("."))

    def timeframes(self) -> list[str]:
        """Timeframes with at least one stored series."""
        if not self.folder.is_dir():
            return []
        return sorted(
            p.name for p in self.folder.iterdir() if p.is_dir() and any(p.glob("*.parquet"))
        )

    def metadata(self, symbol: str, timeframe: str = "1d") -> StoredMeta:
        """Stored metadata, read from the Parquet footer only."""
        path = self._existing(symbol, timeframe)
        return _read_meta(path, pq.read_schema(path).metadata)

    def entries(self) -> list[StoredMeta]:
        """Metadata of every stored series, by timeframe then symbol."""
        return [self.metadata(s, tf) for tf in self.timeframes() for s in self.symbols(tf)]

    def read(self, symbol: str, timeframe: str = "1d") -> tuple[pd.DataFrame, StoredMeta]:
        """One stored series as a canonical frame, with its metadata.

        Raises
        ------
        DataError
            When the series is not stored, or its content no longer matches its hash.
        """
        path = self._existing(symbol, timeframe)
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowException) as exc:
            raise DataError(
                f"cannot read store file {str(path)!r} ({exc}); re-import the "
                "symbol with `fw data import PATH`."
            ) from exc
        meta = _read_meta(path, table.schema.metadata)
        frame = _table_to_frame(table)
        if frame_hash(frame) != meta.content_hash:
            raise DataError(
                f"store file {str(path)!r} does not match its recorded content hash "
                "(corrupted or edited); re-import it with `fw data import PATH`."
            )
        return frame, meta

    def write(self, symbol: str, frame: pd.DataFrame, info: SymbolInfo) -> StoredMeta:
        """Validate ``frame`` and atomically replace the stored series with it.

        Parameters
        ----------
        symbol : str
            Symbol to store under (normalized: upper case, no ``^``).
        frame : pandas.DataFrame
            Canonical frame (UTC close-time index, float64 OHLCV).
        info : SymbolInfo
            Source, adjustment flag, timeframe and adjustment basis (``note``).

        Returns
        -------
        StoredMeta
            The metadata written.
        """
        symbol = normalize_symbol(symbol)
        timeframe = parse_timeframe(info.timeframe).name
        validate_frame(frame, path=f"{symbol} ({timeframe})")
        if frame.empty:
            raise DataError(f"refusing to store an empty series for {symbol!r}; nothing to write.")
        meta = StoredMeta(
            symbol=symbol,
            timeframe=timeframe,
            source=info.source,
            adjusted=info.adjusted,
            adjustment=info.note,
            first=frame.index[0].isoformat(),
            last=frame.index[-1].isoformat(),
            rows=len(frame),
            content_hash=frame_hash(frame),
            written_at=pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
        )
        target = self.path(symbol, timeframe)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.parent / f".{symbol}.{os.getpid()}.{uuid.uuid4().hex}.tmp"
        try:
            pq.write_table(_frame_to_table(frame, meta), temporary)
            written = _table_to_frame(pq.read_table(temporary))
            if frame_hash(written) != meta.content_hash:
                raise DataError(
                    f"store write check failed for {symbol!r}: the file read back "
                    "differs from the data written; the old file is kept."
                )
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return meta

    def delete(self, symbol: str, timeframe: str = "1d") -> None:
        """Remove a stored series."""
        self._existing(symbol, timeframe).unlink()

    def _existing(self, symbol: str, timeframe: str) -> Path:
        path = self.path(symbol, timeframe)
        if not path.is_file():
            raise DataError(
                f"{normalize_symbol(symbol)!r} ({parse_timeframe(timeframe).name}) is not in the "
                f"store at {str(self.folder)!r}; import it with `fw data import PATH` or pull it "
                "with `fw data pull SYMBOL --source yahoo`."
            )
        return path


def _frame_to_table(frame: pd.DataFrame, meta: StoredMeta) -> pa.Table:
    index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ns")
    arrays = [pa.array(index.tz_localize(None).to_numpy(), type=pa.timestamp("ns", tz="UTC"))]
    arrays += [pa.array(frame[name].to_numpy(np.float64), type=pa.float64()) for name in FIELDS]
    table = pa.Table.from_arrays(arrays, names=["time", *FIELDS])
    return table.replace_schema_metadata({_META_KEY: json.dumps(asdict(meta)).encode()})


def _table_to_frame(table: pa.Table) -> pd.DataFrame:
    times = table.column("time").to_numpy().astype("datetime64[ns]")
    index = pd.DatetimeIndex(times).tz_localize("UTC").rename("time")
    data = {name: table.column(name).to_numpy().astype(np.float64, copy=False) for name in FIELDS}
    return pd.DataFrame(data, index=index)


def _read_meta(path: Path, raw: dict[bytes, bytes] | None) -> StoredMeta:
    try:
        fields = json.loads((raw or {})[_META_KEY])
        return StoredMeta(**fields)
    except (KeyError, ValueError, TypeError) as exc:
        raise DataError(
            f"store file {str(path)!r} has no valid fw metadata ({exc}); it was not "
            "written by fw. Delete it and re-import the symbol."
        ) from exc
