"""The inputs of an options backtest: as-traded closes, a vol level, a dividend yield.

Strikes live on the traded price scale, so the options backtester needs closes that are not
dividend-adjusted, while fw's bar loader adjusts by ``adj_close`` (right for stock returns, wrong
for strikes). :func:`load_options_inputs` therefore reads the underlying's CSV itself:

* with ``data_dir``: ``SYMBOL.csv[.gz]`` from ``data_dir``, else from a ``daily_unadjusted``
  folder inside or beside it (the shared data set keeps as-traded closes there). A file whose
  ``adj_close`` differs from ``close`` has as-traded closes; its dividend yield is measured
  causally from the growth of ``adj_close / close`` over the trailing year. A file whose
  ``adj_close`` equals ``close`` is dividend-adjusted unless the symbol pays no dividends (an
  index): such a file is refused for an ETF when an unadjusted one is missing;
* without ``data_dir``: the embedded S&P 500 index level divided by 10, traded as XSP (Mini-SPX,
  European) options: an index level is as traded, and its dividend yield is taken as the chain
  model's constant.

The vol level follows :func:`framework.options.synthetic.spec_for_symbol`: VIX for SPY/QQQ
(``VIX.csv[.gz]`` from the same folders), the underlying's realised volatility otherwise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.options.synthetic import DEFAULT_SPEC, SyntheticChainSpec, spec_for_symbol

EMBEDDED_UNDERLYING = "XSP"
# symbols known to pay no dividends (index levels): a file with adj_close == close is as traded
_NO_DIVIDENDS = frozenset({"GSPC", "SPX", "IXIC", "NDX", "RUT", "DJI", "VIX"})


@dataclass(frozen=True)
class OptionsInputs:
    """What :func:`framework.options.backtest.prepare_market` needs, with where it came from.

    Attributes
    ----------
    underlying : str
        Symbol of the underlying (contract root in trade lists).
    closes : Series
        As-traded daily closes on naive New York session dates.
    level : Series or None
        VIX closes (points) for ``chain_spec.iv_source == "vix"``; None for realised vol.
    div : float or Series
        Continuous dividend yield (decimal), constant or dated.
    chain_spec : SyntheticChainSpec
        The chain model for this underlying.
    notes : tuple of str
        Sources and substitutions a report must show.
    data_hash : str
        sha256 of the closes and level used (reproducibility).
    """

    underlying: str
    closes: pd.Series
    level: pd.Series | None
    div: float | pd.Series
    chain_spec: SyntheticChainSpec
    notes: tuple[str, ...]
    data_hash: str


def load_options_inputs(symbol: str | None = None, data_dir: Path | None = None,
                        chain_spec: SyntheticChainSpec = DEFAULT_SPEC) -> OptionsInputs:
    """Closes, vol level and dividend yield of ``symbol`` for an options backtest.

    Parameters
    ----------
    symbol : str, optional
        Underlying; default ``SPY`` with ``data_dir``, the embedded ``XSP`` without.
    data_dir : Path, optional
        A folder of daily CSV files (see the module docstring for where files are looked up).
    chain_spec : SyntheticChainSpec
        Base chain model; its vol source is set per symbol.

    Raises
    ------
    DataError
        No usable file, only dividend-adjusted closes for a dividend payer, or no VIX file
        where the symbol's chain model needs one.
    """
    if data_dir is None:
        return _embedded(symbol or EMBEDDED_UNDERLYING, chain_spec)
    symbol = (symbol or "SPY").strip().upper()
    spec = spec_for_symbol(symbol, chain_spec)
    frame, path = _read_underlying(symbol, Path(data_dir))
    notes = [f"Underlying {symbol}: as-traded closes from {path}"]
    close = frame["close"].rename(symbol)
    div: float | pd.Series = 0.0
    if "adj_close" in frame and not np.allclose(frame["adj_close"], frame["close"], rtol=1e-9):
        div = trailing_dividend_yield(frame)
        notes.append("Dividend yield: trailing 252-session growth of adj_close / close (causal)")
    else:
        notes.append("Dividend yield: 0 (the file shows no dividends)")
    level = None
    if spec.iv_source == "vix":
        vix, vix_path = read_vix(Path(data_dir))
        level = vix
        notes.append(f"Vol level: VIX closes from {vix_path}"
                     + (f" x {spec.vix_scale / DEFAULT_SPEC.vix_scale:.3f} (QQQ)"
                        if symbol == "QQQ" else ""))
    else:
        notes.append(f"Vol level: {spec.rv_window}-session realised vol x {spec.rv_premium} "
                     "(no implied-vol history for this symbol)")
    return OptionsInputs(symbol, close, level, div, spec, tuple(notes),
                         _hash(close, level))


def trailing_dividend_yield(frame: pd.DataFrame, sessions: int = 252) -> pd.Series:
    """Continuous trailing yield from the growth of the dividend factor ``adj_close / close``
    over the last ``sessions`` sessions (past data only); undefined during the first year."""
    factor = frame["adj_close"] / frame["close"]
    years = sessions / 252.0
    return (np.log(factor / factor.shift(sessions)) / years).dropna().clip(lower=0.0)


def _embedded(symbol: str, chain_spec: SyntheticChainSpec) -> OptionsInputs:
    from framework.data import load_default

    name = symbol.strip().upper()
    if name not in ("GSPC", "XSP"):
        raise DataError(
            f"the embedded data has the S&P 500 index level only (traded as XSP, the mini-SPX "
            f"options on a tenth of it); got {symbol!r}. Pass --data-dir with as-traded daily "
            "files (e.g. ../shared/data/daily_unadjusted) to backtest options on another "
            "underlying.")
    bars = load_default(["GSPC"])
    days = session_dates(bars.index)
    # XSP (Cboe Mini-SPX) options are European, cash-settled, on one tenth of the index: on
    # that scale strike widths in points mean what they mean for SPY
    close = pd.Series(bars.close[:, 0] / 10.0, index=days, name="XSP").dropna()
    # the embedded VIX covers only a few years; the realised-vol level covers the whole index
    spec = replace(chain_spec, iv_source="realized")
    notes = (
        "Underlying XSP: the embedded S&P 500 index level (GSPC, offline) / 10, as Mini-SPX "
        "European options",
        f"Vol level: {spec.rv_window}-session realised vol x {spec.rv_premium} (the embedded "
        "VIX starts in 2014); skew, term structure and spreads are the model fit on SPY",
        f"Dividend yield: the chain model's constant {spec.dividend_yield:.2%}",
    )
    return OptionsInputs("XSP", close, None, float(spec.dividend_yield), spec, notes,
                         _hash(close, None))


def _candidates(data_dir: Path, name: str) -> list[Path]:
    folders = [data_dir, data_dir / "daily_unadjusted", data_dir.parent / "daily_unadjusted"]
    return [f / f"{name}{ext}" for f in folders for ext in (".csv.gz", ".csv")]


def _read_underlying(symbol: str, data_dir: Path) -> tuple[pd.DataFrame, Path]:
    adjusted_only = None
    for path in _candidates(data_dir, symbol):
        if not path.is_file():
            continue
        frame = _read(path)
        same = "adj_close" in frame and np.allclose(frame["adj_close"], frame["close"],
                                                    rtol=1e-9)
        if same and symbol not in _NO_DIVIDENDS:
            adjusted_only = adjusted_only or path  # dividend-adjusted: look for an as-traded file
            continue
        return frame, path
    if adjusted_only is not None:
        raise DataError(
            f"{adjusted_only} holds dividend-adjusted closes (adj_close equals close), but option "
            f"strikes are on the traded price scale. Put {symbol}.csv.gz with as-traded close and "
            "adj_close columns in a daily_unadjusted folder next to it, or pass --data-dir "
            "pointing at such files.")
    looked = ", ".join(str(p) for p in _candidates(data_dir, symbol)[::2])
    raise DataError(f"no daily file for {symbol}: looked for {looked}. Pass --data-dir with "
                    f"{symbol}.csv.gz (columns date, close and ideally adj_close).")


def read_vix(data_dir: Path) -> tuple[pd.Series, Path]:
    """VIX daily closes (points) from ``data_dir``, its ``daily`` folder or one beside it."""
    folders = [data_dir, data_dir / "daily", data_dir.parent / "daily",
               data_dir / "daily_unadjusted", data_dir.parent / "daily_unadjusted"]
    for folder in folders:
        for ext in (".csv.gz", ".csv"):
            path = folder / f"VIX{ext}"
            if path.is_file():
                return _read(path)["close"].rename("VIX"), path
    raise DataError(
        f"the SPY/QQQ chain model reads its vol level from VIX, and no VIX.csv[.gz] is in "
        f"{data_dir}, its daily folder or beside it. Add the VIX daily file (the shared data set "
        "has daily/VIX.csv.gz).")


def _read(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    frame.columns = [str(c).strip().lower().replace(" ", "_") for c in frame.columns]
    if "date" not in frame or "close" not in frame:
        raise DataError(f"{path} needs 'date' and 'close' columns; it has {list(frame.columns)}.")
    try:
        index = pd.DatetimeIndex(pd.to_datetime(frame["date"])).tz_localize(None).normalize()
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: the date column is not ISO dates ({exc}).") from exc
    out = frame.drop(columns="date").set_index(index).apply(pd.to_numeric, errors="coerce")
    out = out[out["close"].notna() & (out["close"] > 0)]
    if not out.index.is_monotonic_increasing or out.index.has_duplicates:
        raise DataError(f"{path}: dates must be strictly increasing without duplicates.")
    return out


def session_dates(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Naive New York session dates of fw's UTC bar close times."""
    return index.tz_convert("America/New_York").tz_localize(None).normalize()


def _hash(close: pd.Series, level: pd.Series | None) -> str:
    digest = hashlib.sha256(close.to_numpy(np.float64).tobytes())
    digest.update(close.index.asi8.tobytes())
    if level is not None:
        digest.update(level.to_numpy(np.float64).tobytes())
        digest.update(level.index.asi8.tobytes())
    return digest.hexdigest()
