"""Resolve a strategy from a registered name or a user's own class.

``STRATEGY`` on the command line is one of:
- a registered name (``sma_cross``), looked up in the registry the caller passes;
- ``path/to/file.py:ClassName``, a class in the user's own file;
- ``package.module:ClassName``, a class in an importable module.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path

from framework.errors import StrategyError, unknown_name_message
from framework.strategy import Strategy


def resolve_strategy(spec: str, registry: Mapping[str, type[Strategy]]) -> Strategy:
    """Return a strategy instance for ``spec`` (see module docstring)."""
    if ":" not in spec:
        if spec not in registry:
            raise StrategyError(
                unknown_name_message("strategy", spec, registry)
                + " Or pass your own class as path/to/file.py:ClassName."
            )
        return registry[spec]()
    location, _, class_name = spec.rpartition(":")
    module = _load_module(location)
    cls = getattr(module, class_name, None)
    if cls is None:
        names = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, Strategy)]
        raise StrategyError(f"{location} has no class {class_name!r}. " + unknown_name_message("strategy class", class_name, names))
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise StrategyError(
            f"{spec} is not a Strategy subclass; derive it from framework.strategy.Strategy."
        )
    return cls()


def _load_module(location: str):
    if location.endswith(".py") or "/" in location or "\\" in location:
        path = Path(location).expanduser().resolve()
        if not path.is_file():
            raise StrategyError(f"strategy file {location!r} does not exist (resolved to {path}).")
        name = f"fw_user_strategy_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise StrategyError(f"cannot load {path} as a Python module.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses need the module registered while executing it
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(location)
    except ImportError as exc:
        raise StrategyError(f"cannot import module {location!r}: {exc}.") from exc
