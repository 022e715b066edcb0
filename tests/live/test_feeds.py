"""The replay feed: every bar once, in order, labelled by close time, optionally paced."""

from __future__ import annotations

import numpy as np
import pytest

from framework.errors import DataError
from live.feeds import Feed, ReplayFeed
from tests.barsgen import make_bars


def test_replay_yields_each_bar_in_order():
    bars = make_bars(n=30, m=2, seed=1)
    feed = ReplayFeed(bars)
    assert isinstance(feed, Feed)
    got = list(feed)
    assert [b.time for b in got] == list(bars.index)
    for i, bar in enumerate(got):
        for name in ("open", "high", "low", "close", "volume"):
            np.testing.assert_array_equal(getattr(bar, name), getattr(bars, name)[i])


def test_speed_paces_between_bars():
    waits = []
    list(ReplayFeed(make_bars(n=5), speed=4.0, sleep=waits.append))
    assert waits == [0.25] * 4


@pytest.mark.parametrize("speed", [0.0, -1.0, float("nan")])
def test_bad_speed_is_rejected(speed):
    with pytest.raises(DataError, match="speed"):
        ReplayFeed(make_bars(n=5), speed=speed)
