"""Option-chain snapshots: loading, validation, and the questions strategies ask of a chain.

An :class:`OptionChain` is one underlying at one moment: a validated DataFrame with one row per
contract and these columns (extra columns, e.g. those :meth:`OptionChain.with_greeks` adds, are
kept):

==================  ===========================================================================
underlying          ticker (str)
snapshot            quote time, tz-aware UTC ``Timestamp`` (one value per chain)
underlying_price    spot at the snapshot (float, NaN when the source did not record it)
expiry              expiration day (``datetime.date``)
right               ``"C"`` or ``"P"``
strike              > 0
bid, ask, last      >= 0, NaN when not quoted; ``bid <= ask``
volume              >= 0 or NaN
open_interest       >= 0 or NaN
iv                  the source's implied vol (decimal), NaN when absent; unreliable deep ITM
contract            contract symbol (built as ROOT + YYMMDD + C/P + strike x 1000 when missing)
last_trade_time     time of the last trade, UTC (NaT when unknown)
==================  ===========================================================================

Files follow the ``../shared/data/options`` format (header ``snapshot_date, underlying,
underlying_price, expiration, option_type, strike, bid, ask, last_price, last_trade_time_utc,
volume, open_interest, implied_vol, contract_symbol``); a date-only ``snapshot_date`` means the
end-of-day quote, taken to be 16:00 New York time. Time to expiry runs to 16:00 New York on the
expiry day and is ACT/365 (see :meth:`OptionChain.t_years`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from framework.errors import DataError, DataValidationError, ParameterError
from framework.options.legs import as_date
from framework.options.occ import occ_code

NEW_YORK = "America/New_York"
CLOSE_TIME = pd.Timedelta(hours=16)  # expiry and end-of-day snapshots: the 16:00 NY close
DAYS_PER_YEAR = 365.0

FILE_COLUMNS = (
    "snapshot_date",
    "underlying",
    "underlying_price",
    "expiration",
    "option_type",
    "strike",
    "bid",
    "ask",
    "last_price",
    "last_trade_time_utc",
    "volume",
    "open_interest",
    "implied_vol",
    "contract_symbol",
)
CHAIN_COLUMNS = (
    "underlying",
    "snapshot",
    "underlying_price",
    "expiry",
    "right",
    "strike",
    "bid",
    "ask",
    "last",
    "volume",
    "open_interest",
    "iv",
    "contract",
)
GREEK_COLUMNS = (
    "model_iv",
    "model_iv_reason",
    "model_price",
    "delta",
    "gamma",
    "theta",
    "vega",
    "rho",
)
VOL_SOURCES = ("mid", "source")

_MISSING = ("", "nan", "NaN", "NA", "N/A")
_RIGHT_WORDS = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}
# column -> (must be > 0 rather than >= 0, may be missing)
_NUMERIC_RULES = {
    "underlying_price": (True, True),
    "strike": (True, False),
    "bid": (False, True),
    "ask": (False, True),
    "last": (False, True),
    "volume": (False, True),
    "open_interest": (False, True),
    "iv": (False, True),
}
_FILE_TO_CHAIN = {
    "underlying_price": "underlying_price",
    "strike": "strike",
    "bid": "bid",
    "ask": "ask",
    "last_price": "last",
    "volume": "volume",
    "open_interest": "open_interest",
    "implied_vol": "iv",
}


# -- the chain ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: compare/hash by identity, frames have no truth value
class OptionChain:
    """One underlying's option quotes at one moment, validated.

    Parameters
    ----------
    frame : DataFrame
        Rows of contracts with the columns listed in the module docstring (``last_trade_time``
        optional). It is copied, validated and sorted by expiry, right and strike; treat
        :attr:`frame` as read-only.
    source : str, optional
        Where the rows came from (a file path), used in error messages.
    rate, div : float, optional
        Continuous rate and dividend yield used by :meth:`with_greeks` (set by it); they are the
        defaults for the forward in :meth:`atm_iv`.

    Raises
    ------
    DataValidationError
        Missing columns, more than one underlying or snapshot, or a bad row (crossed quote,
        negative price, unknown right, expiry before the snapshot, duplicate contract); the
        row is the frame position.
    """

    frame: pd.DataFrame
    source: str | None = None
    rate: float | None = None
    div: float | None = None

    def __post_init__(self) -> None:
        frame = validate_chain_frame(self.frame, self.source)
        if frame["underlying"].nunique() != 1 or frame["snapshot"].nunique() != 1:
            found = sorted(
                {f"{u} @ {s}" for u, s in zip(frame["underlying"], frame["snapshot"], strict=True)}
            )
            raise DataValidationError(
                f"an OptionChain holds one underlying at one snapshot; got {found[:5]}. Split "
                "the rows with load_chains(...) or frame.groupby(['underlying', 'snapshot']).",
                path=self.source,
            )
        order = frame.sort_values(["expiry", "right", "strike"], kind="stable")
        object.__setattr__(self, "frame", order.reset_index(drop=True))

    # -- identity ------------------------------------------------------------------------------
    @property
    def underlying(self) -> str:
        """The underlying's ticker."""
        return str(self.frame["underlying"].iloc[0])

    @property
    def snapshot(self) -> pd.Timestamp:
        """Quote time (tz-aware UTC)."""
        return self.frame["snapshot"].iloc[0]

    @property
    def snapshot_date(self) -> date:
        """The New York calendar day of the snapshot."""
        return self.snapshot.tz_convert(NEW_YORK).date()

    @property
    def spot(self) -> float:
        """Underlying price at the snapshot (NaN when the source did not record it)."""
        return float(self.frame["underlying_price"].iloc[0])

    def __len__(self) -> int:
        return len(self.frame)

    # -- per-row quantities --------------------------------------------------------------------
    def dte(self) -> pd.Series:
        """Calendar days from the snapshot's New York date to each row's expiry (int)."""
        days = [(expiry - self.snapshot_date).days for expiry in self.frame["expiry"]]
        return pd.Series(days, index=self.frame.index, name="dte", dtype=np.int64)

    def t_years(self) -> pd.Series:
        """Years to expiry, ACT/365, to 16:00 New York on the expiry day.

        Measured in New York wall-clock time so that a daylight-saving change in between does
        not add or remove an hour: an end-of-day snapshot gives exactly ``dte / 365``. Never
        negative (0 once the expiry's close has passed).
        """
        start = self.snapshot.tz_convert(NEW_YORK).tz_localize(None)
        ends = pd.to_datetime(pd.Series(self.frame["expiry"]).astype(str)) + CLOSE_TIME
        years = (ends - start).dt.total_seconds() / (DAYS_PER_YEAR * 86400.0)
        return years.clip(lower=0.0).rename("t_years")

    def mid(self) -> pd.Series:
        """``(bid + ask) / 2``; NaN where either is missing or there is no offer (ask <= 0)."""
        bid, ask = self.frame["bid"], self.frame["ask"]
        return ((bid + ask) / 2.0).where(ask > 0.0).rename("mid")

    def spread_pct(self) -> pd.Series:
        """``(ask - bid) / mid`` as a fraction (0.05 = 5 %); NaN where :meth:`mid` is NaN."""
        return ((self.frame["ask"] - self.frame["bid"]) / self.mid()).rename("spread_pct")

    # -- expiries --------------------------------------------------------------------------------
    def expiries(self) -> list[date]:
        """The chain's expiration days, ascending."""
        return sorted(set(self.frame["expiry"]))

    def nearest_expiry(self, target_dte: float) -> date:
        """The expiry whose days-to-expiry is closest to ``target_dte`` (ties: the earlier one).

        Raises
        ------
        ParameterError
            ``target_dte`` is not a finite number >= 0.
        """
        target = _non_negative(target_dte, "nearest_expiry target_dte", "e.g. 30 for a month")
        today = self.snapshot_date
        return min(self.expiries(), key=lambda e: (abs((e - today).days - target), e))

    # -- models ----------------------------------------------------------------------------------
    def with_greeks(
        self, rate: float, div: float, vol_source: str = "mid", spot: float | None = None
    ) -> OptionChain:
        """A copy with model implied vols and Black-Scholes-Merton greeks.

        Parameters
        ----------
        rate, div : float
            Continuous risk-free rate and dividend yield, decimals.
        vol_source : {"mid", "source"}
            Vol for the greeks: the model IV from the mid quote (``"mid"``) or the file's ``iv``
            column (``"source"``). ``model_iv`` is computed either way.
        spot : float, optional
            Underlying price at the snapshot; overrides the chain's ``underlying_price`` (and is
            written into it). Needed where the source has none (most names of the MULTI file).

        Returns
        -------
        OptionChain
            With columns ``model_iv`` (European BSM IV of the mid, NaN where none),
            ``model_iv_reason`` ("ok", "expired", "zero_price", "below_intrinsic",
            "above_upper_bound", "no_convergence", or "no_quote" when there is no ask),
            ``model_price``, ``delta``, ``gamma``, ``theta`` (per calendar day), ``vega`` (per
            vol point) and ``rho`` (per rate point); greeks are NaN where the chosen vol is.

        Raises
        ------
        ParameterError
            Unknown ``vol_source``, non-finite ``rate``/``div`` or a bad ``spot``.
        DataError
            No underlying price in the chain and no ``spot`` given.
        """
        from framework.options.bsm import bsm_greeks
        from framework.options.iv import quote_vols

        if vol_source not in VOL_SOURCES:
            raise ParameterError(
                f"with_greeks vol_source must be one of {VOL_SOURCES}; got {vol_source!r}."
            )
        rate = _finite(rate, "with_greeks rate", "a continuous decimal, e.g. 0.0371")
        div = _finite(div, "with_greeks div", "a continuous decimal, e.g. 0.0102")
        s = self._spot_for_model(spot)
        frame = self.frame.drop(columns=[c for c in GREEK_COLUMNS if c in self.frame.columns])
        t = self.t_years().to_numpy()
        call = (frame["right"] == "C").to_numpy()
        strike = frame["strike"].to_numpy(dtype=np.float64)
        bid = frame["bid"].to_numpy(dtype=np.float64)
        ask = frame["ask"].to_numpy(dtype=np.float64)
        quoted = np.isfinite(bid) & np.isfinite(ask) & (ask > 0.0)
        model_iv = np.full(len(frame), np.nan)
        reason = np.full(len(frame), "no_quote", dtype=object)
        if quoted.any():
            _, mid_iv, _ = quote_vols(
                bid[quoted], ask[quoted], s, strike[quoted], t[quoted], rate, div, call[quoted]
            )
            model_iv[quoted] = mid_iv.vol
            reason[quoted] = np.asarray(mid_iv.reason, dtype=object)
        vol = model_iv if vol_source == "mid" else frame["iv"].to_numpy(dtype=np.float64)
        usable = np.isfinite(vol) & (vol > 0.0)
        columns = {name: np.full(len(frame), np.nan) for name in GREEK_COLUMNS[2:]}
        if usable.any():
            greeks = bsm_greeks(s, strike[usable], t[usable], rate, div, vol[usable], call[usable])
            columns["model_price"][usable] = greeks.price
            for name in ("delta", "gamma", "theta", "vega", "rho"):
                columns[name][usable] = getattr(greeks, name)
        frame = frame.assign(
            underlying_price=s, model_iv=model_iv, model_iv_reason=reason, **columns
        )
        return OptionChain(frame, self.source, rate, div)

    def _spot_for_model(self, spot: float | None) -> float:
        """The spot for pricing: the ``spot`` argument, else the chain's underlying price."""
        if spot is not None:
            value = _finite(spot, "with_greeks spot", "the underlying's price")
            if value <= 0.0:
                raise ParameterError(f"with_greeks spot must be > 0; got {spot!r}.")
            return value
        if not math.isfinite(self.spot):
            raise DataError(
                f"the {self.underlying} chain has no underlying_price, so greeks cannot be "
                "computed; pass spot=<price at the snapshot> to with_greeks."
            )
        return self.spot

    # -- selection -------------------------------------------------------------------------------
    def select_by_delta(self, right: str, target_delta: float, expiry: object) -> pd.Series:
        """The ``right`` contract of ``expiry`` whose ``|delta|`` is closest to ``|target_delta|``.

        Parameters
        ----------
        right : {"C", "P"}
            Call or put ("call"/"put" accepted).
        target_delta : float
            e.g. 0.20 or -0.20 for a 20-delta put (the sign is ignored).
        expiry : date-like
            One of :meth:`expiries` (``date``, ``Timestamp`` or ISO string).

        Returns
        -------
        Series
            The chosen row (ties: the lower strike).

        Raises
        ------
        DataError
            Greeks were not computed (call :meth:`with_greeks` first) or no row of that expiry
            and right has a delta.
        """
        if "delta" not in self.frame.columns:
            raise DataError(
                "select_by_delta needs deltas; call chain.with_greeks(rate, div) first."
            )
        target = abs(_finite(target_delta, "select_by_delta target_delta", "e.g. 0.20"))
        if target > 1.0:
            raise ParameterError(
                f"select_by_delta target_delta must be within [-1, 1]; got {target_delta!r}."
            )
        rows = self._rows(right, expiry, "select_by_delta")
        rows = rows[np.isfinite(rows["delta"])]
        if rows.empty:
            raise DataError(
                f"no {right} contract of {self.underlying} expiring {expiry} has a delta (no "
                "usable vol); pick another expiry or vol_source."
            )
        distance = (rows["delta"].abs() - target).abs()
        return rows.loc[distance.idxmin()]

    def select_by_strike(self, right: str, strike: float, expiry: object) -> pd.Series:
        """The ``right`` contract of ``expiry`` whose strike is closest to ``strike``.

        Ties (``strike`` halfway between two listed strikes) go to the lower strike.

        Raises
        ------
        DataError
            No contract of that right and expiry.
        ParameterError
            ``strike`` is not a finite number >= 0.
        """
        wanted = _non_negative(strike, "select_by_strike strike", "the strike, e.g. 700")
        rows = self._rows(right, expiry, "select_by_strike")
        return rows.loc[(rows["strike"] - wanted).abs().idxmin()]

    def atm_iv(
        self,
        expiry: object,
        rate: float | None = None,
        div: float | None = None,
        vol_source: str = "source",
    ) -> float:
        """Implied vol at the money: interpolated linearly in strike at the forward.

        Calls and puts are interpolated separately at ``F = spot * exp((rate - div) * t)`` from
        the two listed strikes around it that have a usable vol and a bid > 0, then averaged
        (one side alone when the other has no bracket).

        Parameters
        ----------
        expiry : date-like
            One of :meth:`expiries`.
        rate, div : float, optional
            For the forward; default the values given to :meth:`with_greeks`, else 0 (the
            forward is then the spot).
        vol_source : {"source", "mid"}
            The file's ``iv`` column, or ``model_iv`` from :meth:`with_greeks`.

        Raises
        ------
        DataError
            No underlying price, ``model_iv`` missing for ``vol_source="mid"``, or no strikes
            with usable vols on both sides of the forward.
        """
        column = {"source": "iv", "mid": "model_iv"}.get(vol_source)
        if column is None:
            raise ParameterError(
                f"atm_iv vol_source must be one of {VOL_SOURCES}; got {vol_source!r}."
            )
        if column not in self.frame.columns:
            raise DataError("atm_iv(vol_source='mid') needs model_iv; call with_greeks first.")
        if not math.isfinite(self.spot):
            raise DataError(
                f"the {self.underlying} chain has no underlying_price; atm_iv needs one."
            )
        day = as_date(expiry, "atm_iv expiry")
        rate = _default(rate, self.rate, "atm_iv rate")
        div = _default(div, self.div, "atm_iv div")
        in_expiry = self.frame["expiry"] == self._known_expiry(day, "atm_iv")
        t = float(self.t_years()[in_expiry].iloc[0])
        forward = self.spot * math.exp((rate - div) * t)
        sides = [self._interpolated(right, day, forward, column) for right in ("C", "P")]
        found = [v for v in sides if v is not None]
        if not found:
            raise DataError(
                f"no usable {column} on both sides of the forward {forward:.2f} for the "
                f"{self.underlying} {day} expiry (needs vol > 0 and bid > 0)."
            )
        return float(np.mean(found))

    def _interpolated(self, right: str, day: date, forward: float, column: str) -> float | None:
        """Linear interpolation of ``column`` in strike at ``forward``; None without a bracket."""
        rows = self._rows(right, day, "atm_iv")
        vols = rows[column].to_numpy(dtype=np.float64)
        good = np.isfinite(vols) & (vols > 0.0) & (rows["bid"].to_numpy() > 0.0)
        strikes, vols = rows["strike"].to_numpy()[good], vols[good]
        if strikes.size == 0 or not strikes[0] <= forward <= strikes[-1]:
            return None
        return float(np.interp(forward, strikes, vols))

    def filter_liquid(self, min_oi: float = 0, max_spread_pct: float | None = None) -> OptionChain:
        """Keep contracts with a bid, open interest >= ``min_oi`` and a tight enough spread.

        Parameters
        ----------
        min_oi : float
            Minimum open interest (contracts); rows with unknown open interest are dropped when
            this is > 0.
        max_spread_pct : float, optional
            Maximum ``(ask - bid) / mid`` as a FRACTION (0.10 = 10 %); None keeps any spread.

        Returns
        -------
        OptionChain
            The surviving rows (may be empty of some expiries; raises if none survive).

        Raises
        ------
        ParameterError
            Negative ``min_oi``, or ``max_spread_pct`` outside ``[0, 2]`` (a spread over mid can
            never exceed 2; a value like 10 was probably meant as 0.10).
        DataError
            No contract passes.
        """
        min_oi = _non_negative(min_oi, "filter_liquid min_oi", "e.g. 100")
        keep = (self.frame["bid"] > 0.0).to_numpy().copy()
        if min_oi > 0:
            keep &= (self.frame["open_interest"] >= min_oi).to_numpy()
        if max_spread_pct is not None:
            limit = _non_negative(max_spread_pct, "filter_liquid max_spread_pct", "e.g. 0.10")
            if limit > 2.0:
                raise ParameterError(
                    f"filter_liquid max_spread_pct is a fraction of mid in [0, 2]; got "
                    f"{max_spread_pct!r}. Pass 0.10 for 10 %."
                )
            keep &= (self.spread_pct() <= limit).to_numpy()
        if not keep.any():
            raise DataError(
                f"filter_liquid(min_oi={min_oi:g}, max_spread_pct={max_spread_pct}) keeps none of "
                f"the {len(self)} {self.underlying} contracts; loosen the limits."
            )
        return OptionChain(self.frame[keep], self.source, self.rate, self.div)

    # -- helpers ---------------------------------------------------------------------------------
    def _known_expiry(self, day: date, what: str) -> date:
        """``day`` if the chain lists it, else a DataError naming the listed expiries."""
        listed = self.expiries()
        if day not in listed:
            shown = ", ".join(str(e) for e in listed[:12]) + (" ..." if len(listed) > 12 else "")
            raise DataError(
                f"{what}: the {self.underlying} chain has no expiry {day}; listed: {shown}. "
                "Use chain.nearest_expiry(target_dte) to pick one."
            )
        return day

    def _rows(self, right: str, expiry: object, what: str) -> pd.DataFrame:
        """Rows of one right and one (listed) expiry, in strike order."""
        code = _right_code(right, what)
        day = self._known_expiry(as_date(expiry, f"{what} expiry"), what)
        rows = self.frame[(self.frame["expiry"] == day) & (self.frame["right"] == code)]
        if rows.empty:
            raise DataError(
                f"{what}: the {self.underlying} chain has no {code} rows expiring {day}."
            )
        return rows


