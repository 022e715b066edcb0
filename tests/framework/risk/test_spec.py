"""RiskSpec from the YAML config, overrides, validation; the state record; run summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest

from framework.backtest import BacktestSpec, summarize_sim
from framework.config import load_config
from framework.costs import CostSpec
from framework.engine import EngineSpec, simulate
from framework.errors import ConfigError
from framework.risk import RiskSpec, RiskState
from framework.risk.spec import parse_risk_overrides
from tests.framework.risk.helpers import ohlc_bars


def test_from_config_reads_the_users_rules():
    spec = RiskSpec.from_config(load_config())
    assert (spec.max_position, spec.max_gross, spec.daily_loss_limit) == (0.30, 0.80, 0.05)
    assert (spec.stop, spec.stop_pct, spec.atr_multiplier) == ("fixed", 0.03, 2.0)
    assert (spec.max_drawdown, spec.consecutive_losses) == (0.15, 5)
    assert spec.enabled and "max_position 0.3" in spec.describe()


def test_overrides_and_did_you_mean():
    spec = RiskSpec().with_overrides(
        parse_risk_overrides(["stop=trailing", "max_position=0.5", "take_profit=none"])
    )
    assert (spec.stop, spec.max_position, spec.take_profit) == ("trailing", 0.5, None)
    with pytest.raises(ConfigError, match="max_position"):
        RiskSpec().with_overrides({"max_postion": 0.2})
    with pytest.raises(ConfigError, match="trailing"):
        RiskSpec(stop="trailling")
    with pytest.raises(ConfigError, match="-0.1"):
        RiskSpec(max_gross=-0.1)
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_risk_overrides(["stop"])
    with pytest.raises(ConfigError, match="max_postion"):
        RiskSpec(regime_overrides={1: {"max_postion": 0.2}})
    assert RiskSpec().with_overrides({"stop": None}).stop == "none"


def test_regime_labels_must_match_the_bars():
    with pytest.raises(ConfigError, match=r"\(3,\)"):
        RiskSpec().regime_rows(np.zeros(2), 3)


def test_state_round_trips_through_json():
    state = RiskState.new(2, 1000.0)
    state.assets[0, 0] = 12.5
    back = RiskState.from_dict(json.loads(json.dumps(state.to_dict())))
    np.testing.assert_array_equal(back.assets, state.assets)
    np.testing.assert_array_equal(back.portfolio, state.portfolio)
    assert back.breaker == "ACTIVE"
    with pytest.raises(ConfigError, match="malformed"):
        RiskState.from_dict({"assets": []})


def test_summary_counts_risk_events_and_names_the_rules():
    bars = ohlc_bars([10.0] * 6, low=[10, 9.9, 9.6, 10, 10, 10])
    risk = RiskSpec(stop="fixed", max_position=0.5)
    sim = simulate(bars, np.ones(6), EngineSpec(initial_cash=1000.0), CostSpec.none(), risk)
    summary = summarize_sim(sim, bars, None)
    assert summary["risk_events"] == {"max_position": 1, "stop_loss": 1}
    assert "fixed stop 3.00%" in summary["risk_rules"]
    assert BacktestSpec().risk == RiskSpec.off()


def test_regime_overrides_from_yaml_by_name(tmp_path):
    from framework.risk.spec import load_regime_overrides

    path = tmp_path / "regimes.yaml"
    path.write_text("BEAR: {max_position: 0.2}\nVOLATILE: {cash_buffer: 0.15}\n")
    spec = RiskSpec(max_position=0.5, regime_overrides=load_regime_overrides(path))
    assert spec.regime_overrides == ((1, (("max_position", 0.2),)), (3, (("cash_buffer", 0.15),)))
    rows = spec.regime_rows(np.array([-1, 0, 1, 2, 3]), 5)  # -1: warm-up, base rules
    np.testing.assert_array_equal(rows, [0, 0, 1, 0, 2])
    assert spec.table()[rows[2], 1] == 0.2
    path.write_text("BAER: {max_position: 0.2}\n")
    with pytest.raises(ConfigError, match="BEAR"):
        load_regime_overrides(path)
