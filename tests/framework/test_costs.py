"""CostSpec: documented defaults, validation, overrides."""

from __future__ import annotations

import pytest

from framework.costs import CostSpec
from framework.errors import EngineError


def test_defaults_are_on_and_documented():
    spec = CostSpec()
    assert spec.to_dict() == {
        "commission_per_share": 0.005,
        "commission_min": 1.0,
        "commission_bps": 0.0,
        "commission_max_pct": 1.0,
        "slippage_bps": 5.0,
        "impact_coef": 0.1,
        "impact_window": 20,
        "max_participation": 0.1,
    }


def test_none_turns_every_cost_off():
    spec = CostSpec.none()
    assert spec.commission_per_share == spec.commission_min == spec.commission_bps == 0.0
    assert spec.slippage_bps == spec.impact_coef == 0.0
    assert spec.commission_max_pct is None and spec.max_participation is None


def test_with_overrides_replaces_and_validates():
    spec = CostSpec().with_overrides({"slippage_bps": 2.0, "max_participation": None})
    assert (spec.slippage_bps, spec.max_participation) == (2.0, None)
    with pytest.raises(EngineError, match="Did you mean 'slippage_bps'"):
        CostSpec().with_overrides({"slipage_bps": 2.0})
    with pytest.raises(EngineError, match="negative"):
        CostSpec().with_overrides({"commission_min": -1.0})
    window = CostSpec().with_overrides({"impact_window": 10.0}).impact_window
    assert window == 10 and isinstance(window, int)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("commission_per_share", -0.01, "negative; expected a value >= 0"),
        ("slippage_bps", 10_000.0, "below 10000"),
        ("commission_max_pct", 0.0, r"expected a percent in \(0, 100\]"),
        ("max_participation", 1.5, r"in \(0, 1\]"),
        ("impact_window", 1, "at least 2 bars"),
        ("impact_window", 2.5, "whole number"),
        ("impact_coef", float("inf"), "finite"),
        ("commission_bps", "5", "expected a number"),
        ("commission_min", True, "expected a number"),
        ("slippage_bps", None, "expected a number"),
    ],
)
def test_invalid_values_rejected(field, value, message):
    with pytest.raises(EngineError, match=message):
        CostSpec(**{field: value})
