"""Walk-forward windows: rolling or anchored train/test folds in bars or calendar units.

All positions are bar indexes into ``bars.index`` and every window is half-open ``[start, end)``.
For each fold::

    [train_start ........ train_end) [purge bars) [test_start ....... test_end)

- **Lengths** are a plain bar count (``"756"`` or ``756``) or a calendar span: ``"90d"`` (calendar
  days), ``"26w"`` (weeks), ``"18m"`` (months), ``"3y"`` (years). A calendar window holds the bars
  whose close time lies in ``[T, T + span)``.
- **The first fold** starts its training window at the first bar; its test window begins right
  after the training window and the purge gap. Each later test window begins ``step`` after the
  previous one (default: the test length, so test windows are contiguous). ``step`` shorter than
  the test length would make test windows overlap and is refused; a longer ``step`` leaves
  unscored gaps between test windows (the stitched out-of-sample run holds no position there).
- **Rolling** training windows end ``purge`` bars before their test window and have the train
  length; **anchored** (expanding) ones always start at the first bar.
- **Purge**: ``purge`` bars between a training window and its test window belong to neither, so
  features or labels that straddle the boundary cannot leak test information into training.
- **Embargo**: in walk-forward every training window precedes its own test window, so the embargo
  never touches the fold it follows. It acts on *later* folds, whose training windows (rolling or
  anchored) cover earlier test windows: the ``embargo`` bars right after each earlier test window
  (``[test_end_j, test_end_j + embargo)``) are left out of every later in-sample score. The engine
  still runs through those bars so positions carry, but their returns are not used to rank
  parameters (:attr:`Fold.scored`).
- The last test window is cut at the end of the data (it may be shorter than the test length);
  the first fold must be complete, else :class:`~framework.errors.DataError` says how many bars
  there are and how many one fold needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from framework.errors import DataError, ParameterError

_CALENDAR_UNITS = {"d": "calendar days", "w": "weeks", "m": "months", "y": "years"}
_CALENDAR_SLACK = pd.Timedelta(days=4)
_LENGTH_RE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True)
class Length:
    """A window length: ``count`` bars (``unit="bars"``) or a calendar span (``d/w/m/y``)."""

    count: int
    unit: str = "bars"

    @property
    def is_bars(self) -> bool:
        return self.unit == "bars"

    def offset(self) -> pd.DateOffset | pd.Timedelta:
        """The calendar span as something a UTC timestamp can be shifted by."""
        if self.unit == "d":
            return pd.Timedelta(days=self.count)
        if self.unit == "w":
            return pd.Timedelta(weeks=self.count)
        if self.unit == "m":
            return pd.DateOffset(months=self.count)
        if self.unit == "y":
            return pd.DateOffset(years=self.count)
        raise ParameterError(f"length {self} is in bars; it has no calendar offset.")

    def __str__(self) -> str:
        return str(self.count) if self.is_bars else f"{self.count}{self.unit}"


def parse_length(value: object, name: str = "length", allow_zero: bool = False) -> Length:
    """Read ``756``, ``"756"``, ``"90d"``, ``"26w"``, ``"18m"`` or ``"3y"`` as a :class:`Length`.

    Parameters
    ----------
    value : int, str or Length
        The length as given on the command line or in code.
    name : str
        The option's name, used in error messages (e.g. ``"--train"``).
    allow_zero : bool
        Accept 0 (for gaps such as purge and embargo).
    """
    if isinstance(value, Length):
        length = value
    elif isinstance(value, int | np.integer) and not isinstance(value, bool):
        length = Length(int(value))
    elif isinstance(value, str) and (match := _LENGTH_RE.match(value)):
        unit = match.group(2).lower()
        unit = {"": "bars", "b": "bars", "bars": "bars"}.get(unit, unit)
        if unit != "bars" and unit not in _CALENDAR_UNITS:
            raise ParameterError(
                f"{name} = {value!r} has an unknown unit {match.group(2)!r}; expected a bar count "
                "(e.g. 756) or a number with d (calendar days), w, m or y (e.g. 90d, 26w, 18m, 3y)."
            )
        length = Length(int(match.group(1)), unit)
    else:
        raise ParameterError(
            f"{name} = {value!r} is not a length; expected a bar count (e.g. 756) or a calendar "
            "span such as 90d, 26w, 18m or 3y."
        )
    if length.count < 0 or (length.count == 0 and not allow_zero):
        raise ParameterError(f"{name} = {value!r} must be positive; e.g. {name} 3y or {name} 756.")
    return length


def parse_gap(value: object, name: str) -> int:
    """A purge/embargo gap: a non-negative number of bars (calendar units are refused)."""
    length = parse_length(value, name, allow_zero=True)
    if not length.is_bars:
        raise ParameterError(
            f"{name} = {value!r}: gaps are counted in bars; give a plain number such as {name} 5."
        )
    return length.count


@dataclass(frozen=True)
class WindowSpec:
    """How to cut the data into walk-forward folds (see the module docstring).

    Attributes
    ----------
    train, test : Length or str or int
        In-sample and out-of-sample window lengths.
    step : Length or str or int or None
        Distance between consecutive test window starts; ``None`` means the test length.
    anchored : bool
        Expanding training windows that always start at the first bar.
    purge : int
        Bars dropped between each training window and its test window.
    embargo : int
        Bars after each test window left out of the scoring of later training windows.
    """

    train: Length | str | int = "3y"
    test: Length | str | int = "1y"
    step: Length | str | int | None = None
    anchored: bool = False
    purge: int | str = 0
    embargo: int | str = 0

    def __post_init__(self) -> None:
        # Normalize once so every consumer sees Length objects and int gaps.
        object.__setattr__(self, "train", parse_length(self.train, "--train"))
        object.__setattr__(self, "test", parse_length(self.test, "--test"))
        step = self.test if self.step is None else parse_length(self.step, "--step")
        object.__setattr__(self, "step", step)
        object.__setattr__(self, "purge", parse_gap(self.purge, "--purge"))
        object.__setattr__(self, "embargo", parse_gap(self.embargo, "--embargo"))
        if self.step.unit == self.test.unit and self.step.count < self.test.count:
            raise ParameterError(
                f"--step {self.step} is shorter than --test {self.test}: test windows would "
                "overlap. Use a step of at least the test length (the default)."
            )

    def describe(self) -> str:
        kind = "anchored" if self.anchored else "rolling"
        return (
            f"{kind} train {self.train}, test {self.test}, step {self.step}, "
            f"purge {self.purge}, embargo {self.embargo}"
        )


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold as half-open bar ranges.

    Attributes
    ----------
    number : int
        0-based fold number, in time order.
    train_start, train_end, test_start, test_end : int
        Bar positions; ``train_end <= test_start`` (the purge gap lies between).
    embargoed : tuple of (int, int)
        Ranges inside the training window excluded from in-sample scoring.
    """

    number: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int
    embargoed: tuple[tuple[int, int], ...] = ()

    @property
    def n_train(self) -> int:
        return self.train_end - self.train_start

    @property
    def n_test(self) -> int:
        return self.test_end - self.test_start

    def scored(self) -> np.ndarray:
        """Boolean mask over the training window: True where a bar counts in the score."""
        mask = np.ones(self.n_train, dtype=bool)
        for lo, hi in self.embargoed:
            mask[max(lo, self.train_start) - self.train_start : max(0, hi - self.train_start)] = (
                False
            )
        return mask


