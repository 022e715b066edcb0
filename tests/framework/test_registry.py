"""Resolving strategies by name, from a user's file and from a module."""

from __future__ import annotations

import pytest

from framework.errors import StrategyError
from framework.registry import resolve_strategy
from strategies import REGISTRY

USER_FILE = '''
from dataclasses import dataclass
from framework.strategy import Params, Strategy

@dataclass(frozen=True)
class NoParams(Params):
    pass

class AlwaysLong(Strategy):
    name = "always_long"
    params_type = NoParams
    def features(self, bars, p):
        return {}
    def target(self, features, p):
        import numpy as np
        return np.ones(1)
'''


def test_registered_name():
    assert resolve_strategy("sma_cross", REGISTRY).name == "sma_cross"


def test_unknown_name_suggests():
    with pytest.raises(StrategyError, match="Did you mean 'sma_cross'"):
        resolve_strategy("sma_crss", REGISTRY)


def test_user_file(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text(USER_FILE)
    assert resolve_strategy(f"{path}:AlwaysLong", REGISTRY).name == "always_long"
    with pytest.raises(StrategyError, match="no class 'Nope'"):
        resolve_strategy(f"{path}:Nope", REGISTRY)


def test_module_path_and_missing_file():
    assert resolve_strategy("strategies.sma_cross:SmaCross", REGISTRY).name == "sma_cross"
    with pytest.raises(StrategyError, match="does not exist"):
        resolve_strategy("nowhere/x.py:X", REGISTRY)
    with pytest.raises(StrategyError, match="not a Strategy subclass"):
        resolve_strategy("strategies.sma_cross:SmaCrossParams", REGISTRY)
