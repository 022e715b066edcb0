"""Argument checking and shape plumbing shared by the indicator wrappers.

Kernels only ever see column-major (Fortran-order) float64 ``(n_bars, n_columns)`` arrays, so that
each column they walk is contiguous in memory; these helpers turn the user's 1-D or 2-D input into
that form (a ``DataFrame.to_numpy()`` panel usually already is, so no copy is made) and validate parameters with messages that name the bad
value, what was expected and how to fix it.
"""

from __future__ import annotations

import math

import numpy as np

from framework.errors import ParameterError


def check_window(window: object, name: str, *, label: str = "window", minimum: int = 1) -> int:
    """Return ``window`` as an ``int`` after checking it is an integer ``>= minimum``."""
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ParameterError(
            f"{name} {label} must be {kind}; got {window!r}. Pass e.g. {label}={max(minimum, 14)}."
        )
    return int(window)


def check_positive(value: object, name: str, label: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a finite ``float`` that is ``> 0`` (or ``>= 0`` with ``allow_zero``)."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
    number = float(value) if ok else math.nan
    if not math.isfinite(number) or number < 0.0 or (number == 0.0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ParameterError(f"{name} {label} must be a finite number {bound}; got {value!r}.")
    return number


def as_matrix(x: object, name: str, label: str = "input") -> tuple[np.ndarray, bool]:
    """Return ``(array_2d, was_1d)``: a column-major float64 view or copy of ``x``."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"{name} {label} must be numeric (a 1-D or 2-D float array); got {type(x).__name__}: "
            f"{exc}"
        ) from exc
    if arr.ndim == 1:
        return np.asfortranarray(arr.reshape(-1, 1)), True
    if arr.ndim != 2:
        raise ParameterError(
            f"{name} takes a 1-D (bars,) or 2-D (bars, columns) array; {label} has {arr.ndim} "
            f"dimensions (shape {arr.shape}). Reshape it to (bars, columns)."
        )
    return np.asfortranarray(arr), False


def as_matrices(name: str, **inputs: object) -> tuple[list[np.ndarray], bool]:
    """Convert several same-shaped inputs (e.g. high, low, close) with :func:`as_matrix`."""
    arrays: list[np.ndarray] = []
    one_d_flags: list[bool] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for label, value in inputs.items():
        arr, one_d = as_matrix(value, name, label)
        arrays.append(arr)
        one_d_flags.append(one_d)
        shapes[label] = np.shape(value)
    if len(set(shapes.values())) > 1:
        listing = ", ".join(f"{label}={shape}" for label, shape in shapes.items())
        raise ParameterError(
            f"{name} inputs must all have the same shape; got {listing}. Align them on the same "
            "bars (and columns) first."
        )
    return arrays, one_d_flags[0]


def restore(out: np.ndarray, one_d: bool) -> np.ndarray:
    """Undo :func:`as_matrix`: a ``(n, 1)`` result becomes ``(n,)`` when the input was 1-D."""
    return out[:, 0] if one_d else out


def invalid_rows(*arrays: np.ndarray) -> np.ndarray:
    """Boolean mask of rows where any of the same-shaped ``arrays`` is NaN."""
    mask = np.isnan(arrays[0])
    for arr in arrays[1:]:
        mask = mask | np.isnan(arr)
    return mask


def masked(arr: np.ndarray, invalid: np.ndarray) -> np.ndarray:
    """Copy of ``arr`` with NaN where ``invalid``, so single-input kernels restart there too."""
    return np.asfortranarray(np.where(invalid, np.nan, arr))
