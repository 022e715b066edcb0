"""The minimum-duration hysteresis kernel against a slow reference, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import DataError
from framework.regime import hold_min_duration
from tests.framework.regime.helpers import hold_reference

raw_lists = st.lists(st.integers(-1, 3), min_size=0, max_size=120)
# Long runs make switches likely; plain uniform labels would almost never hold min_duration bars.
runs = st.lists(st.tuples(st.integers(-1, 3), st.integers(1, 15)), max_size=25).map(
    lambda pairs: [label for label, length in pairs for _ in range(length)]
)


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(raw_lists, runs), min_duration=st.integers(1, 8))
def test_kernel_equals_reference(raw, min_duration):
    got = hold_min_duration(np.array(raw, dtype=np.int64), min_duration)
    assert got.tolist() == hold_reference(raw, min_duration)


@settings(max_examples=100, deadline=None)
@given(raw=runs, min_duration=st.integers(1, 8))
def test_no_run_shorter_than_min_duration(raw, min_duration):
    out = hold_min_duration(np.array(raw, dtype=np.int64), min_duration)
    # Every run of a held label lasts at least min_duration bars, except the first after a reset,
    # one cut short by a reset (-1), and the last one (still running).
    starts = np.flatnonzero(np.r_[True, out[1:] != out[:-1]]) if len(out) else np.array([], int)
    lengths = np.diff(np.r_[starts, len(out)])
    for k in range(1, len(starts) - 1):
        previous, label, following = out[starts[k - 1]], out[starts[k]], out[starts[k + 1]]
        if previous >= 0 and label >= 0 and following >= 0:
            assert lengths[k] >= min_duration, (out.tolist(), k)


@settings(max_examples=100, deadline=None)
@given(raw=runs, min_duration=st.integers(1, 8), data=st.data())
def test_prefix_invariant_and_2d_columns_independent(raw, min_duration, data):
    arr = np.array(raw, dtype=np.int64)
    full = hold_min_duration(arr, min_duration)
    cut = data.draw(st.integers(0, len(arr)))
    assert hold_min_duration(arr[:cut], min_duration).tolist() == full[:cut].tolist()
    other = arr[::-1].copy()
    both = hold_min_duration(np.column_stack([arr, other]), min_duration)
    assert both[:, 0].tolist() == full.tolist()
    assert both[:, 1].tolist() == hold_min_duration(other, min_duration).tolist()


@pytest.mark.parametrize(
    ("raw", "min_duration", "expected"),
    [
        # first valid label adopted at once; a 2-bar blip is ignored with min_duration 3
        ([-1, 0, 0, 1, 1, 0, 0], 3, [-1, 0, 0, 0, 0, 0, 0]),
        # a new label switches on its third consecutive bar
        ([0, 0, 1, 1, 1, 1], 3, [0, 0, 0, 0, 1, 1]),
        # alternating candidates never accumulate
        ([2, 1, 3, 1, 3, 1, 3], 2, [2, 2, 2, 2, 2, 2, 2]),
        # a gap (-1) resets: the next label is adopted immediately
        ([0, 0, -1, 3, 3], 5, [0, 0, -1, 3, 3]),
        # min_duration 1 is no smoothing
        ([0, 1, 2, 3, -1, 2], 1, [0, 1, 2, 3, -1, 2]),
    ],
)
def test_scenarios(raw, min_duration, expected):
    assert hold_min_duration(np.array(raw), min_duration).tolist() == expected


@pytest.mark.parametrize(
    ("raw", "min_duration", "match"),
    [
        (np.zeros(3, dtype=int), 0, "min_duration must be >= 1"),
        (np.zeros(3, dtype=int), 2.5, "min_duration must be an int"),
        (np.zeros(3), 2, "integer array"),
        (np.zeros((2, 2, 2), dtype=int), 2, "1-D or 2-D"),
    ],
)
def test_bad_inputs_raise(raw, min_duration, match):
    with pytest.raises(DataError, match=match):
        hold_min_duration(raw, min_duration)
