"""Bad inputs and specs are rejected with EngineError messages that say what was expected."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.engine import EngineSpec, simulate
from framework.errors import EngineError
from tests.framework.engine.helpers import make_bars


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_cash": 0.0}, "initial_cash = 0.0; expected a finite number > 0"),
        ({"initial_cash": float("nan")}, "initial_cash = nan"),
        ({"max_leverage": -1.0}, "max_leverage = -1.0"),
        ({"fill": "next_opn"}, "Did you mean 'next_open'"),
        ({"rebalance": "everybar"}, "Did you mean 'every_bar'"),
        ({"whole_shares": 1}, "expected True or False"),
        ({"initial_cash": "1000"}, "expected a number"),
    ],
)
def test_engine_spec_rejects_bad_values(kwargs, message):
    with pytest.raises(EngineError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EngineSpec(**kwargs)


def test_target_shape_must_match_bars():
    bars = make_bars([[10.0, 20.0]] * 4)
    with pytest.raises(EngineError, match=r"expected \(n_bars, n_assets\) = \(4, 2\)"):
        simulate(bars, np.zeros((4, 3)))
    with pytest.raises(EngineError, match=r"shape \(4,\)"):
        simulate(bars, np.zeros(4))


def test_one_dimensional_target_accepted_for_one_asset():
    bars = make_bars([10.0, 11.0, 12.0])
    assert simulate(bars, [0, 1, 1]).fills["bar"].tolist() == [2]


def test_infinite_target_rejected_with_location():
    bars = make_bars([10.0, 11.0, 12.0])
    with pytest.raises(EngineError, match=r"first at \(1, 0\)"):
        simulate(bars, [0, np.inf, 1])


def test_non_numeric_target_rejected():
    bars = make_bars([10.0, 11.0, 12.0])
    with pytest.raises(EngineError, match="must be numeric"):
        simulate(bars, ["a", "b", "c"])


def test_dataframe_target_columns_must_match_symbols():
    bars = make_bars([[10.0, 20.0]] * 3, symbols=["A", "B"])
    frame = pd.DataFrame(np.zeros((3, 2)), columns=["B", "A"], index=bars.index)
    with pytest.raises(EngineError, match="same symbols in the same order"):
        simulate(bars, frame)
    assert simulate(bars, frame[["A", "B"]]).equity.shape == (3,)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("open", 0.0, "open price 0.0 for 'S0' at bar 1"),
        ("close", -1.0, "close price -1.0"),
        ("open", np.inf, "open price inf"),
        ("volume", -5.0, "volume -5.0"),
    ],
)
def test_bad_prices_rejected(field, value, message):
    bars = make_bars([10.0, 11.0, 12.0])
    getattr(bars, field)[1, 0] = value
    with pytest.raises(EngineError, match=message):
        simulate(bars, [0, 1, 1])


def test_bars_type_checked():
    with pytest.raises(EngineError, match="must be a framework.types.Bars"):
        simulate(pd.DataFrame({"close": [1.0]}), [1.0])


def test_result_arrays_are_read_only():
    res = simulate(make_bars([10.0, 11.0, 12.0]), [1, 1, 1])
    with pytest.raises(ValueError, match="read-only"):
        res.equity[0] = 0.0
