"""The fw exception hierarchy.

Every error a user can cause subclasses :class:`FwError` and a matching builtin, so callers may
catch either. Messages name the bad value, say what was expected and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FwError(Exception):
    """Base class of every error fw raises on purpose."""


class ConfigError(FwError, ValueError):
    """A configuration file, key or value is invalid."""


class DataError(FwError, ValueError):
    """Market data is missing, malformed or inconsistent."""


class DataValidationError(DataError):
    """A data file failed validation; names the file, row, column and value."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
        value: object = None,
    ) -> None:
        self.path, self.row, self.column, self.value = path, row, column, value
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        prefix = ": ".join([", ".join(where)]) + ": " if where else ""
        super().__init__(prefix + message)


class ProviderError(DataError):
    """A remote data provider failed or returned something unusable."""


class StrategyError(FwError, ValueError):
    """A strategy is unknown, malformed or returned invalid output."""


class ParameterError(StrategyError):
    """A strategy parameter is unknown or has an invalid value."""


class EngineError(FwError, ValueError):
    """The simulation was asked for something it cannot do (bad shapes, bad specs)."""


class LookaheadError(FwError, RuntimeError):
    """A strategy used information from the future."""


class BrokerError(FwError, RuntimeError):
    """A broker call failed; the message says whether the outcome is known."""


class StorageError(FwError, OSError):
    """The state database cannot be written (disk full, read-only, I/O error).

    Trading stops: nothing may be sent that was not stored first. ``exit_code`` 74 (EX_IOERR)
    lets a service manager tell this apart from a crash and not restart into the same wall.
    """

    exit_code = 74


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or ``""`` when none is close.

    Parameters
    ----------
    name : str
        The unknown name the user gave.
    candidates : iterable of str
        The valid names.
    """
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def unknown_name_message(kind: str, name: str, candidates: Iterable[str]) -> str:
    """A standard message for an unknown name: what was given, a suggestion, the valid names."""
    options = sorted(candidates)
    hint = did_you_mean(name, options)
    listing = ", ".join(options) if options else "(none)"
    return f"unknown {kind} {name!r}.{hint} Valid {kind}s: {listing}."
