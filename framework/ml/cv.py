"""Purged and embargoed cross-validation for samples whose labels span several bars.

A training row is decided at bar ``start`` and its label resolves at bar ``end >= start`` (a
forward return over ``horizon`` bars has ``end = start + horizon``). Rows whose label intervals
overlap share information: a model validated on one and trained on the other is graded on an
answer it has partly seen, so ordinary K-fold scores of such labels are inflated.

:class:`PurgedKFold` splits on *time*, never on row order, because several rows (several pooled
assets) may share a start bar:

1. the distinct start bars are cut into ``n_splits`` contiguous blocks holding (nearly) equal
   numbers of distinct bars; a block's validation rows are the rows starting inside it;
2. **purge**: a training row whose ``[start, end]`` overlaps ``[first start of the block, last
   end of its validation rows]`` is dropped, so no training label shares a bar with a
   validation label;
3. **embargo**: training rows starting in the ``embargo`` bars right after the block's last
   start are dropped as well, against serially correlated features that outlive the label
   overlap. Rows starting within a label horizon after the block overlap it and are purged
   anyway, so only an embargo longer than the label horizon removes extra rows;
4. ``walk_forward=True`` trains only on rows before the block (after purging), so the model
   never sees the future at all; the first block has nothing before it and is skipped.

:func:`purged_splits` returns the splits as a list, which is what scikit-learn's ``cv=``
arguments (``GridSearchCV``, ``cross_val_score``, ``CalibratedClassifierCV``) accept.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.model_selection import BaseCrossValidator

from framework.errors import DataError, ParameterError

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class PurgedSplitSpec:
    """How :class:`PurgedKFold` cuts the samples.

    Attributes
    ----------
    n_splits : int
        Contiguous blocks of distinct start bars (>= 2). Walk-forward yields one split fewer.
    embargo : int
        Bars right after each validation block whose rows never train (>= 0).
    walk_forward : bool
        Train only on rows before the validation block instead of on both sides of it.
    """

    n_splits: int = 5
    embargo: int = 0
    walk_forward: bool = False

    def __post_init__(self) -> None:
        if not _is_int(self.n_splits) or self.n_splits < 2:
            raise ParameterError(
                f"n_splits must be an integer >= 2; got {self.n_splits!r}. Use 2 or more blocks."
            )
        if not _is_int(self.embargo) or self.embargo < 0:
            raise ParameterError(
                f"embargo must be an integer number of bars >= 0; got {self.embargo!r}."
            )
        if not isinstance(self.walk_forward, bool | np.bool_):
            raise ParameterError(
                f"walk_forward must be True or False; got {self.walk_forward!r}."
            )

    @property
    def n_yielded(self) -> int:
        """How many splits a cross-validator with this spec yields."""
        return self.n_splits - 1 if self.walk_forward else self.n_splits


class PurgedKFold(BaseCrossValidator):
    """A scikit-learn cross-validator that purges overlapping labels and embargoes after blocks.

    Parameters
    ----------
    start : array-like of int
        Decision bar of each sample (row), in any order; several rows may share a bar.
    end : array-like of int
        Bar at which each row's label resolved (``end >= start``).
    spec : PurgedSplitSpec, optional
        Number of blocks, embargo and walk-forward mode (default: 5 blocks, no embargo).

    Raises
    ------
    DataError
        When ``start`` and ``end`` differ in length, are empty, hold non-integers or a row ends
        before it starts (the message names the first bad row).

    Notes
    -----
    :meth:`split` yields sorted ``int64`` row indices. A split whose training or validation set
    would be empty raises :class:`~framework.errors.DataError` instead of being skipped, so a
    search never silently scores fewer folds than it was asked for.
    """

    def __init__(self, start, end, spec: PurgedSplitSpec | None = None) -> None:
        self.spec = PurgedSplitSpec() if spec is None else spec
        if not isinstance(self.spec, PurgedSplitSpec):
            raise ParameterError(
                f"spec must be a PurgedSplitSpec; got {type(self.spec).__name__}."
            )
        self.start, self.end = _validated_spans(start, end)

    @property
    def n_samples(self) -> int:
        """Number of rows the splits index into."""
        return int(self.start.size)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of splits :meth:`split` yields (``n_splits - 1`` in walk-forward mode)."""
        return self.spec.n_yielded

    def split(self, X=None, y=None, groups=None) -> Iterator[Split]:
        """Yield ``(train, validation)`` arrays of sorted row indices, one pair per block.

        Parameters
        ----------
        X : array-like, optional
            Only its length is checked against the sample spans.
        y, groups : ignored
            Present for scikit-learn compatibility.
        """
        if X is not None and _n_rows(X) != self.n_samples:
            raise DataError(
                f"X has {_n_rows(X)} rows but the cross-validator was built from "
                f"{self.n_samples} sample spans; pass the start/end of exactly the rows of X."
            )
        yield from self._splits()

    def __repr__(self) -> str:
        # the default sklearn repr would print both span arrays in full
        return f"PurgedKFold(n_samples={self.n_samples}, spec={self.spec!r})"

    def _splits(self) -> Iterator[Split]:
        times = np.unique(self.start)
        if times.size < self.spec.n_splits:
            raise DataError(
                f"{self.spec.n_splits} purged splits need at least {self.spec.n_splits} distinct "
                f"start bars; the samples have {times.size}. Use fewer splits or more data."
            )
        blocks = np.array_split(times, self.spec.n_splits)
        first = 1 if self.spec.walk_forward else 0
        for number, block in enumerate(blocks[first:], start=first):
            yield self._one_split(number, int(block[0]), int(block[-1]))

    def _one_split(self, number: int, lo: int, hi: int) -> Split:
        start, end = self.start, self.end
        valid = (start >= lo) & (start <= hi)
        valid_end = int(end[valid].max())
        # every validation row overlaps the window too, so ``keep`` already excludes them
        keep = ~((start <= valid_end) & (end >= lo))
        keep &= ~((start > hi) & (start <= hi + self.spec.embargo))
        if self.spec.walk_forward:
            keep &= start < lo
        train = np.flatnonzero(keep).astype(np.int64)
        if train.size == 0:
            raise DataError(
                f"purged split {number} (validation start bars {lo}..{hi}, labels up to bar "
                f"{valid_end}) has no training rows left after purging"
                f"{' and embargo' if self.spec.embargo else ''}; labels this long cover the "
                f"whole sample. Use fewer splits, a smaller embargo, shorter labels or more data."
            )
        return train, np.flatnonzero(valid).astype(np.int64)