def _advance(index: pd.DatetimeIndex, start: int, length: Length) -> int:
    """Position of the first bar at or after ``start + length`` (bars or calendar)."""
    if length.is_bars:
        return start + length.count
    return int(index.searchsorted(index[start] + length.offset(), side="left"))


def _retreat(index: pd.DatetimeIndex, end: int, length: Length) -> int:
    """Start of a window of ``length`` that ends (exclusive) at position ``end``."""
    if length.is_bars:
        return end - length.count
    return int(index.searchsorted(index[end] - length.offset(), side="left"))


def _complete(index: pd.DatetimeIndex, start: int, length: Length) -> bool:
    """Whether the data covers a whole window of ``length`` starting at bar ``start``."""
    if length.is_bars:
        return start + length.count <= len(index)
    end_time = index[start] + length.offset()
    # A calendar window ending on a weekend or holiday is complete once the data reaches the
    # last session before that end, hence the few days of slack.
    return bool(index[-1] >= end_time - _CALENDAR_SLACK)


def make_folds(index: pd.DatetimeIndex, spec: WindowSpec) -> list[Fold]:
    """Cut a bar index into walk-forward folds.

    Parameters
    ----------
    index : DatetimeIndex
        The bars' close times (strictly increasing).
    spec : WindowSpec
        Window lengths, mode, purge and embargo.

    Returns
    -------
    list of Fold
        In time order, with non-overlapping test windows.

    Raises
    ------
    DataError
        When the data is too short for one complete fold.
    """
    n = len(index)
    first_train_end = _advance(index, 0, spec.train) if n else 0
    first_test_start = first_train_end + spec.purge
    if first_test_start >= n or not _complete(index, first_test_start, spec.test):
        raise DataError(_too_short_message(index, spec))
    folds: list[Fold] = []
    test_start = first_test_start
    while test_start < n:
        train_end = test_start - spec.purge
        train_start = 0 if spec.anchored else max(0, _retreat(index, train_end, spec.train))
        test_end = min(_advance(index, test_start, spec.test), n)
        embargoed = tuple(
            (f.test_end, f.test_end + spec.embargo)
            for f in folds
            if spec.embargo and f.test_end < train_end and f.test_end + spec.embargo > train_start
        )
        folds.append(Fold(len(folds), train_start, train_end, test_start, test_end, embargoed))
        next_start = _advance(index, test_start, spec.step)
        if next_start < test_end:
            raise ParameterError(
                f"--step {spec.step} moves fold {len(folds)} to bar {next_start}, inside the "
                f"previous test window (ends at bar {test_end}); test windows must not overlap. "
                "Use a step at least as long as the test window."
            )
        test_start = next_start
    return folds


def _too_short_message(index: pd.DatetimeIndex, spec: WindowSpec) -> str:
    n = len(index)
    span = f" ({index[0].date()} to {index[-1].date()})" if n else ""
    if spec.train.is_bars and spec.test.is_bars:
        need = spec.train.count + spec.purge + spec.test.count
        need_text = f"{need} bars (train {spec.train} + purge {spec.purge} + test {spec.test})"
    else:
        need_text = f"train {spec.train} + purge {spec.purge} bars + test {spec.test}"
        if n and not spec.train.is_bars and not spec.test.is_bars:
            reach = index[0] + spec.train.offset() + spec.test.offset()
            need_text += f", i.e. data from {index[0].date()} to about {reach.date()}"
    return (
        f"walk-forward data too short: one fold needs {need_text}, but the data has {n} bars"
        f"{span}. Load more history (--start/--end) or shorten --train/--test."
    )


def oos_span(folds: list[Fold]) -> slice:
    """The bar range from the first test bar to the last (gaps between test windows included)."""
    if not folds:
        raise DataError("no walk-forward folds: nothing to stitch.")
    return slice(folds[0].test_start, folds[-1].test_end)
