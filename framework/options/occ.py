"""OCC option symbols (``SPY260605P00690000``: root, YYMMDD, C/P, strike x 1000 on 8 digits).

:func:`occ_symbol` validates and builds one, :func:`parse_occ` reads one back, and
:func:`occ_code` is the bare format for callers whose parts are already checked (chains,
backtests).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date

from framework.errors import ConfigError, DataError
from framework.options.legs import as_date

OCC_PATTERN = re.compile(
    r"(?P<root>[A-Z][A-Z0-9]{0,5})(?P<day>\d{6})(?P<right>[CP])(?P<strike>\d{8})\Z")
MAX_STRIKE = 99_999.999  # 8 digits of thousandths
RIGHT_CODES = {"C": "C", "CALL": "C", "P": "P", "PUT": "P"}


def occ_code(root: str, expiry: date, right: str, strike: float) -> str:
    """``root`` + ``YYMMDD`` + ``right`` + strike x 1000 on 8 digits, unchecked."""
    return f"{root}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


# -- OCC symbols --------------------------------------------------------------------------------
@dataclass(frozen=True)
class OccContract:
    """An option contract as an OCC symbol names it.

    Attributes
    ----------
    underlying : str
        The OCC root (the underlying's ticker for standard contracts).
    expiry : datetime.date
    right : {"C", "P"}
    strike : float
    """

    underlying: str
    expiry: date
    right: str
    strike: float

    @property
    def symbol(self) -> str:
        """``SPY260605P00690000``."""
        return occ_symbol(self.underlying, self.expiry, self.right, self.strike)


def occ_symbol(underlying: str, expiry: object, right: str, strike: float) -> str:
    """The OCC symbol: root, ``YYMMDD``, ``C``/``P``, strike x 1000 on 8 digits.

    Examples
    --------
    >>> occ_symbol("SPY", "2026-06-05", "P", 690)
    'SPY260605P00690000'

    Raises
    ------
    ConfigError
        A root that is not 1-6 letters/digits starting with a letter, an unknown right, or a
        strike that is not a positive multiple of 0.001 below 100,000.
    """
    root = str(underlying).strip().upper()
    if not re.fullmatch(r"[A-Z][A-Z0-9]{0,5}", root):
        raise ConfigError(f"option root {underlying!r} is not 1-6 letters or digits starting with "
                          "a letter (e.g. 'SPY').")
    code = RIGHT_CODES.get(str(right).strip().upper())
    if code is None:
        raise ConfigError(f"option right {right!r}; expected 'C'/'call' or 'P'/'put'.")
    value = float(strike)
    thousandths = round(value * 1000)
    if not (math.isfinite(value) and 0 < value <= MAX_STRIKE
            and abs(thousandths - value * 1000) < 1e-6):
        raise ConfigError(f"option strike {strike!r} must be > 0, at most {MAX_STRIKE} and a "
                          "multiple of 0.001 (OCC symbols carry three decimals).")
    day = as_date(expiry, "option expiry")
    if not 2000 <= day.year <= 2099:
        raise ConfigError(f"option expiry {day} is outside 2000-2099 (OCC symbols carry a "
                          "two-digit year).")
    return occ_code(root, day, code, value)


def parse_occ(symbol: str) -> OccContract:
    """The contract an OCC symbol names (inverse of :func:`occ_symbol`).

    Raises
    ------
    DataError
        ``symbol`` is not an OCC option symbol such as ``SPY260605P00690000``.
    """
    match = OCC_PATTERN.fullmatch(str(symbol).strip().upper())
    expiry = None
    if match:
        day = match["day"]
        try:  # two-digit OCC years are 20YY (strptime's %y would put 69-99 in the 1900s)
            expiry = date(2000 + int(day[:2]), int(day[2:4]), int(day[4:]))
        except ValueError:
            expiry = None
    if expiry is None:
        raise DataError(f"{symbol!r} is not an OCC option symbol; expected ROOT + YYMMDD + C/P + "
                        "8-digit strike x 1000, e.g. SPY260605P00690000.")
    return OccContract(match["root"], expiry, match["right"], int(match["strike"]) / 1000.0)
