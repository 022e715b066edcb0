"""Walk-forward splitters: scenario tables in bars and calendar units, invariants, bad input."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import DataError, ParameterError
from framework.walkforward.splits import Length, WindowSpec, make_folds, oos_span, parse_length


def _bar_index(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("2015-01-02", periods=n, tz="UTC") + pd.Timedelta(hours=21)


def _day_index(start: str, end: str) -> pd.DatetimeIndex:
    # one bar per calendar day: positions are day counts, so calendar tables are easy to check
    return pd.date_range(start, end, freq="D", tz="UTC") + pd.Timedelta(hours=21)


def _ranges(folds):
    return [(f.train_start, f.train_end, f.test_start, f.test_end) for f in folds]


# (n bars, spec kwargs, expected [(train_start, train_end, test_start, test_end), ...])
BAR_TABLE = [
    (100, dict(train=50, test=20), [(0, 50, 50, 70), (20, 70, 70, 90), (40, 90, 90, 100)]),
    (90, dict(train=50, test=20), [(0, 50, 50, 70), (20, 70, 70, 90)]),
    (
        100,
        dict(train=50, test=20, anchored=True),
        [(0, 50, 50, 70), (0, 70, 70, 90), (0, 90, 90, 100)],
    ),
    (100, dict(train=50, test=20, purge=5), [(0, 50, 55, 75), (20, 70, 75, 95), (40, 90, 95, 100)]),
    (100, dict(train="50", test="20", step="30"), [(0, 50, 50, 70), (30, 80, 80, 100)]),
    (
        100,
        dict(train=40, test=25, purge=2, anchored=True),
        [(0, 40, 42, 67), (0, 65, 67, 92), (0, 90, 92, 100)],
    ),
    (70, dict(train=50, test=20), [(0, 50, 50, 70)]),
]


@pytest.mark.parametrize(("n", "kwargs", "expected"), BAR_TABLE)
def test_bar_count_windows(n, kwargs, expected):
    assert _ranges(make_folds(_bar_index(n), WindowSpec(**kwargs))) == expected


def test_embargo_excludes_bars_after_earlier_test_windows_from_later_scores():
    # rolling 50/10: fold 3 trains on [30, 80), which covers the test windows [50, 60) and
    # [60, 70); with embargo 3 the bars [60, 63) and [70, 73) right after them are not scored.
    # Fold 1 trains on [10, 60): the bars after its predecessor's test window are not in it.
    folds = make_folds(_bar_index(100), WindowSpec(train=50, test=10, embargo=3))
    assert [f.embargoed for f in folds[:4]] == [(), (), ((60, 63),), ((60, 63), (70, 73))]
    mask = folds[3].scored()
    assert mask.size == 50 and (~mask).sum() == 6
    assert not mask[60 - 30 : 63 - 30].any() and not mask[70 - 30 : 73 - 30].any()
    assert mask[: 60 - 30].all() and mask[63 - 30 : 70 - 30].all() and mask[73 - 30 :].all()
    # without embargo the same folds score every training bar
    assert all(f.scored().all() for f in make_folds(_bar_index(100), WindowSpec(train=50, test=10)))


def test_calendar_windows_on_daily_bars():
    # 2015 has 365 days; 2016-01-01 + 6 months = 2016-07-01 (182 days later, 2016 is a leap year)
    index = _day_index("2015-01-01", "2017-03-31")
    folds = make_folds(index, WindowSpec(train="1y", test="6m"))
    assert _ranges(folds) == [(0, 365, 365, 547), (181, 547, 547, 731), (365, 731, 731, 821)]
    assert index[folds[1].train_start].date() == pd.Timestamp("2015-07-01").date()


@pytest.mark.parametrize(("text", "days"), [("90d", 90), ("26w", 182), ("4w", 28)])
def test_calendar_days_and_weeks(text, days):
    index = _day_index("2015-01-01", "2016-12-31")
    fold = make_folds(index, WindowSpec(train=text, test="10"))[0]
    assert (fold.train_start, fold.train_end, fold.test_end) == (0, days, days + 10)


def test_mixed_units_and_business_days():
    index = _bar_index(800)  # 2015-01-02 .. ~2018-01
    folds = make_folds(index, WindowSpec(train="1y", test=63))
    first = folds[0]
    assert index[first.train_end - 1] < index[0] + pd.DateOffset(years=1) <= index[first.train_end]
    assert all(f.n_test == 63 for f in folds[:-1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("756", Length(756)),
        (252, Length(252)),
        ("3y", Length(3, "y")),
        ("18M", Length(18, "m")),
        (" 26w ", Length(26, "w")),
        ("90d", Length(90, "d")),
        ("40b", Length(40)),
    ],
)
def test_parse_length(text, expected):
    assert parse_length(text) == expected


@pytest.mark.parametrize("bad", ["3x", "-1", "0", "abc", "1.5y", None, True])
def test_parse_length_rejects(bad):
    with pytest.raises(ParameterError, match="--train"):
        parse_length(bad, "--train")


def test_bad_specs_are_refused_with_a_fix():
    with pytest.raises(ParameterError, match="overlap"):
        WindowSpec(train=50, test=20, step=10)
    with pytest.raises(ParameterError, match="counted in bars"):
        WindowSpec(purge="5d")
    with pytest.raises(ParameterError, match="overlap"):
        make_folds(
            _day_index("2015-01-01", "2017-12-31"), WindowSpec(train="1y", test="100", step="1m")
        )


def test_too_short_data_says_how_many_bars_and_how_many_needed():
    with pytest.raises(
        DataError, match=r"needs 70 bars \(train 50 \+ purge 0 \+ test 20\).*has 69 bars"
    ):
        make_folds(_bar_index(69), WindowSpec(train=50, test=20))
    with pytest.raises(DataError, match=r"needs 75 bars.*purge 5.*has 74 bars"):
        make_folds(_bar_index(74), WindowSpec(train=50, test=20, purge=5))
    with pytest.raises(DataError, match=r"train 3y.*test 1y.*has 800 bars"):
        make_folds(_bar_index(800), WindowSpec(train="3y", test="1y"))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(30, 400),
    train=st.integers(5, 120),
    test=st.integers(1, 60),
    extra_step=st.integers(0, 20),
    purge=st.integers(0, 5),
    embargo=st.integers(0, 5),
    anchored=st.booleans(),
)
def test_fold_invariants(n, train, test, extra_step, purge, embargo, anchored):
    spec = WindowSpec(
        train=train,
        test=test,
        step=test + extra_step,
        purge=purge,
        embargo=embargo,
        anchored=anchored,
    )
    if train + purge + test > n:
        with pytest.raises(DataError):
            make_folds(_bar_index(n), spec)
        return
    folds = make_folds(_bar_index(n), spec)
    for a, b in zip(folds, folds[1:], strict=False):
        assert a.test_end <= b.test_start  # in order, never overlapping
        assert b.test_start - a.test_start == test + extra_step
    for f in folds:
        assert f.train_end + purge == f.test_start
        assert f.train_start == 0 if anchored else f.train_start == f.train_end - train
        assert 0 < f.n_test <= test and f.test_end <= n
        assert f.n_test == test or f is folds[-1]
        assert all(lo < f.train_end and hi > f.train_start for lo, hi in f.embargoed)
        assert all(hi - lo == embargo for lo, hi in f.embargoed)
    assert oos_span(folds) == slice(folds[0].test_start, folds[-1].test_end)