# -- loading -----------------------------------------------------------------------------------


def read_chain_file(path: str | Path) -> pd.DataFrame:
    """Read and validate one options file into the chain columns (all underlyings and dates).

    Raises
    ------
    DataValidationError
        Naming the file, line (the header is line 1), column and value: missing columns, an
        unparsable number or date, an unknown option_type, a negative price, a crossed quote
        (bid > ask), an expiry before the snapshot or a duplicated contract.
    DataError
        The file cannot be read.
    """
    path = Path(path)
    raw = _read_raw(path)
    where = str(path)
    frame = pd.DataFrame(
        {
            "underlying": _text(raw, "underlying", where).str.upper(),
            "snapshot": _snapshot_times(raw, where),
            "expiry": _dates(raw, "expiration", where),
            "right": _rights(raw["option_type"], where, 2),
            **{new: _numbers(raw, old, where) for old, new in _FILE_TO_CHAIN.items()},
            "contract": _text(raw, "contract_symbol", where, allow_missing=True),
            "last_trade_time": _utc_times(raw, "last_trade_time_utc", where),
        }
    )
    frame["contract"] = _fill_contracts(frame)
    return validate_chain_frame(frame[[*CHAIN_COLUMNS, "last_trade_time"]], where, row_offset=2)


def load_chain(path: str | Path, underlying: str | None = None) -> OptionChain:
    """Load one chain from an options file.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.csv.gz`` in the shared options format.
    underlying : str, optional
        Which underlying to keep; required when the file holds several (e.g. the MULTI file).

    Raises
    ------
    DataValidationError
        A bad file (see :func:`read_chain_file`).
    DataError
        The file holds several underlyings or snapshots and ``underlying`` does not pick one.
    """
    frame = read_chain_file(path)
    if underlying is not None:
        held = sorted(set(frame["underlying"]))
        frame = frame[frame["underlying"] == underlying.upper()]
        if frame.empty:
            raise DataError(f"{path} has no rows for underlying {underlying!r}; it holds {held}.")
    chains = _split(frame, str(path))
    if len(chains) > 1:
        listed = ", ".join(f"{c.underlying} {c.snapshot}" for c in chains)
        raise DataError(
            f"{path} holds {len(chains)} chains ({listed[:200]}); pass underlying=... or use "
            "load_chains(folder) to get them all."
        )
    return chains[0]


