"""Tests for framework.ml.cv: purged, embargoed cross-validation on sample spans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from framework.errors import DataError, FwError, ParameterError
from framework.ml.cv import PurgedKFold, PurgedSplitSpec, purged_splits


# -- slow reference ----------------------------------------------------------------------------
def reference_splits(start, end, n_splits, embargo, walk_forward):
    """Row-by-row restatement of the splitting rules; ``None`` where a split must be refused."""
    times = sorted(set(int(s) for s in start))
    if len(times) < n_splits:
        return None
    size, extra = divmod(len(times), n_splits)
    blocks, pos = [], 0
    for b in range(n_splits):
        n = size + (1 if b < extra else 0)
        blocks.append(times[pos:pos + n])
        pos += n
    out = []
    for b, block in enumerate(blocks):
        if walk_forward and b == 0:
            continue
        lo, hi = block[0], block[-1]
        valid = [i for i, s in enumerate(start) if lo <= s <= hi]
        valid_end = max(end[i] for i in valid)
        train = []
        for i, (s, e) in enumerate(zip(start, end, strict=True)):
            overlaps = s <= valid_end and e >= lo
            embargoed = hi < s <= hi + embargo
            if overlaps or embargoed or (walk_forward and s >= lo):
                continue
            train.append(i)
        if not train:
            return None
        out.append((train, valid))
    return out


# -- hypothesis data ---------------------------------------------------------------------------
@st.composite
def sample_spans(draw):
    """Random spans: a few to ~40 distinct start bars with gaps, 1-3 rows (assets) per bar,
    label lengths 0..8 bars, rows in shuffled order."""
    gaps = draw(st.lists(st.integers(1, 3), min_size=2, max_size=40))
    times = np.cumsum(gaps)
    starts, ends = [], []
    for t in times:
        for _ in range(draw(st.integers(1, 3))):
            starts.append(int(t))
            ends.append(int(t) + draw(st.integers(0, 8)))
    order = draw(st.permutations(range(len(starts))))
    return np.array(starts)[order], np.array(ends)[order]


specs = st.builds(
    PurgedSplitSpec,
    n_splits=st.integers(2, 6),
    embargo=st.integers(0, 6),
    walk_forward=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(spans=sample_spans(), spec=specs)
def test_splits_never_leak_and_match_reference(spans, spec):
    start, end = spans
    ref = reference_splits(start.tolist(), end.tolist(), spec.n_splits, spec.embargo,
                           spec.walk_forward)
    cv = PurgedKFold(start, end, spec)
    if ref is None:
        with pytest.raises(DataError, match="fewer splits"):
            list(cv.split())
        return
    splits = list(cv.split(np.zeros((start.size, 1))))
    assert len(splits) == cv.get_n_splits() == spec.n_yielded
    assert [(tr.tolist(), va.tolist()) for tr, va in splits] == ref

    seen = np.zeros(start.size, dtype=int)
    prev_last = -np.inf
    for train, valid in splits:
        for idx in (train, valid):
            assert idx.dtype.kind == "i"
            assert np.all(np.diff(idx) > 0)  # sorted, no duplicates
        assert np.intersect1d(train, valid).size == 0
        seen[valid] += 1
        # blocks are contiguous in time and move forward
        lo, hi = start[valid].min(), start[valid].max()
        assert lo > prev_last
        prev_last = hi
        # rows sharing a start bar are never separated between train and validation
        assert not np.isin(start[train], start[valid]).any()
        # no training label shares a bar with any validation label
        ts, te = start[train][:, None], end[train][:, None]
        vs, ve = start[valid][None, :], end[valid][None, :]
        assert not ((ts <= ve) & (te >= vs)).any()
        # nothing trains in the embargo zone right after the block
        assert not ((start[train] > hi) & (start[train] <= hi + spec.embargo)).any()
        if spec.walk_forward:
            assert end[train].max() < lo
    if spec.walk_forward:
        # the first block is never validated: it has nothing before it to train on
        assert seen[start == start.min()].sum() == 0
        assert seen.max() == 1
    else:
        assert np.all(seen == 1)


@settings(max_examples=100, deadline=None)
@given(spans=sample_spans(), spec=specs, data=st.data())
def test_row_order_does_not_change_the_splits(spans, spec, data):
    start, end = spans
    perm = np.array(data.draw(st.permutations(range(start.size))))
    try:
        base = purged_splits(start, end, spec)
    except DataError:
        with pytest.raises(DataError):
            purged_splits(start[perm], end[perm], spec)
        return
    shuffled = purged_splits(start[perm], end[perm], spec)
    for (tr, va), (tr2, va2) in zip(base, shuffled, strict=True):
        assert sorted(tr.tolist()) == sorted(perm[tr2].tolist())
        assert sorted(va.tolist()) == sorted(perm[va2].tolist())


# -- worked examples ---------------------------------------------------------------------------
def test_small_example_by_hand():
    start = np.arange(10)
    end = start + 2
    (tr0, va0), (tr1, va1) = purged_splits(start, end, PurgedSplitSpec(2, embargo=1))
    # block 0 = bars 0..4, labels up to bar 6: rows 5 and 6 overlap and are purged
    assert va0.tolist() == [0, 1, 2, 3, 4] and tr0.tolist() == [7, 8, 9]
    # block 1 = bars 5..9: rows 3 and 4 end at 5 and 6 and are purged
    assert va1.tolist() == [5, 6, 7, 8, 9] and tr1.tolist() == [0, 1, 2]


def test_embargo_longer_than_labels_removes_more_rows():
    start = np.arange(10)
    end = start + 2
    (tr0, _), (tr1, _) = purged_splits(start, end, PurgedSplitSpec(2, embargo=4))
    assert tr0.tolist() == [9]  # bars 5..8 embargoed after block 0..4
    assert tr1.tolist() == [0, 1, 2]  # nothing after the last block to embargo


def test_walk_forward_skips_first_block_and_trains_on_the_past():
    start = np.arange(12)
    end = start + 1
    cv = PurgedKFold(start, end, PurgedSplitSpec(3, walk_forward=True))
    assert cv.get_n_splits() == 2
    (tr1, va1), (tr2, va2) = list(cv.split())
    assert va1.tolist() == [4, 5, 6, 7] and tr1.tolist() == [0, 1, 2]
    assert va2.tolist() == [8, 9, 10, 11] and tr2.tolist() == list(range(7))


def test_pooled_assets_share_a_block():
    start = np.repeat(np.arange(6), 3)  # three assets per bar
    end = start
    splits = purged_splits(start, end, PurgedSplitSpec(3))
    for train, valid in splits:
        assert valid.size == 6  # 2 bars x 3 assets
        assert np.unique(start[valid]).size == 2
        assert train.size == 12


def test_blocks_hold_nearly_equal_distinct_bars_not_rows():
    # bar 0 has 10 rows; it still counts as one distinct bar
    start = np.array([0] * 10 + [1, 2, 3])
    splits = purged_splits(start, start, PurgedSplitSpec(2))
    assert [np.unique(start[va]).tolist() for _, va in splits] == [[0, 1], [2, 3]]


def test_accepts_integral_floats_and_pandas():
    start = pd.Series(np.arange(8, dtype=float))
    splits = purged_splits(start, start + 1.0, PurgedSplitSpec(2))
    assert splits[0][1].tolist() == [0, 1, 2, 3]


# -- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, shown",
    [
        ({"n_splits": 1}, "1"),
        ({"n_splits": 2.5}, "2.5"),
        ({"n_splits": True}, "True"),
        ({"embargo": -1}, "-1"),
        ({"embargo": 1.5}, "1.5"),
        ({"walk_forward": "yes"}, "'yes'"),
    ],
)
def test_spec_rejects_bad_values(kwargs, shown):
    with pytest.raises(ParameterError, match="got " + shown):
        PurgedSplitSpec(**kwargs)


def test_spec_accepts_numpy_integers():
    spec = PurgedSplitSpec(np.int64(3), np.int32(2))
    assert spec.n_yielded == 3


@pytest.mark.parametrize(
    "start, end, message",
    [
        ([0, 1, 2], [1, 2], "start has 3 rows but end has 2"),
        ([], [], "empty"),
        ([0, 1, 2, 3], [1, 2, 1, 0], "row 2: label ends at bar 1 before it starts at bar 2"),
        ([0, 1.5, 2], [1, 2, 3], "start row 1 is 1.5"),
        ([0, 1, 2], [1, np.nan, 3], "end row 1 is nan"),
        (["a", "b"], [1, 2], "dtype"),
        ([[0, 1]], [[1, 2]], "one-dimensional"),
    ],
)
def test_bad_spans_raise_data_error_naming_the_row(start, end, message):
    with pytest.raises(DataError, match=message):
        PurgedKFold(start, end)


def test_too_few_distinct_bars():
    with pytest.raises(DataError, match="5 distinct start bars; the samples have 3"):
        purged_splits([0, 0, 1, 2], [0, 0, 1, 2], PurgedSplitSpec(5))


def test_labels_covering_everything_leave_no_training_rows():
    start = np.arange(10)
    with pytest.raises(DataError, match="no training rows left.*fewer splits"):
        purged_splits(start, np.full(10, 100), PurgedSplitSpec(2))


def test_walk_forward_block_without_a_past():
    # every label of block 0 reaches into block 1, so block 1 has nothing to train on
    start = np.arange(8)
    with pytest.raises(DataError, match="split 1"):
        purged_splits(start, start + 5, PurgedSplitSpec(2, walk_forward=True))


def test_x_of_another_length_is_refused():
    cv = PurgedKFold(np.arange(10), np.arange(10), PurgedSplitSpec(2))
    with pytest.raises(DataError, match="X has 9 rows"):
        list(cv.split(np.zeros((9, 2))))


def test_errors_are_fw_errors_and_repr_is_short():
    with pytest.raises(FwError):
        PurgedKFold([1], [0])
    cv = PurgedKFold(np.arange(1000), np.arange(1000), PurgedSplitSpec(4, 2))
    assert repr(cv) == (
        "PurgedKFold(n_samples=1000, spec=PurgedSplitSpec(n_splits=4, embargo=2, "
        "walk_forward=False))"
    )


# -- the planted leak --------------------------------------------------------------------------
HORIZON = 40
N_BARS = 1500
SEEDS = range(10)
# n_splits=20 keeps each contiguous block (~73 bars) short next to the 40-bar label, so under
# plain KFold most validation rows have a training neighbour whose label overlaps theirs.
LEAK_SPLITS = 20


def random_walk_dataset(seed):
    """Geometric random walk; label = sign of the forward 40-bar return; feature = bar index."""
    rng = np.random.default_rng(seed)
    log_price = np.cumsum(rng.normal(0.0, 0.01, N_BARS))
    start = np.arange(N_BARS - HORIZON)
    end = start + HORIZON
    y = (log_price[end] > log_price[start]).astype(int)
    return start.reshape(-1, 1).astype(float), y, start, end


def mean_accuracy(make_cv):
    scores = []
    for seed in SEEDS:
        X, y, start, end = random_walk_dataset(seed)
        knn = KNeighborsClassifier(n_neighbors=1)
        scores.append(cross_val_score(knn, X, y, cv=make_cv(start, end)).mean())
    return float(np.mean(scores))


def test_planted_leak_inflates_plain_kfold_but_not_purged():
    # Measured (seeds 0-9): plain 0.700, purged+embargo 0.533, walk-forward 0.514. Over 200
    # seeds in groups of 10: plain 0.652..0.722, purged 0.485..0.533, walk-forward 0.461..0.531.
    plain = mean_accuracy(lambda s, e: KFold(LEAK_SPLITS, shuffle=False))
    purged = mean_accuracy(lambda s, e: PurgedKFold(s, e, PurgedSplitSpec(LEAK_SPLITS, 15)))
    forward = mean_accuracy(
        lambda s, e: PurgedKFold(s, e, PurgedSplitSpec(LEAK_SPLITS, 15, walk_forward=True))
    )
    assert plain > 0.6
    assert purged < 0.58
    assert forward < 0.58
    assert plain - purged > 0.1


def test_plugs_into_grid_search():
    X, y, start, end = random_walk_dataset(0)
    spec = PurgedSplitSpec(LEAK_SPLITS, embargo=15)
    splits = purged_splits(start, end, spec)
    search = GridSearchCV(
        KNeighborsClassifier(), {"n_neighbors": [1, 15]}, cv=splits, scoring="accuracy"
    ).fit(X, y)
    assert search.n_splits_ == LEAK_SPLITS
    one_nn = cross_val_score(
        KNeighborsClassifier(n_neighbors=1), X, y, cv=PurgedKFold(start, end, spec)
    )
    assert search.cv_results_["mean_test_score"][0] == pytest.approx(one_nn.mean())
    assert search.best_score_ < 0.6
