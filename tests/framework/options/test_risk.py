"""The risk layer's rules on option spreads: mapping from RiskSpec, breaker scenarios, and
their effect in the options backtest."""

from __future__ import annotations

import pytest

from framework.errors import ConfigError
from framework.options.backtest import CreditSpreadSpec, prepare_market, run_options_backtest
from framework.options.inputs import load_options_inputs
from framework.options.risk import OptionsRisk, RiskGuard
from framework.risk import RiskSpec


def test_mapping_keeps_what_applies_and_names_the_rest():
    spec = RiskSpec(max_position=0.3, max_gross=0.8, daily_loss_limit=0.05, max_drawdown=0.15,
                    consecutive_losses=5, stop="fixed", sizing="volatility_target")
    risk, ignored = OptionsRisk.from_risk_spec(spec)
    assert (risk.max_position, risk.max_gross, risk.daily_loss_limit, risk.max_drawdown,
            risk.consecutive_losses) == (0.3, 0.8, 0.05, 0.15, 5)
    assert any(s.startswith("stop fixed") for s in ignored)
    assert any(s.startswith("sizing volatility_target") for s in ignored)
    assert OptionsRisk.from_risk_spec(RiskSpec.off()) == (OptionsRisk(), ())


# session k, equity, pnls of spreads closed that session -> flatten reason, may enter at k + 1
DRAWDOWN_TABLE = [
    (0, 100.0, [], None, True),
    (1, 110.0, [], None, True),       # new peak
    (2, 94.0, [], None, True),        # 14.5 % below the peak: not yet
    (3, 93.5, [], "risk_halt", False),  # 15 % -> halt, blocked for 2 sessions (k 4 and 5)
    (4, 95.0, [], None, False),
    (5, 95.0, [], None, True),
]


def test_drawdown_breaker_scenario():
    guard = RiskGuard(OptionsRisk(max_drawdown=0.15, drawdown_action="halt", cooldown_bars=2),
                      100.0)
    for k, equity, pnls, flatten, enter_next in DRAWDOWN_TABLE:
        assert guard.update(k, equity, pnls) == flatten, k
        assert guard.may_enter(k + 1) == enter_next, k
    assert guard.events == {"drawdown": 1}


def test_losing_streak_reduces_and_daily_loss_blocks_one_session():
    guard = RiskGuard(OptionsRisk(consecutive_losses=3, losses_action="reduce", cooldown_bars=1,
                                  daily_loss_limit=0.05), 100.0)
    assert guard.update(0, 100.0, [-1.0, -1.0]) is None and guard.may_enter(1)
    assert guard.update(1, 100.0, [2.0, -1.0]) is None and guard.may_enter(2)  # streak reset
    assert guard.update(2, 100.0, [-1.0, -1.0]) is None  # third loss in a row: reduce
    assert not guard.may_enter(3) and guard.may_enter(4)
    assert guard.update(4, 94.0, []) is None  # -6 % in a session: no entry at its close
    assert not guard.may_enter(4) and guard.may_enter(5)
    assert guard.events == {"losses": 1, "daily_loss": 1}


@pytest.mark.parametrize("field, value", [("max_position", 1.5), ("max_gross", 0.0),
                                          ("drawdown_action", "panic"), ("cooldown_bars", -1)])
def test_bad_values_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        OptionsRisk(**{field: value})


@pytest.fixture(scope="module")
def market():
    inputs = load_options_inputs()
    return prepare_market(inputs.closes, None, inputs.chain_spec, div=inputs.div,
                          underlying="XSP")


def test_breaker_closes_every_spread_in_2008(market):
    spec = CreditSpreadSpec(iv_rank_min=0.0, risk_per_trade=0.2, max_open=3)
    free = run_options_backtest(market, spec, 100_000.0, "2008-01-01", "2008-12-31")
    guarded = run_options_backtest(market, spec, 100_000.0, "2008-01-01", "2008-12-31",
                                   OptionsRisk(max_drawdown=0.10, cooldown_bars=10))
    assert free.risk_events == {} and guarded.risk_events["drawdown"] >= 1
    halted = guarded.trades[guarded.trades["exit_reason"] == "risk_halt"]
    assert len(halted) >= 1
    # after a halt nothing opens for the cooldown
    day = halted["exit_date"].iloc[0]
    sessions = guarded.equity.index
    k = sessions.get_loc(day)
    assert not guarded.trades["entry_date"].between(sessions[k], sessions[k + 10]).any()
    assert guarded.summary["max_drawdown"] > free.summary["max_drawdown"]  # less deep


def test_gross_and_position_caps_cut_contracts(market):
    spec = CreditSpreadSpec(iv_rank_min=0.0, risk_per_trade=0.5, max_open=5)
    capped = run_options_backtest(market, spec, 100_000.0, "2005-01-01", "2005-12-31",
                                  OptionsRisk(max_position=0.1, max_gross=0.25))
    equity = capped.equity.reindex(capped.trades["entry_date"]).to_numpy()
    assert (capped.trades["max_loss"].to_numpy() <= 0.1 * equity * 1.02 + 1e-6).all()
    assert (capped.positions["max_loss"] <= 0.25 * capped.equity * 1.02 + 1e-6).all()
    assert "max loss of open spreads <= 0.25 x equity" in capped.assumptions["risk"]
