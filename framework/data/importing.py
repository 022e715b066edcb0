"""Import CSV files into the store (``fw data import``).

An import validates the whole file first and then replaces the stored series atomically (see
:class:`~framework.data.store.BarStore`), so a bad file never damages what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from framework.data.csv_files import is_csv_file, read_csv_bars, split_file_name
from framework.data.frames import normalize_symbol
from framework.data.store import BarStore, StoredMeta
from framework.errors import DataError


@dataclass(frozen=True)
class ImportResult:
    """One imported file: what was stored and the non-fatal findings.

    Attributes
    ----------
    path : Path
        The file read.
    meta : StoredMeta
        Metadata of the stored series (symbol, rows, range, adjustment, hash).
    warnings : tuple of str
        Calendar gaps and other non-fatal findings.
    """

    path: Path
    meta: StoredMeta
    warnings: tuple[str, ...]


def collect_csv_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (non-recursive) into a sorted list of ``.csv``/``.csv.gz`` files.

    Raises
    ------
    DataError
        For a path that does not exist, a file that is not CSV, or a folder without CSV files.
    """
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if is_csv_file(p))
            if not found:
                raise DataError(
                    f"folder {str(path)!r} holds no .csv or .csv.gz files; point "
                    "at a folder of bar files or at the files themselves."
                )
            files.extend(found)
        elif is_csv_file(path):
            files.append(path)
        elif path.exists():
            raise DataError(
                f"{str(path)!r} is not a .csv or .csv.gz file; rename it or convert it to CSV."
            )
        else:
            raise DataError(f"no such file or folder {str(path)!r}; check the path.")
    return files


def import_csv(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    store: BarStore | None = None,
) -> ImportResult:
    """Validate one CSV file and store it, replacing any stored series of the same symbol.

    Parameters
    ----------
    path : str or Path
        The CSV file (layouts in :mod:`framework.data.csv_files`).
    symbol : str, optional
        Store under this symbol instead of the one in the file name.
    timeframe : str, optional
        ``"1d"``, ``"5min"`` ...; default inferred from the file name or the timestamps.
    store : BarStore, optional
        Target store (default ``FW_HOME/data``).

    Raises
    ------
    DataValidationError
        When the file is invalid; the stored series is left as it was.
    """
    bars = read_csv_bars(path, symbol=symbol, timeframe=timeframe)
    store = store or BarStore()
    warnings = list(bars.warnings)
    if store.has(bars.symbol, bars.timeframe.name):
        old = store.metadata(bars.symbol, bars.timeframe.name)
        if old.source != bars.info.source:
            warnings.append(
                f"replaced the stored {old.symbol} ({old.timeframe}) from {old.source} "
                f"({old.rows} rows, {old.first[:10]} .. {old.last[:10]})."
            )
    meta = store.write(bars.symbol, bars.frame, bars.info)
    return ImportResult(Path(path), meta, tuple(warnings))


def check_distinct_targets(files: Sequence[Path]) -> None:
    """Refuse a batch in which two files would be stored under the same symbol and timeframe.

    ``SPY_1min.csv.gz`` and ``SPY_1min_2024.csv.gz`` both name SPY (1min); importing both would
    silently keep only the last one.
    """
    seen: dict[tuple[str, str], Path] = {}
    for path in files:
        name, timeframe = split_file_name(path)
        key = (normalize_symbol(name), timeframe or "1d")
        if key in seen:
            raise DataError(
                f"{seen[key].name} and {path.name} would both be stored as {key[0]} ({key[1]}); "
                "import them one at a time with --symbol to give each its own name."
            )
        seen[key] = path