def load_chains(
    folder: str | Path, underlying: str | Iterable[str] | None = None
) -> dict[tuple[str, date], OptionChain]:
    """Load every options file of ``folder`` into chains keyed by ``(underlying, snapshot date)``.

    Parameters
    ----------
    folder : str or Path
        Folder of ``*.csv`` / ``*.csv.gz`` options files (e.g. ``../shared/data/options``).
    underlying : str or iterable of str, optional
        Keep only these underlyings (case-insensitive).

    Returns
    -------
    dict
        ``{(underlying, snapshot New York date): OptionChain}``, sorted by key.

    Raises
    ------
    DataError
        The folder has no options files, two files give the same key, or no chain matches
        ``underlying``.
    """
    folder = Path(folder)
    files = sorted(p for p in folder.glob("*") if p.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise DataError(f"no .csv or .csv.gz options files in {folder}; check the path.")
    chains: dict[tuple[str, date], OptionChain] = {}
    for path in files:
        for chain in _split(read_chain_file(path), str(path)):
            key = (chain.underlying, chain.snapshot_date)
            if key in chains:
                raise DataError(
                    f"{key[0]} {key[1]} appears twice (in {chains[key].source} and {path}); "
                    "keep one snapshot per underlying and day in the folder."
                )
            chains[key] = chain
    if underlying is not None:
        wanted = (
            {underlying.upper()} if isinstance(underlying, str) else {u.upper() for u in underlying}
        )
        kept = {key: chain for key, chain in chains.items() if key[0] in wanted}
        if not kept:
            raise DataError(
                f"no chain for {sorted(wanted)} in {folder}; underlyings there: "
                f"{sorted({k[0] for k in chains})}."
            )
        chains = kept
    return dict(sorted(chains.items()))


def _split(frame: pd.DataFrame, where: str) -> list[OptionChain]:
    """One :class:`OptionChain` per (underlying, snapshot) of a validated frame, in that order."""
    groups = frame.groupby(["underlying", "snapshot"], sort=True)
    return [OptionChain(rows, where) for _, rows in groups]


# -- validation --------------------------------------------------------------------------------


def validate_chain_frame(
    frame: pd.DataFrame, where: str | None = None, row_offset: int = 0
) -> pd.DataFrame:
    """Check and normalise chain rows; return a copy with a fresh index.

    Numbers become float64, ``snapshot`` UTC timestamps (naive ones are read as UTC), ``expiry``
    ``datetime.date`` and ``right`` ``"C"``/``"P"`` ("call"/"put" accepted).

    Parameters
    ----------
    frame : DataFrame
        Rows with :data:`CHAIN_COLUMNS`.
    where : str, optional
        File path (or other label) for messages.
    row_offset : int
        Added to the 0-based position to report a row (2 for files: header plus 1-based lines).

    Raises
    ------
    DataValidationError
        The first problem found, naming the row, column and value, and how many rows share it.
    """
    missing = [c for c in CHAIN_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"missing columns {missing}; an option chain needs {list(CHAIN_COLUMNS)}.",
            path=where,
            column=missing[0],
        )
    if frame.empty:
        raise DataValidationError(
            "no option rows; a chain needs at least one contract.", path=where
        )
    frame = frame.reset_index(drop=True)
    frame = _normalised(frame, where, row_offset)
    _check_rows(frame, where, row_offset)
    return frame


def _normalised(frame: pd.DataFrame, where: str | None, offset: int) -> pd.DataFrame:
    """Coerce the typed columns, failing on values that cannot be coerced."""
    out = frame.copy()
    for column in _NUMERIC_RULES:
        values = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
        text = values.isna() & frame[column].notna()
        _fail_if(text, frame[column], where, offset, column, "{value!r} is not a number.")
        out[column] = values
    stamps = pd.to_datetime(frame["snapshot"], utc=True, errors="coerce")
    _fail_if(
        stamps.isna(),
        frame["snapshot"],
        where,
        offset,
        "snapshot",
        "snapshot {value!r} is not a time; expected a tz-aware Timestamp.",
    )
    out["snapshot"] = stamps
    expiries = pd.to_datetime(frame["expiry"], errors="coerce")
    _fail_if(
        expiries.isna(),
        frame["expiry"],
        where,
        offset,
        "expiry",
        "expiry {value!r} is not a date; expected a datetime.date or YYYY-MM-DD.",
    )
    out["expiry"] = expiries.dt.date
    codes = frame["right"].astype(str).str.strip().str.upper().map(_RIGHT_WORDS)
    _fail_if(
        codes.isna(),
        frame["right"],
        where,
        offset,
        "right",
        "unknown option right {value!r}; expected 'C' or 'P'.",
    )
    out["right"] = codes
    out["underlying"] = frame["underlying"].astype(str)
    return out


def _check_rows(frame: pd.DataFrame, where: str | None, offset: int) -> None:
    """Every row-level rule on normalised rows; raises on the first broken one."""
    for column, (strict, may_miss) in _NUMERIC_RULES.items():
        values = frame[column]
        bad = ((values <= 0.0) if strict else (values < 0.0)) | np.isinf(values)
        if not may_miss:
            bad |= values.isna()
        rule = "> 0" if strict else ">= 0"
        _fail_if(
            bad,
            values,
            where,
            offset,
            column,
            f"{column} must be finite and {rule}; got {{value!r}}.",
        )
    crossed = frame["bid"] > frame["ask"]
    pairs = frame["bid"].astype(str) + " > ask " + frame["ask"].astype(str)
    _fail_if(
        crossed,
        pairs,
        where,
        offset,
        "bid",
        "crossed quote: bid {value}; a bid above the ask is not a market. Fix or drop the row.",
    )
    snapshot_days = frame["snapshot"].dt.tz_convert(NEW_YORK).dt.tz_localize(None).dt.normalize()
    early = pd.to_datetime(frame["expiry"]) < snapshot_days
    _fail_if(
        early,
        frame["expiry"],
        where,
        offset,
        "expiry",
        "expiry {value} is before the snapshot date; such a contract cannot be quoted.",
    )
    keys = ["underlying", "snapshot", "expiry", "right", "strike"]
    dup = frame.duplicated(keys, keep="first")
    labels = frame["right"] + " " + frame["strike"].astype(str) + " " + frame["expiry"].astype(str)
    _fail_if(
        dup,
        labels,
        where,
        offset,
        "strike",
        "duplicate contract {value}; each underlying/expiry/right/strike must appear once.",
    )


def _fail_if(
    bad: pd.Series, values: pd.Series, where: str | None, offset: int, column: str, message: str
) -> None:
    """Raise DataValidationError for the first True of ``bad`` (naming how many rows are bad)."""
    flags = np.asarray(bad, dtype=bool)
    if not flags.any():
        return
    first = int(np.flatnonzero(flags)[0])
    value = values.iloc[first]
    if isinstance(value, np.generic):  # show -1.0, not np.float64(-1.0)
        value = value.item()
    count = int(flags.sum())
    more = f" ({count} such rows)" if count > 1 else ""
    raise DataValidationError(
        message.format(value=value) + more,
        path=where,
        row=first + offset,
        column=column,
        value=value,
    )


# -- file parsing ------------------------------------------------------------------------------


def _read_raw(path: Path) -> pd.DataFrame:
    """The file as strings, after checking the header has every expected column."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError as exc:
        raise DataError(f"options file {path} does not exist; check the path.") from exc
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read options file {path}: {exc}") from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    missing = [c for c in FILE_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"missing columns {missing}; the options header is {','.join(FILE_COLUMNS)}.",
            path=str(path),
            column=missing[0],
        )
    if raw.empty:
        raise DataValidationError("no option rows after the header.", path=str(path))
    return raw.apply(lambda col: col.str.strip())


def _absent(col: pd.Series) -> pd.Series:
    return col.isin(_MISSING)


def _text(raw: pd.DataFrame, column: str, where: str, allow_missing: bool = False) -> pd.Series:
    """A string column; empty cells are an error unless ``allow_missing`` (then None)."""
    col = raw[column]
    absent = _absent(col)
    if not allow_missing:
        _fail_if(absent, col, where, 2, column, f"{column} is empty; every row needs one.")
    return col.astype(object).where(~absent, None)


def _numbers(raw: pd.DataFrame, column: str, where: str) -> pd.Series:
    """A float column; empty cells become NaN, text that is not a number is an error."""
    col = raw[column]
    values = pd.to_numeric(col.where(~_absent(col), None), errors="coerce").astype(np.float64)
    bad = values.isna() & ~_absent(col)
    _fail_if(
        bad,
        col,
        where,
        2,
        column,
        "{value!r} is not a number; expected e.g. 1.25 or an empty cell.",
    )
    return values


def _dates(raw: pd.DataFrame, column: str, where: str) -> pd.Series:
    """An ISO date column as ``datetime.date`` objects (no empty cells)."""
    col = raw[column]
    parsed = pd.to_datetime(col, format="%Y-%m-%d", errors="coerce")
    _fail_if(
        parsed.isna(),
        col,
        where,
        2,
        column,
        "cannot parse {value!r} as a date; expected YYYY-MM-DD.",
    )
    return parsed.dt.date


def _snapshot_times(raw: pd.DataFrame, where: str) -> pd.Series:
    """Snapshot as UTC: a bare date is its 16:00 New York close; a timestamp is taken as given."""
    col = raw["snapshot_date"]
    bare = col.str.fullmatch(r"\d{4}-\d{2}-\d{2}")
    days = pd.to_datetime(col.where(bare), format="%Y-%m-%d", errors="coerce")
    closes = (days + CLOSE_TIME).dt.tz_localize(NEW_YORK).dt.tz_convert("UTC")
    stamps = pd.to_datetime(col.where(~bare), format="ISO8601", utc=True, errors="coerce")
    out = closes.where(bare, stamps)
    _fail_if(
        out.isna(),
        col,
        where,
        2,
        "snapshot_date",
        "cannot parse {value!r} as a date or time; expected YYYY-MM-DD or ISO-8601 with a zone.",
    )
    return out


def _utc_times(raw: pd.DataFrame, column: str, where: str) -> pd.Series:
    """An optional ISO timestamp column in UTC (naive times are read as UTC); NaT when empty."""
    col = raw[column]
    absent = _absent(col)
    parsed = pd.to_datetime(col.where(~absent), format="ISO8601", utc=True, errors="coerce")
    _fail_if(
        parsed.isna() & ~absent,
        col,
        where,
        2,
        column,
        "cannot parse {value!r} as a time; expected ISO-8601 like 2026-04-24T19:31:27Z.",
    )
    return parsed


def _rights(col: pd.Series, where: str, offset: int) -> pd.Series:
    """C/P codes from the file's option_type ("call"/"put" accepted, case-insensitive)."""
    codes = col.str.upper().map(_RIGHT_WORDS)
    _fail_if(
        codes.isna(),
        col,
        where,
        offset,
        "option_type",
        "unknown option_type {value!r}; expected C or P.",
    )
    return codes


def _fill_contracts(frame: pd.DataFrame) -> pd.Series:
    """Contract symbols, building ROOT + YYMMDD + C/P + 8-digit strike x 1000 where missing."""
    built = [
        occ_code(u, e, r, k)
        for u, e, r, k in zip(
            frame["underlying"], frame["expiry"], frame["right"], frame["strike"], strict=True
        )
    ]
    return frame["contract"].where(frame["contract"].notna(), pd.Series(built, index=frame.index))


# -- small argument helpers --------------------------------------------------------------------


def _right_code(right: object, what: str) -> str:
    code = _RIGHT_WORDS.get(str(right).strip().upper()) if isinstance(right, str) else None
    if code is None:
        raise ParameterError(f"{what} right must be 'C' or 'P' (or 'call'/'put'); got {right!r}.")
    return code


def _finite(value: object, what: str, example: str) -> float:
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    number = float(value) if ok else math.nan
    if not math.isfinite(number):
        raise ParameterError(f"{what} must be a finite number ({example}); got {value!r}.")
    return number


def _default(value: float | None, fallback: float | None, what: str) -> float:
    """``value`` if given, else the chain's ``fallback`` (from with_greeks), else 0."""
    if value is None:
        return 0.0 if fallback is None else fallback
    return _finite(value, what, "a continuous decimal, e.g. 0.0371")


def _non_negative(value: object, what: str, example: str) -> float:
    number = _finite(value, what, example)
    if number < 0.0:
        raise ParameterError(f"{what} must be >= 0 ({example}); got {value!r}.")
    return number


__all__ = [
    "CHAIN_COLUMNS",
    "FILE_COLUMNS",
    "OptionChain",
    "load_chain",
    "load_chains",
    "read_chain_file",
    "validate_chain_frame",
]
