"""RegimeSpec validation and the regimes YAML file."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from framework.errors import ConfigError
from framework.regime import RegimeSpec, load_regime_spec
from framework.regime.spec import DEFAULT_REGIMES_PATH


def test_shipped_yaml_equals_defaults():
    assert DEFAULT_REGIMES_PATH.is_file()
    assert asdict(load_regime_spec()) == asdict(RegimeSpec())


def test_partial_file_keeps_defaults(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("min_duration: 5\nbear_drawdown: 0.2\n")
    spec = load_regime_spec(path)
    assert (spec.min_duration, spec.bear_drawdown, spec.bull_adx) == (5, 0.2, RegimeSpec().bull_adx)
    assert load_regime_spec(_write(tmp_path, "")) == RegimeSpec()


def _write(tmp_path, text: str):
    path = tmp_path / "regimes.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("min_durration: 5\n", ["min_durration", "Did you mean 'min_duration'"]),
        ("min_duration: 0\n", ["min_duration", ">= 1", "got 0"]),
        ("min_duration: 2.5\n", ["min_duration", "whole number"]),
        ("trend_window: true\n", ["trend_window", "whole number"]),
        ("bear_drawdown: 10\n", ["bear_drawdown", "fraction", "got 10"]),
        ("vix_level: -1\n", ["vix_level", "positive"]),
        ("vix_floor: '20'\n", ["vix_floor", "positive"]),
        ("atr_percent: .nan\n", ["atr_percent", "fraction"]),
        ("use_realized_volatility: 1\n", ["use_realized_volatility", "true or false"]),
        ("- 1\n- 2\n", ["expected a mapping", "list"]),
        ("min_duration: [\n", ["invalid YAML"]),
    ],
)
def test_bad_files_name_the_key(tmp_path, text, fragments):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_regime_spec(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read regimes file"):
        load_regime_spec(tmp_path / "nope.yaml")


def test_spec_validates_in_code_too():
    with pytest.raises(ConfigError, match="bull_near_peak"):
        RegimeSpec(bull_near_peak=1.5)
    with pytest.raises(ConfigError, match="Did you mean 'bull_adx'"):
        RegimeSpec().with_values(bull_adxx=3)
    assert RegimeSpec().with_values(bull_adx=25.0).bull_adx == 25.0
