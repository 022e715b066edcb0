"""The look-ahead checks pass clean strategies and catch every known leak."""

from __future__ import annotations

import pytest

from framework.lookahead import check_strategy, perturb_after
from strategies import REGISTRY
from tests.barsgen import make_bars
from tests.leaky import LEAKY


@pytest.mark.parametrize("cls", LEAKY, ids=lambda c: c.name)
def test_each_leaky_strategy_is_caught(cls):
    report = check_strategy(cls(), make_bars(n=260, m=2, seed=3))
    assert not report.ok
    failed = {name for name, passed in report.checks.items() if not passed}
    assert failed & {"prefix invariance", "future blindness"}, report.format()
    # the report names the feature (or target) and the bar of the first difference
    first = report.findings[0]
    assert "signal" in first.item or first.item == "target"
    assert first.time in report.format()


# learned strategies need a fitted model and a longer history: tests/strategies/test_ml_classifier.py
@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if REGISTRY[n].fit is None))
def test_registered_strategies_pass_on_generated_bars(name):
    bars = make_bars(n=500, m=4, seed=11)
    report = check_strategy(REGISTRY[name](), bars)
    assert report.ok, report.format()
    assert all(report.checks.values())


def test_perturb_after_keeps_the_past_and_valid_ohlc():
    bars = make_bars(n=50, seed=1)
    changed = perturb_after(bars, 20, seed=4)
    assert (changed.close[:21] == bars.close[:21]).all()
    assert (changed.close[21:] != bars.close[21:]).all()
    assert (changed.high >= changed.low).all()


def test_report_format_lists_each_check():
    report = check_strategy(LEAKY[0](), make_bars(n=120, seed=2))
    text = report.format()
    for name in report.checks:
        assert name in text
    assert "FAIL" in text