def purged_splits(start, end, spec: PurgedSplitSpec | None = None) -> list[Split]:
    """All ``(train, validation)`` index pairs of a :class:`PurgedKFold`, as a list.

    The list is what scikit-learn's ``cv=`` parameters take, e.g.
    ``GridSearchCV(estimator, grid, cv=purged_splits(start, end, spec))``.
    """
    return list(PurgedKFold(start, end, spec).split())


# -- internals ---------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool | np.bool_)


def _n_rows(X) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape else len(X)


def _validated_spans(start, end) -> tuple[np.ndarray, np.ndarray]:
    s = _as_bar_indices(start, "start")
    e = _as_bar_indices(end, "end")
    if s.size != e.size:
        raise DataError(
            f"start has {s.size} rows but end has {e.size}; give one start and one end per sample."
        )
    if s.size == 0:
        raise DataError("no samples to split: start and end are empty.")
    bad = np.flatnonzero(e < s)
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"row {row}: label ends at bar {int(e[row])} before it starts at bar {int(s[row])} "
            f"({bad.size} such rows); end must be >= start. Check the label horizon."
        )
    return s, e


def _as_bar_indices(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional (one bar per sample); got shape {arr.shape}.")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind != "f":
        raise DataError(
            f"{name} must hold integer bar indices; got dtype {arr.dtype}. Pass bar positions, "
            "not timestamps or labels."
        )
    bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            f"{name} row {row} is {float(arr[row])!r}, not an integer bar index; drop unlabelled rows "
            "(NaN spans) before splitting."
        )
    return arr.astype(np.int64)
