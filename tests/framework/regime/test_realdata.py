"""Sanity of the default classifier on real SPY and VIX daily bars (../shared/data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.data import load_bars
from framework.regime import BEAR, BULL, VOLATILE, RegimeSpec, load_regime_spec, regime_labels

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def spy_labels(shared_data) -> dict[str, pd.Series]:
    folder = shared_data / "daily"
    spy = load_bars(["SPY"], data_dir=folder)
    vix = load_bars(["VIX"], data_dir=folder)
    spec = load_regime_spec()
    return {
        "vix": pd.Series(regime_labels(spy, spec, vix)[:, 0], index=spy.index),
        "no_vix": pd.Series(regime_labels(spy, spec)[:, 0], index=spy.index),
    }


def share(labels: pd.Series, start: str, end: str, *codes: int) -> float:
    window = labels.loc[start:end]
    assert len(window) > 15 and (window >= 0).all()
    return float(window.isin(codes).mean())


@pytest.mark.parametrize("variant", ["vix", "no_vix"])
def test_crises_are_bear_or_volatile(spy_labels, variant):
    labels = spy_labels[variant]
    assert share(labels, "2008-09-01", "2009-03-31", BEAR, VOLATILE) >= 0.9
    assert share(labels, "2020-03-01", "2020-03-31", BEAR, VOLATILE) > 0.5


@pytest.mark.parametrize("variant", ["vix", "no_vix"])
def test_2017_is_mostly_bull(spy_labels, variant):
    assert share(spy_labels[variant], "2017-01-01", "2017-12-31", BULL) >= 0.8


@pytest.mark.parametrize("variant", ["vix", "no_vix"])
def test_regimes_do_not_flip_daily(spy_labels, variant):
    labels = spy_labels[variant].to_numpy()
    valid = labels[np.argmax(labels >= 0) :]
    assert (valid >= 0).all()  # SPY has no gaps: warm-up happens once
    starts = np.flatnonzero(np.r_[True, valid[1:] != valid[:-1]])
    lengths = np.diff(np.r_[starts, len(valid)])
    assert len(lengths) > 20  # the regimes do change
    assert np.median(lengths) >= 10
    # every run but the first and the still-running last holds at least min_duration bars
    assert lengths[1:-1].min() >= RegimeSpec().min_duration
    assert set(np.unique(valid)) == {0, 1, 2, 3}
